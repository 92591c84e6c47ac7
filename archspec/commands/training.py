"""train, evaluate and predict."""
from __future__ import annotations

import sys

import click

from ..errors import UsageError
from ..expand import parse_overrides
from ..weights import resolve_weights
from .common import console, fit_option, report, set_option, user_errors


class NumberOrAuto(click.ParamType):
    """An integer within the option's bounds, or the word auto."""

    name = "N|auto"

    def __init__(self, minimum: int):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < self.minimum:
            self.fail(f"expected an integer >= {self.minimum} or 'auto', found {value!r}", param, ctx)
        return number


class NumberList(click.ParamType):
    """Comma-separated numbers: --split 0.8,0.1,0.1."""

    name = "X,Y,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return [float(part) for part in value.split(",")]
        except ValueError:
            self.fail(f"expected numbers separated by commas, found {value!r}", param, ctx)


class OnOffAuto(click.ParamType):
    name = "auto|on|off"
    WORDS = {"auto": "auto", "on": True, "true": True, "off": False, "false": False}

    def convert(self, value, param, ctx):
        if value in ("auto", True, False):
            return value
        if str(value).lower() not in self.WORDS:
            self.fail(f"expected auto, on or off, found {value!r}", param, ctx)
        return self.WORDS[str(value).lower()]


def _click_option(flag):
    """A click option from a training option's schema (config.flag_specs)."""
    schema, kind = flag.schema, flag.schema.get("type")
    if isinstance(kind, list):  # ["integer", "null"]: null is the default, left unset on the command line
        kind = next(k for k in kind if k != "null")
    help = flag.help + "."  # lower case as written: option values (sgd, auto) start many of them
    if kind == "boolean":
        name = flag.flag[2:]
        return click.option(f"--{name}/--no-{name}", flag.dest, default=None, help=help)
    if "enum" in schema:
        if set(schema["enum"]) == {"auto", True, False}:
            type_ = OnOffAuto()
        else:
            type_ = click.Choice([str(v) for v in schema["enum"]])
    elif "anyOf" in schema:
        type_ = NumberOrAuto(next(s.get("minimum", 0) for s in schema["anyOf"] if s.get("type") == "integer"))
    elif kind in ("integer", "number"):
        bounds = dict(min=schema.get("minimum", schema.get("exclusiveMinimum")),
                      max=schema.get("maximum", schema.get("exclusiveMaximum")),
                      min_open="exclusiveMinimum" in schema, max_open="exclusiveMaximum" in schema)
        type_ = click.IntRange(**bounds) if kind == "integer" else click.FloatRange(**bounds)
    elif kind == "array":
        type_ = NumberList()
    else:
        type_ = str
    return click.option(flag.flag, flag.dest, type=type_, multiple=flag.multiple, default=None, help=help)


def training_options(command):
    """Every flagged training option as a click option, in the dataclass's order."""
    from ..train.config import flag_specs

    for flag in reversed(flag_specs()):
        command = _click_option(flag)(command)
    return command


LAUNCH_OPTIONS = ("--devices", "--nodes", "--node-rank", "--master", "--max-restarts", "--run-id")


