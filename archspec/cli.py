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
from .weights import resolve_weights

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


class BatchSize(click.ParamType):
    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"expected a positive integer or 'auto', found {value!r}", param, ctx)
        if number < 1:
            self.fail(f"expected a positive integer or 'auto', found {value!r}", param, ctx)
        return number


def _without_devices(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            out.append(arg)
    return out


@main.command()
@click.argument("spec", required=False)
@click.option("--data", help="digits (default), a .csv of path,label, a class folder, mnist:DIR, synthetic[:N[:K]].")
@click.option("--val-data", help="A separate validation set (else split off --data).")
@click.option("--test-data", help="A separate test set (else split off --data).")
@click.option("--epochs", type=click.IntRange(1), help="Epochs to train (with --resume: the new total).")
@click.option("--batch-size", type=BatchSize(), help="Images per step, or 'auto' (largest that fits).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Learning rate.")
@click.option("--optimizer", type=click.Choice(["sgd", "rmsprop", "adam", "adamw"]))
@click.option("--schedule", type=click.Choice(["none", "step", "cosine", "onecycle"]))
@click.option("--loss", type=click.Choice(["cross_entropy", "mae", "mse", "bce"]))
@click.option("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]))
@click.option("--compile", "compile_model", is_flag=True, default=None, help="torch.compile the model.")
@click.option("--workers", type=click.IntRange(0), help="DataLoader workers for images read from files.")
@click.option("--seed", type=click.IntRange(0), help="Seed of splits, weights, shuffling and augmentation.")
@click.option("--init", "init_weights", type=click.Path(exists=True, dir_okay=False),
              help="Start from these safetensors weights (matching names load; the rest are listed).")
@click.option("--freeze", multiple=True, help="Keep layers matching this pattern fixed (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/<spec name>).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="A YAML file of training options (the keys of a spec's train: section).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), help="Continue the run in this folder.")
@click.option("--devices", type=click.IntRange(1), default=1, help="Processes to launch with torchrun (DDP).")
@set_option
@user_errors
def train(spec, data, val_data, test_data, epochs, batch_size, lr, optimizer, schedule, loss, device, precision,
          compile_model, workers, seed, init_weights, freeze, out, config_file, resume, devices, overrides):
    """Train SPEC and leave metrics, plots, weights and a test report in runs/NAME."""
    from .train.distributed import launch, under_torchrun

    if devices > 1 and not under_torchrun():
        sys.exit(launch(devices, _without_devices(sys.argv[sys.argv.index("train") + 1:])))
    if not spec and not resume:
        raise UsageError("give a SPEC to train, or --resume RUN_FOLDER")
    from .train import session
    from .train.progress import PlainProgress, RichProgress
    from .train.trainer import Interrupted

    options = dict(data=data, val_data=val_data, test_data=test_data, epochs=epochs, batch_size=batch_size, lr=lr,
                   optimizer=optimizer, schedule=schedule, loss=loss, device=device, precision=precision,
                   compile=compile_model, workers=workers, seed=seed, init=init_weights, freeze=list(freeze) or None,
                   out=out)
    progress = RichProgress(console()) if sys.stdout.isatty() else PlainProgress()
    try:
        outcome = session.train(spec, options, parse_overrides(overrides), config_file, resume, progress)
    except Interrupted as exc:
        report(exc)
        sys.exit(130)
    if outcome.test:
        t = outcome.test
        click.echo(f"test: accuracy {100 * t['accuracy']:.2f}%, loss {t['loss']:.4f} on {t['images']} images "
                   f"(best epoch {outcome.best_epoch}; {outcome.stopped})")
    click.echo(f"wrote {outcome.run}")


@main.command()
@click.argument("spec")
@click.option("--weights", type=click.Path(exists=True), required=True,
              help="safetensors weights, or a run folder (its best.safetensors).")
@click.option("--data", help="Data set to evaluate (default: the run's own test split).")
@click.option("--split", type=click.Choice(["all", "train", "val", "test"]), default=None,
              help="Which part of --data (default all; without --data, test).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@set_option
@user_errors
def evaluate(spec, weights, data, split, device, as_json, overrides):
    """Loss, accuracy, top-5 and per-class accuracy of trained weights on a data set."""
    import json

    from .train import session

    result = session.evaluate(spec, str(resolve_weights(weights)), data, split, parse_overrides(overrides),
                              {"device": device})
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['images']} images  accuracy {100 * result['accuracy']:.2f}%  "
               f"top-5 {100 * result['top5_accuracy']:.2f}%  loss {result['loss']:.4f}")
    for name, accuracy in result["per_class_accuracy"].items():
        click.echo(f"  {name:>12}  {'-' if accuracy is None else f'{100 * accuracy:.1f}%'}")


@main.command()
@click.argument("spec")
@click.argument("images", nargs=-1, required=True)
@click.option("--weights", type=click.Path(exists=True), required=True,
              help="safetensors weights, or a run folder (its best.safetensors).")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="Classes to show per image.")
@set_option
@user_errors
def predict(spec, images, weights, top, overrides):
    """The most likely classes of IMAGES under trained weights."""
    from .train import session

    for result in session.predict(spec, str(resolve_weights(weights)), list(images), top, parse_overrides(overrides)):
        best = ", ".join(f"{c['class']} {100 * c['probability']:.1f}%" for c in result["top"])
        click.echo(f"{result['image']}: {best}")


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


# ---------------------------------------------------------------- inspect and apply (issue 6)


@main.group(name="inspect")
def inspect_group():
    """Pictures of what a network's filters and layers see (imports torch)."""


@inspect_group.command(name="filters")
@click.argument("weights", metavar="RUN_OR_WEIGHTS")
@click.option("--layer", default=None, help="A conv layer's path, e.g. conv1 (default: the first).")
@click.option("--mode", type=click.Choice(["auto", "rgb", "per-channel", "mean"]), default="auto", show_default=True,
              help="rgb for 3 input channels, one tile per input channel, or their mean; auto picks.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@user_errors
def inspect_filters(weights, layer, mode, output):
    """A labelled grid of a layer's kernels (weights file or run folder), each normalised on its own."""
    from .inspect import filters_picture

    click.echo(f"wrote {filters_picture(weights, output, layer=layer, mode=mode).path}")


@inspect_group.command(name="activations")
@click.argument("spec")
@click.argument("image", default="sample")
@click.option("--weights", "-w", metavar="RUN_OR_WEIGHTS", default=None,
              help="safetensors weights or a run folder (default: the spec's initial weights, seed 0).")
@click.option("--layer", default=None, help="Any node path, e.g. relu1 (default: the first conv2d).")
@click.option("--invert", is_flag=True, help="Invert the image first (dark digits on white paper).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@set_option
@user_errors
def inspect_activations(spec, image, weights, layer, invert, output, overrides):
    """Every feature map of a layer for one IMAGE (a file, or sample, sample:flower)."""
    from .inspect import activations_picture

    picture = activations_picture(spec, weights, image, output, layer=layer, params=parse_overrides(overrides),
                                  invert=invert)
    click.echo(f"wrote {picture.path}")


@inspect_group.command(name="top-patches")
@click.argument("spec")
@click.option("--weights", "-w", metavar="RUN_OR_WEIGHTS", default=None,
              help="safetensors weights or a run folder (default: the spec's initial weights, seed 0).")
@click.option("--data", default=None, help="digits (default), synthetic:N, a .csv of path,label or a class folder.")
@click.option("--layer", required=True, help="Any node path, e.g. conv2 or relu2.")
@click.option("--units", type=click.IntRange(1, 256), default=8, show_default=True,
              help="How many units (channels): those with the strongest response.")
@click.option("--channels", default=None, metavar="LIST", help="These units instead, e.g. 0,3,5.")
@click.option("--k", type=click.IntRange(1, 64), default=9, show_default=True, help="Patches per unit.")
@click.option("--limit", type=click.IntRange(1), default=2000, show_default=True, help="Images to scan.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@set_option
@user_errors
def inspect_top_patches(spec, weights, data, layer, units, channels, k, limit, output, overrides):
    """For each unit of a layer, the k data patches (its receptive field) that excite it most."""
    from .inspect import parse_channels, top_patches

    result = top_patches(spec, weights, data, layer, units=units, k=k, channels=parse_channels(channels),
                         limit=limit, params=parse_overrides(overrides), output=output)
    click.echo(f"wrote {result.picture.path}")


@main.command(name="apply")
@click.argument("spec")
@click.argument("image", default="sample")
@click.option("--signed", is_flag=True, help="Red positive, blue negative (default: |response|, white edges).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@set_option
@user_errors
def apply_command(spec, image, signed, output, overrides):
    """Run a spec of fixed kernels (specs/filters/) on IMAGE (default: a bundled sample photo)."""
    from .inspect import apply_filters

    result = apply_filters(spec, image, output, params=parse_overrides(overrides), signed=signed)
    click.echo(f"wrote {result.picture.path}")


if __name__ == "__main__":
    main()
