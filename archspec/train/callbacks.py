"""Callbacks: code of yours that the trainer calls as it goes, as in Keras and Lightning.

Subclass ``Callback`` and override what you need, or pass plain functions to
``archspec.train(..., on_epoch_end=f, on_step_end=g)``. Each hook gets the ``Trainer`` (its
``model``, ``history``, ``epoch``, ``step``, ``best_epoch``) and the figures of the moment. To stop
training, call ``trainer.stop("why")``: the current epoch finishes, its files are written, and the
run ends as an early stop would, with the test report on the best weights.

Hooks run in the main process only (rank 0 under torchrun). The loggers (``loggers.py``) and the
periodic checkpoints are callbacks too. This module never imports torch.
"""
from __future__ import annotations

from typing import Any, Callable


class Callback:
    """Every hook does nothing; override the ones you need."""

    def on_train_begin(self, trainer) -> None:
        """Before the first epoch this run trains (after a resume: the next one)."""

    def on_step_end(self, trainer, logs: dict[str, Any]) -> None:
        """After an optimizer step. ``logs``: epoch, batch, batches, step, loss (this step's),
        running_loss and running_acc (the epoch so far), lr, images_per_s. Called every
        ``log_every`` steps (every step on the CPU) and after an epoch's last step."""

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        """After an epoch's validation and files: ``row`` is its metrics.csv row."""

    def on_train_end(self, trainer, result) -> None:
        """After the last epoch, an early stop or a stop asked for (not after an interruption)."""


class FunctionCallback(Callback):
    """Plain functions as hooks: ``on_epoch_end(trainer, row)`` and ``on_step_end(trainer, logs)``."""

    def __init__(self, on_epoch_end: Callable | None = None, on_step_end: Callable | None = None):
        self.epoch_function, self.step_function = on_epoch_end, on_step_end

    def on_step_end(self, trainer, logs):
        if self.step_function:
            self.step_function(trainer, logs)

    def on_epoch_end(self, trainer, row):
        if self.epoch_function:
            self.epoch_function(trainer, row)


class PeriodicCheckpoints(Callback):
    """``checkpoint_every`` N epochs: the weights as ``epoch-N.safetensors`` (with the run's metadata,
    so evaluate, predict and inspect read them), keeping only the last ``keep_last`` (0: all)."""

    def __init__(self, folder, every: int, keep_last: int, save: Callable[[Any, Any], None]):
        self.folder, self.every, self.keep_last, self.save = folder, every, keep_last, save

    def on_epoch_end(self, trainer, row):
        if self.every <= 0 or trainer.epoch % self.every:
            return
        self.save(trainer.model, self.folder / f"epoch-{trainer.epoch}.safetensors")
        if self.keep_last:
            for old in self.saved()[:-self.keep_last]:
                old.unlink(missing_ok=True)

    def saved(self) -> list:
        """The periodic weights in the folder, oldest first."""
        def epoch_of(path) -> int:
            number = path.stem.split("-", 1)[1]
            return int(number) if number.isdigit() else -1

        return sorted((p for p in self.folder.glob("epoch-*.safetensors") if epoch_of(p) >= 0), key=epoch_of)
