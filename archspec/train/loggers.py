"""Loggers people already open, as callbacks: TensorBoard event files and a per-step CSV.

``--log tensorboard`` writes event files into the run folder with torch's ``SummaryWriter``
(the ``tensorboard`` package is an optional extra: ``pip install 'archspec[tensorboard]'``), so
``tensorboard --logdir runs`` shows every run side by side: per-step loss, running accuracy,
learning rate and images/s; per-epoch training and validation loss and accuracy; the images of
the first batch as the model saw them (normalisation undone); the model's graph where
``torch.jit.trace`` can follow it; histograms of every weight after each epoch.
``--log csv`` writes ``steps.csv``, one row per logged step.

A resumed run continues both where its checkpoint ended: steps logged after it are dropped.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .callbacks import Callback, PeriodicCheckpoints

STEP_COLUMNS = ("step", "epoch", "batch", "loss", "running_loss", "running_acc", "lr", "images_per_s")
IMAGES_SHOWN = 16


class TensorBoardLogger(Callback):
    def __init__(self, folder: Path):
        self.folder = folder
        self.writer = None
        self.images_written = False

    def on_train_begin(self, trainer):
        from torch.utils.tensorboard import SummaryWriter

        # events after the checkpoint's step (an interrupted epoch) are purged on resume
        self.writer = SummaryWriter(str(self.folder), purge_step=trainer.step + 1 if trainer.step else None)

    def on_step_end(self, trainer, logs):
        step, w = logs["step"], self.writer
        w.add_scalar("step/loss", logs["loss"], step)
        w.add_scalar("step/running_accuracy", logs["running_acc"], step)
        w.add_scalar("step/learning_rate", logs["lr"], step)
        if logs["images_per_s"]:
            w.add_scalar("step/images_per_s", logs["images_per_s"], step)
        if not self.images_written and trainer.batch is not None:
            self.images_written = True
            self._first_batch(trainer)

    def _first_batch(self, trainer):
        import torch

        images = trainer.batch[0][:IMAGES_SHOWN].detach().float()  # (B, C, H, W), normalised
        batches = trainer.train_batches
        shown = (images * batches.std + batches.mean).clamp(0, 1).cpu()
        if shown.shape[1] not in (1, 3):  # TensorBoard shows grey or RGB: the first channel of others
            shown = shown[:, :1]
        self.writer.add_images("first_batch", shown, trainer.step)
        was_training = trainer.model.training
        trainer.model.train(False)  # tracing runs a forward: no batch-norm statistics may change
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # add_graph traces with torch.jit
                self.writer.add_graph(trainer.model, images[:1].to(next(trainer.model.parameters()).device))
        except Exception as exc:  # noqa: BLE001 - a graph tracing cannot follow is a missing picture, not a failure
            trainer.progress.message(f"tensorboard: no model graph ({type(exc).__name__}: {exc})"[:200])
        finally:
            trainer.model.train(was_training)

    def on_epoch_end(self, trainer, row):
        epoch, w = row["epoch"], self.writer
        for tag, key in (("loss/training", "train_loss"), ("loss/validation", "val_loss"),
                         ("accuracy/training", "train_acc"), ("accuracy/validation", "val_acc"),
                         ("top_k/validation", "val_top5"), ("learning_rate", "lr"), ("images_per_s", "images_per_s")):
            if row.get(key) is not None:
                w.add_scalar(tag, row[key], epoch)
        for name, parameter in trainer.model.named_parameters():
            w.add_histogram(f"weights/{name}", parameter.detach().float().cpu(), epoch)
        w.flush()

    def on_train_end(self, trainer, result):
        if self.writer is not None:
            self.writer.close()


class CsvStepLogger(Callback):
    """``steps.csv``: one row per logged step, appended and flushed as training goes."""

    def __init__(self, path: Path):
        self.path = path
        self.file = None

    def on_train_begin(self, trainer):
        kept = []
        if self.path.exists():  # a resumed run: keep the steps up to its checkpoint
            with open(self.path, encoding="utf-8", newline="") as f:
                kept = [row for row in csv.DictReader(f) if row.get("step", "").isdigit()
                        and int(row["step"]) <= trainer.step]
        self.file = open(self.path, "w", encoding="utf-8", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=STEP_COLUMNS, extrasaction="ignore", lineterminator="\n")
        self.writer.writeheader()
        self.writer.writerows(kept)

    def on_step_end(self, trainer, logs):
        self.writer.writerow({k: _cell(logs.get(k)) for k in STEP_COLUMNS})

    def on_epoch_end(self, trainer, row):
        self.file.flush()

    def on_train_end(self, trainer, result):
        if self.file is not None:
            self.file.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def run_callbacks(config, folder: Path, metadata: dict[str, str]) -> list[Callback]:
    """The callbacks a run's options ask for: loggers and the periodic weights."""
    callbacks: list[Callback] = []
    if "tensorboard" in config.log:
        try:
            import tensorboard  # noqa: F401 - SummaryWriter needs it
        except ImportError:
            raise UsageError("--log tensorboard needs the tensorboard package: "
                             "pip install 'archspec[tensorboard]'") from None
        callbacks.append(TensorBoardLogger(folder))
    if "csv" in config.log:
        callbacks.append(CsvStepLogger(folder / "steps.csv"))
    if config.checkpoint_every:
        from ..weights import save_weights

        callbacks.append(PeriodicCheckpoints(folder, config.checkpoint_every, config.keep_last,
                                             lambda model, path: save_weights(model, path, metadata)))
    return callbacks
