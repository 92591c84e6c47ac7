"""train, evaluate and predict."""
from __future__ import annotations

import sys

import click

from ..errors import UsageError
from ..expand import parse_overrides
from ..weights import resolve_weights
from .common import console, report, set_option, user_errors


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


@click.command()
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
    from ..train.distributed import launch, under_torchrun

    if devices > 1 and not under_torchrun():
        sys.exit(launch(devices, _without_devices(sys.argv[sys.argv.index("train") + 1:])))
    if not spec and not resume:
        raise UsageError("give a SPEC to train, or --resume RUN_FOLDER")
    from ..train import session
    from ..train.progress import PlainProgress, RichProgress
    from ..train.trainer import Interrupted

    options = dict(data=data, val_data=val_data, test_data=test_data, epochs=epochs, batch_size=batch_size, lr=lr,
                   optimizer=optimizer, schedule=schedule, loss=loss, device=device, precision=precision,
                   compile=compile_model, workers=workers, seed=seed, init=init_weights, freeze=list(freeze) or None,
                   out=out)
    progress = RichProgress(console()) if sys.stdout.isatty() else PlainProgress()
    try:
        outcome = session.train(spec, options, parse_overrides(overrides), config_file, resume, progress)
    except Interrupted as exc:  # Ctrl-C or SIGTERM: saved, with the command that resumes
        report(exc)
        sys.exit(128 + getattr(exc, "signal", 2))
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being handled
        click.echo("error: interrupted again while saving; the last checkpoint is whole", err=True)
        sys.exit(130)
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
@set_option
@user_errors
def predict(spec, images, weights, top, overrides):
    """The most likely classes of IMAGES under trained weights."""
    from ..train import session

    for result in session.predict(spec, str(resolve_weights(weights)), list(images), top, parse_overrides(overrides)):
        best = ", ".join(f"{c['class']} {100 * c['probability']:.1f}%" for c in result["top"])
        click.echo(f"{result['image']}: {best}")
