"""draw and compare: diagrams and charts (no torch)."""
from __future__ import annotations

import click

from ..expand import parse_overrides
from .common import console, set_option, user_errors


@click.command()
@click.argument("spec")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Output file: .svg, .png, .pdf or .dot (graph style); .svg or .png (boxes style).")
@click.option("--style", type=click.Choice(["graph", "boxes"]), default="graph", show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0), default=None, help="Collapse blocks below this depth.")
@click.option("--rankdir", type=click.Choice(["TB", "LR"]), default="TB", show_default=True,
              help="Graph direction: top to bottom or left to right.")
@click.option("--shapes/--no-shapes", default=True, help="Label edges with tensor shapes.")
@click.option("--legend/--no-legend", default=True, help="Show the colour legend of layer families.")
@click.option("--fold/--no-fold", default=True, help="Fold runs of identical blocks into one node marked ×N.")
@set_option
@user_errors
def draw(spec, output, style, depth, rankdir, shapes, legend, fold, overrides):
    """Draw SPEC as a graph (DOT) or as layered 3-D boxes."""
    from .. import draw as drawing

    path = drawing.draw(spec, output, style=style, depth=depth, rankdir=rankdir, shapes=shapes, legend=legend,
                        fold=fold, **parse_overrides(overrides))
    click.echo(f"wrote {path}")


@click.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the bubble chart (.svg or .png); the table is printed either way.")
@user_errors
def compare(specs, output):
    """Compare SPECS: GMACs, parameters and top-1 accuracy, as a table and a bubble chart."""
    from rich import box
    from rich.table import Table

    from .. import draw as drawing
    from ..render import count

    rows = drawing.compare(specs, output)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("Spec", "left"), ("GMACs", "right"), ("Params", "right"), ("Top-1 %", "right"),
                          ("Source", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "Source")
    for row in rows:
        table.add_row(row.name, f"{row.gmacs:.3g}", count(row.params),
                      "" if row.top1 is None else f"{row.top1:.2f}", row.source)
    console().print(table)
    if output:
        click.echo(f"wrote {output}")
