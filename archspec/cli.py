"""The ``archspec`` command: a thin shell over the public API in ``archspec.api``.

Exit codes: 0 ok, 1 the spec or data is wrong, 2 the command line is wrong.
A user mistake prints one located message per problem, never a traceback.
"""
from __future__ import annotations

import functools
import os
import sys

import click

from . import api, zoo
from .errors import ArchspecError, UsageError
from .expand import parse_overrides
from .infer import DTYPE_BYTES
from .summary import OPTIMIZER_SLOTS

EXIT_SPEC, EXIT_USAGE = 1, 2


def console(file=None):
    from rich.console import Console

    stream = file or sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", 160))
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def report(error: ArchspecError) -> None:
    for problem in error.problems:
        click.echo(str(problem), err=True)


def user_errors(command):
    """Turn archspec's errors into messages and exit codes instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            report(exc)
            sys.exit(EXIT_USAGE)
        except ArchspecError as exc:
            report(exc)
            sys.exit(EXIT_SPEC)
        except BrokenPipeError:  # `archspec summary x | head`
            sys.stderr.close()
            sys.exit(0)

    return wrapper


set_option = click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
                          help="Override a spec parameter (repeatable), e.g. --set classes=10.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archspec")
def main():
    """Convolutional networks in YAML: validate, summarise, draw, compile and export."""


@main.command()
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


@main.command()
@click.argument("spec")
@click.option("--batch", "-b", type=click.IntRange(1, 1 << 24), default=1, show_default=True, help="Batch size.")
@click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32", show_default=True)
@click.option("--depth", "-d", type=click.IntRange(0), default=None, help="Collapse blocks below this depth.")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZER_SLOTS)), default="adam", show_default=True,
              help="Optimizer whose state the training-memory estimate includes.")
@click.option("--explain", is_flag=True, help="Show each figure's arithmetic, as the lecture slide does.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "markdown", "csv", "json"]), default="table",
              show_default=True)
@set_option
@user_errors
def summary(spec, batch, dtype, depth, optimizer, explain, fmt, overrides):
    """Per-layer shapes, parameters, memory, MACs and receptive fields of SPEC."""
    from . import render

    result = api.summarize(spec, batch=batch, dtype=dtype, depth=depth, optimizer=optimizer,
                           **parse_overrides(overrides))
    if explain:
        click.echo("\n".join(render.explain_lines(result)))
    elif fmt == "table":
        console().print(result)
    else:
        click.echo({"markdown": render.to_markdown, "csv": render.to_csv, "json": render.to_json}[fmt](result),
                   nl=False)


@main.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: the JSON Schema of the spec language; markdown: the layer reference (docs/layers.md).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to a file instead of standard output.")
@user_errors
def schema(fmt, output):
    """Print the JSON Schema of the spec language, or the layer reference (both generated from the catalogue)."""
    if fmt == "markdown":
        from .reference import layers_markdown

        text = layers_markdown()
    else:
        from .schema import schema_json

        text = schema_json()
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@main.command(name="zoo")
@user_errors
def zoo_command():
    """List the specs bundled with archspec (use them by name: archspec summary vgg16.yaml)."""
    from rich.table import Table
    from rich import box

    from .render import count, giga

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("Spec", "left"), ("Input", "left"), ("Params", "right"), ("MACs", "right"),
                          ("Source", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "Source")
    for name in zoo.names():
        s = api.summarize(name)
        table.add_row(name, "×".join(map(str, s.input)), count(s.totals.params), giga(s.totals.macs),
                      s.source)
    console().print(table)


@main.command()
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
    """Draw SPEC as a graph (DOT) or as the lecture's layered boxes."""
    from . import draw as drawing

    path = drawing.draw(spec, output, style=style, depth=depth, rankdir=rankdir, shapes=shapes, legend=legend,
                        fold=fold, **parse_overrides(overrides))
    click.echo(f"wrote {path}")


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the bubble chart (.svg or .png); the table is printed either way.")
@user_errors
def compare(specs, output):
    """Compare SPECS: GMACs, parameters and top-1 accuracy, as a table and a bubble chart."""
    from rich import box
    from rich.table import Table

    from . import draw as drawing
    from .render import count

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


@main.command(name="compile")
@click.argument("spec")
@click.option("--print-code", is_flag=True, help="Print the generated forward() (plain torch code).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible initial weights.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Save the initial weights as safetensors.")
@set_option
@user_errors
def compile_command(spec, print_code, seed, save_path, overrides):
    """Compile SPEC into a torch.fx GraphModule and check it runs (imports torch)."""
    from .weights import save_weights

    module = api.build(spec, seed=seed, **parse_overrides(overrides))
    if print_code:
        click.echo(module.code.strip())
    else:
        click.echo(module)
    if save_path:
        save_weights(module, save_path)
        click.echo(f"saved {save_path}", err=True)


@main.command()
@click.argument("spec")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), required=True, help="Output .onnx file.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="safetensors weights to load first (strict).")
@click.option("--seed", type=int, default=None, help="Seed for the initial weights when --weights is not given.")
@set_option
@user_errors
def export(spec, onnx_path, weights, seed, overrides):
    """Export SPEC to ONNX (needs: pip install 'archspec[onnx]')."""
    from .export import export_onnx
    from .weights import load_weights

    graph = api.expand(spec, parse_overrides(overrides))
    from .compiler import compile_graph

    module = compile_graph(graph, seed=seed)
    if weights:
        load_weights(module, weights)
    export_onnx(module, graph.input_shape, onnx_path)
    click.echo(f"wrote {onnx_path}")


if __name__ == "__main__":
    main()
