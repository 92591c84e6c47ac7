"""How training shows itself: rich bars on a terminal, one plain line per epoch in CI logs.

On a terminal the bar reads as Keras' does: ``epoch 3/20 ━━━━━━ 12/40  loss 0.2345  acc 93.1%
5,432 img/s  0:00:04``, the loss and accuracy running over the epoch so far.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from .trainer import Progress


def running_text(logs: dict[str, Any] | None) -> str:
    """``loss 0.2345  acc 93.1%  5,432 img/s`` from a step's logs (the epoch so far); empty before any."""
    if not logs:
        return ""
    text = f"loss {logs['running_loss']:.4f}  acc {100 * logs['running_acc']:.1f}%"
    if logs.get("images_per_s"):
        text += f"  {logs['images_per_s']:,.0f} img/s"
    return text


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """``epoch  3/20  loss 0.2345  acc 93.1%  val_loss 0.1234  val_acc 96.3%  lr 1e-03  2.1s  5,432 img/s``."""
    parts = [f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}",
             f"loss {row['train_loss']:.4f}", f"acc {100 * row['train_acc']:.1f}%"]
    if row.get("val_loss") is not None:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_acc {100 * row['val_acc']:.1f}%"]
    parts += [f"lr {row['lr']:.3g}", f"{row['time_s']:.1f}s"]
    if row.get("images_per_s"):
        parts.append(f"{row['images_per_s']:,.0f} img/s")
    return "  ".join(parts)


class PlainProgress(Progress):
    """One line per epoch: readable in a log, no control characters."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.epochs = 0

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        self.epochs = epochs

    def end_epoch(self, row: dict[str, Any]) -> None:
        print(epoch_line(row, self.epochs), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class RichProgress(Progress):
    """A bar per epoch that turns into the epoch's line when it ends."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn, TimeRemainingColumn

        self.console = console
        self.bars = Bars(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                         TextColumn("{task.fields[running]}"), TimeRemainingColumn(), console=console,
                         transient=True)
        self.task = None
        self.epochs = 0
        self.started = False

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        self.epochs = epochs
        if self.task is not None:
            self.bars.remove_task(self.task)
        self.task = self.bars.add_task("train", total=batches, epoch=f"{epoch}/{epochs}", running="")

    def advance(self, logs: dict[str, Any] | None = None) -> None:
        if logs:
            self.bars.update(self.task, advance=1, running=running_text(logs))
        else:
            self.bars.advance(self.task)

    def end_epoch(self, row: dict[str, Any]) -> None:
        self.console.print(epoch_line(row, self.epochs), highlight=False)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def close(self) -> None:
        if self.started:
            self.bars.stop()
            self.started = False
