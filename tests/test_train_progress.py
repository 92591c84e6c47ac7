"""Progress: one plain line per epoch for logs, rich bars on a terminal."""
from __future__ import annotations

import io

from rich.console import Console

from archspec.train import session
from archspec.train.progress import PlainProgress, RichProgress, epoch_line

from shared_specs import TINY_DIGITS

ROW = {"epoch": 3, "train_loss": 0.23456, "train_acc": 0.931, "val_loss": 0.1234, "val_acc": 0.9634, "lr": 0.001,
       "time_s": 2.14, "images_per_s": 5432.1}


def test_epoch_line():
    assert epoch_line(ROW, 20) == ("epoch  3/20  loss 0.2346  acc 93.1%  val_loss 0.1234  val_acc 96.3%  lr 0.001  "
                                   "2.1s  5,432 img/s")
    assert "val_loss" not in epoch_line({**ROW, "val_loss": None, "val_acc": None}, 5)


def test_plain_progress_writes_lines_only():
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.start_epoch(3, 20, 10)
    progress.advance()
    progress.end_epoch(ROW)
    progress.message("done")
    assert stream.getvalue() == epoch_line(ROW, 20) + "\ndone\n"


def test_rich_progress_on_a_terminal(spec_file, tmp_path):
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    session.train(str(spec_file(TINY_DIGITS)), {"epochs": 2, "batch_size": 128, "workers": 0,
                                               "out": str(tmp_path / "run")}, progress=RichProgress(console))
    text = stream.getvalue()
    assert "\x1b[" in text  # a live display drew bars
    assert "epoch 1/2  loss" in text and "epoch 2/2  loss" in text


def test_the_bar_shows_running_loss_accuracy_and_rate_as_keras_does():
    from archspec.train.progress import running_text

    logs = {"running_loss": 0.23456, "running_acc": 0.931, "images_per_s": 5432.1}
    assert running_text(logs) == "loss 0.2346  acc 93.1%  5,432 img/s"
    assert running_text(None) == ""
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = RichProgress(console)
    progress.start_epoch(1, 2, 10)
    progress.advance(logs)
    task = progress.bars.tasks[0]
    assert task.completed == 1 and task.fields["running"] == running_text(logs)
    progress.close()