def _without_launch_options(argv: list[str]) -> list[str]:
    """The command line the workers get: what torchrun is told is not repeated to them."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in LAUNCH_OPTIONS)):
            out.append(arg)
    return out


def _launch(devices: int, nodes: int, node_rank: int, master: str | None, max_restarts: int,
            run_id: str | None) -> int:
    from ..train.distributed import launch

    if nodes > 1 and not master:
        raise UsageError(f"--nodes {nodes} needs --master ADDR:PORT, the rendezvous every node joins")
    if master and (master.count(":") != 1 or not master.rsplit(":", 1)[1].isdigit()):
        raise UsageError(f"--master {master}: expected ADDR:PORT, for example node001:29500")
    if node_rank >= nodes:
        raise UsageError(f"--node-rank {node_rank}: expected 0 to {nodes - 1} with --nodes {nodes}")
    if nodes > 1 and not run_id:
        raise UsageError(f"--nodes {nodes} needs --run-id ID, the same on every node (on SLURM: $SLURM_JOB_ID)")
    argv = _without_launch_options(sys.argv[sys.argv.index("train") + 1:])
    return launch(argv, devices, nodes=nodes, node_rank=node_rank, master=master, max_restarts=max_restarts,
                  launch_id=run_id)


@click.command()
@click.argument("spec", required=False)
@training_options
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="A YAML file of training options (the keys of a spec's train: section).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), help="Continue the run in this folder.")
@click.option("--devices", type=click.IntRange(1), default=1, help="Processes per node, launched with torchrun (DDP).")
@click.option("--nodes", type=click.IntRange(1), default=1, help="Machines taking part (torchrun --nnodes).")
@click.option("--node-rank", type=click.IntRange(0), default=0, help="This machine's number, 0 to nodes-1.")
@click.option("--master", metavar="ADDR:PORT", help="The rendezvous every node joins (torchrun --rdzv-endpoint).")
@click.option("--max-restarts", type=click.IntRange(0), default=0,
              help="Restart the group this many times when a worker fails; it resumes from the last checkpoint.")
@click.option("--run-id", help="The launch's id, the same on every node; started again with it, a run continues.")
@set_option
@user_errors
def train(spec, config_file, resume, devices, nodes, node_rank, master, max_restarts, run_id, overrides, **flags):
    """Train SPEC and leave metrics, plots, weights and a test report in runs/NAME.

    Every option can also be set in the spec's train: section or a --config file; the command
    line wins. The options and their defaults: docs/training.md.
    """
    from ..train.config import options_from_flags
    from ..train.distributed import launched_as_main, under_torchrun

    if (devices > 1 or nodes > 1 or master or max_restarts) and not under_torchrun():
        sys.exit(_launch(devices, nodes, node_rank, master, max_restarts, run_id))
    if not spec and not resume:
        raise UsageError("give a SPEC to train, or --resume RUN_FOLDER")
    from ..train import session
    from ..train.progress import PlainProgress, RichProgress
    from ..train.trainer import Interrupted

    options = options_from_flags(flags)
    progress = RichProgress(console()) if sys.stdout.isatty() else PlainProgress()
    try:
        outcome = session.train(spec, options, parse_overrides(overrides), config_file, resume, progress)
    except Interrupted as exc:  # Ctrl-C or SIGTERM: saved, with the command that resumes
        report(exc)
        sys.exit(128 + getattr(exc, "signal", 2))
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being handled
        click.echo("error: interrupted again while saving; the last checkpoint is whole", err=True)
        sys.exit(130)
    if not launched_as_main():  # the other processes of a torchrun group: rank 0 speaks for them
        return
    if outcome.test:
        t = outcome.test
        click.echo(f"test: accuracy {100 * t['accuracy']:.2f}%, loss {t['loss']:.4f} on {t['images']} images "
                   f"(best epoch {outcome.best_epoch}; {outcome.stopped})")
    click.echo(f"wrote {outcome.run}")


@click.command()
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
    """Loss, accuracy, top-k and per-class accuracy of trained weights on a data set."""
    import json

    from ..train import session

    result = session.evaluate(spec, str(resolve_weights(weights)), data, split, parse_overrides(overrides),
                              {"device": device})
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    top_k = next((key for key in result if key.startswith("top") and key.endswith("_accuracy")), None)
    top_text = f"top-{top_k[3:-9]} {100 * result[top_k]:.2f}%  " if top_k else ""  # none for k >= classes
    click.echo(f"{result['images']} images  accuracy {100 * result['accuracy']:.2f}%  {top_text}"
               f"loss {result['loss']:.4f}")
    for name, accuracy in result["per_class_accuracy"].items():
        click.echo(f"  {name:>12}  {'-' if accuracy is None else f'{100 * accuracy:.1f}%'}")


@click.command()
@click.argument("spec")
@click.argument("images", nargs=-1, required=True)
@click.option("--weights", type=click.Path(exists=True), required=True,
              help="safetensors weights, or a run folder (its best.safetensors).")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="Classes to show per image.")
@fit_option()
@set_option
@user_errors
def predict(spec, images, weights, top, fit, overrides):
    """The most likely classes of IMAGES under trained weights."""
    from ..train import session

    for result in session.predict(spec, str(resolve_weights(weights)), list(images), top, parse_overrides(overrides),
                                  fit=fit):
        best = ", ".join(f"{c['class']} {100 * c['probability']:.1f}%" for c in result["top"])
        click.echo(f"{result['image']}: {best}")
