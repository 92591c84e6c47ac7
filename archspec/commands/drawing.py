"""draw and compare: diagrams and charts (no torch)."""
from __future__ import annotations

import click

from ..draw.boxes import MAX_ROWS
from ..expand import parse_overrides
from .common import print_table, set_option, user_errors


def _wrap(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not 'auto' or a number of pieces") from None


@click.command()
@click.argument("spec")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Output file: .svg, .png, .pdf or .dot (graph style); .svg or .png (boxes style).")
@click.option("--style", type=click.Choice(["graph", "boxes"]), default="graph", show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0), default=None, help="Collapse blocks below this depth.")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Graph direction: top to bottom or left to right (landscape).")
@click.option("--wrap", default="auto", show_default=True, metavar="auto|N",
              help="Cut a long chain into N pieces side by side (graph style); auto: the number that "
                   "comes nearest a 16:9 slide.")
@click.option("--rows", type=click.IntRange(1, MAX_ROWS), default=None, metavar="N",
              help="Wrap the boxes style into this many rows, one under another (default: the number whose "
                   "text is largest on a 16:9 slide). Graphs wrap with --wrap.")
@click.option("--scale", type=click.FloatRange(0.25, 8), default=2.0, show_default=True,
              help="PNG pixels per CSS pixel (1: 96 dpi).")
@click.option("--shapes/--no-shapes", default=True, help="Write each layer's output shape in its node.")
@click.option("--legend/--no-legend", default=True, help="Show the colour legend of layer families.")
@click.option("--fold/--no-fold", default=True, help="Fold runs of identical blocks into one node marked ×N.")
@click.option("--compact/--no-compact", default=True,
              help="Write batch norm, activations and dropout into the node of the layer they follow.")
@set_option
@user_errors
def draw(spec, output, style, depth, rankdir, wrap, rows, scale, shapes, legend, fold, compact, overrides):
    """Draw SPEC as a graph (DOT) or as layered 3-D boxes."""
    from .. import draw as drawing

    picture = drawing.draw(spec, output, style=style, depth=depth, rankdir=rankdir, shapes=shapes, legend=legend,
                           fold=fold, compact=compact, wrap=_wrap(wrap), rows=rows, scale=scale,
                           **parse_overrides(overrides))
    click.echo(f"wrote {picture.path}")


@click.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the bubble chart (.svg or .png); the table is printed either way.")
@user_errors
def compare(specs, output):
    """Compare SPECS: GMACs, parameters and top-1 accuracy, as a table and a bubble chart."""
    from .. import draw as drawing
    from ..render import count
    from ..text_table import Column

    rows = drawing.compare(specs, output)
    columns = [Column("Spec"), Column("GMACs", right=True), Column("Params", right=True),
               Column("Top-1 %", right=True), Column("Source", wrap="fold", min_width=24)]
    print_table(columns, [[row.name, f"{row.gmacs:.3g}", count(row.params),
                           "" if row.top1 is None else f"{row.top1:.2f}", row.source] for row in rows])
    if output:
        click.echo(f"wrote {output}")
