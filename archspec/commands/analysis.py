"""validate, summary, schema and zoo: the analytic commands (they never import torch)."""
from __future__ import annotations

import sys

import click

from .. import api, zoo
from ..expand import parse_overrides
from ..infer import DTYPE_BYTES
from ..summary import OPTIMIZER_SLOTS
from .common import EXIT_SPEC, print_lines, print_table, set_option, user_errors


@click.command()
@click.argument("specs", nargs=-1, required=True)
@set_option
@user_errors
def validate(specs, overrides):
    """Check SPECS and report every problem at file:line:col."""
    params = parse_overrides(overrides)
    failed = 0
    for spec in specs:
        problems = api.validate(spec, params)
        for problem in problems:
            click.echo(str(problem), err=True)
        if problems:
            failed += 1
        else:
            click.echo(f"{spec}: ok")
    if failed:
        sys.exit(EXIT_SPEC)


@click.command()
@click.argument("spec")
@click.option("--batch", "-b", type=click.IntRange(1, 1 << 24), default=1, show_default=True, help="Batch size.")
@click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32", show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0), default=None, help="Collapse blocks below this depth.")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_SLOTS)), default="adam", show_default=True,
              help="Optimizer whose state the training-memory estimate includes.")
@click.option("--explain", is_flag=True, help="Show each figure's arithmetic, as CS231n's VGGNet table does.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "markdown", "csv", "json"]), default="table",
              show_default=True)
@set_option
@user_errors
def summary(spec, batch, dtype, depth, optimizer, explain, fmt, overrides):
    """Per-layer shapes, parameters, memory, MACs and receptive fields of SPEC."""
    from .. import render

    result = api.summarize(spec, batch=batch, dtype=dtype, depth=depth, optimizer=optimizer,
                           **parse_overrides(overrides))
    if explain:
        click.echo("\n".join(render.explain_lines(result)))
    elif fmt == "table":
        print_lines(lambda width: render.summary_lines(result, width))
    else:
        click.echo({"markdown": render.to_markdown, "csv": render.to_csv, "json": render.to_json}[fmt](result),
                   nl=False)


@click.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: the JSON Schema of the spec language; markdown: the layer reference (docs/layers.md).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to a file instead of standard output.")
@user_errors
def schema(fmt, output):
    """Print the JSON Schema of the spec language, or the layer reference (both generated from the catalogue)."""
    if fmt == "markdown":
        from ..reference import layers_markdown

        text = layers_markdown()
    else:
        from ..schema import schema_json

        text = schema_json()
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@click.command(name="zoo")
@user_errors
def zoo_command():
    """List the specs bundled with archspec (use them by name: archspec summary vgg16.yaml)."""
    from ..render import count, giga
    from ..text_table import Column

    columns = [Column("Spec"), Column("Input"), Column("Params", right=True), Column("MACs", right=True),
               Column("Source", wrap="fold", min_width=24)]
    rows = []
    for name in zoo.names():
        s = api.summarize(name)
        rows.append([name, "×".join(map(str, s.input)), count(s.totals.params), giga(s.totals.macs), s.source])
    print_table(columns, rows)
