"""train, evaluate and predict."""
from __future__ import annotations

import sys

import click

from ..data import sources as data_sources
from ..errors import UsageError
from ..expand import parse_overrides
from ..weights import resolve_weights
from .common import console, fit_option, report, set_option, user_errors


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
@click.option("--data", help=data_sources.help_text())
@click.option("--val-data", help="A separate validation set (else split off --data).")
@click.option("--test-data", help="A separate test set (else split off --data).")
@click.option("--epochs", type=click.IntRange(1), help="Epochs to train (with --resume: the new total).")
@click.option("--batch-size", type=BatchSize(), help="Images per step, or 'auto' (largest that fits).")
@click.option("--micro-batch", type=click.IntRange(1),
              help="Most images a process puts through at once; a larger share of the batch accumulates gradients.")
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
@click.option("--sync-batchnorm", is_flag=True, default=None,
              help="Under torchrun: batch-norm statistics over the global batch, not each process's share.")
@click.option("--devices", type=click.IntRange(1), default=1, help="Processes per node, launched with torchrun (DDP).")
@click.option("--nodes", type=click.IntRange(1), default=1, help="Machines taking part (torchrun --nnodes).")
@click.option("--node-rank", type=click.IntRange(0), default=0, help="This machine's number, 0 to nodes-1.")
@click.option("--master", metavar="ADDR:PORT", help="The rendezvous every node joins (torchrun --rdzv-endpoint).")
@click.option("--max-restarts", type=click.IntRange(0), default=0,
              help="Restart the group this many times when a worker fails; it resumes from the last checkpoint.")
@click.option("--run-id", help="The launch's id, the same on every node; started again with it, a run continues.")
@set_option
@user_errors
def train(spec, data, val_data, test_data, epochs, batch_size, micro_batch, lr, optimizer, schedule, loss, device,
          precision, compile_model, workers, seed, init_weights, freeze, out, config_file, resume, sync_batchnorm,
          devices, nodes, node_rank, master, max_restarts, run_id, overrides):
    """Train SPEC and leave metrics, plots, weights and a test report in runs/NAME."""
    from ..train.distributed import launched_as_main, under_torchrun

    if (devices > 1 or nodes > 1 or master or max_restarts) and not under_torchrun():
        sys.exit(_launch(devices, nodes, node_rank, master, max_restarts, run_id))
    if not spec and not resume:
        raise UsageError("give a SPEC to train, or --resume RUN_FOLDER")
    from ..train import session
    from ..train.progress import PlainProgress, RichProgress
    from ..train.trainer import Interrupted

    options = dict(data=data, val_data=val_data, test_data=test_data, epochs=epochs, batch_size=batch_size, lr=lr,
                   optimizer=optimizer, schedule=schedule, loss=loss, device=device, precision=precision,
                   compile=compile_model, workers=workers, seed=seed, init=init_weights, freeze=list(freeze) or None,
                   out=out, sync_batchnorm=sync_batchnorm, micro_batch=micro_batch)
    progress = RichProgress(console()) if sys.stdout.isatty() else PlainProgress()
    try:
        outcome = session.train(spec, options, parse_overrides(overrides), config_file, resume, progress)
    except Interrupted as exc:
        report(exc)
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
    """Loss, accuracy, top-5 and per-class accuracy of trained weights on a data set."""
    import json

    from ..train import session

    result = session.evaluate(spec, str(resolve_weights(weights)), data, split, parse_overrides(overrides),
                              {"device": device})
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['images']} images  accuracy {100 * result['accuracy']:.2f}%  "
               f"top-5 {100 * result['top5_accuracy']:.2f}%  loss {result['loss']:.4f}")
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
