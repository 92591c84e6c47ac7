"""archspec.train from Python: the run it returns, callbacks, a stop from a callback, loggers, periodic
weights, and what a run trained with --set leaves for evaluate and predict."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import archspec
from archspec.errors import UsageError
from archspec.train import session
from archspec.train.callbacks import Callback

from shared_specs import TINY_DIGITS

pytestmark = pytest.mark.slow  # trains three small runs: about 20 s of CPU on 2 cores

OPTIONS = {"batch_size": 32, "lr": 0.01, "workers": 0}


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        self.calls.append(("begin", trainer.epoch))

    def on_step_end(self, trainer, logs):
        self.calls.append(("step", logs["step"]))

    def on_epoch_end(self, trainer, row):
        self.calls.append(("epoch", row["epoch"]))

    def on_train_end(self, trainer, result):
        self.calls.append(("end", result.stopped))


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    """One run of two classes (--set classes=2) with every logger, shared by the tests that read it."""
    folder = tmp_path_factory.mktemp("api")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY_DIGITS)
    recorder, epochs_seen = Recorder(), []
    run = archspec.train(str(spec), data="synthetic:160:2", epochs=3, params={"classes": 2}, verbose=False,
                         callbacks=[recorder], on_epoch_end=lambda trainer, row: epochs_seen.append(row["epoch"]),
                         out=str(folder / "run"), log=["tensorboard", "csv"], checkpoint_every=1, keep_last=2,
                         **OPTIONS)
    return spec, run, recorder, epochs_seen


def test_the_run_returned(two_classes):
    spec, run, _, _ = two_classes
    assert [row["epoch"] for row in run.metrics] == [1, 2, 3] and run.stopped == "completed"
    assert run.best_weights == run.folder / "best.safetensors" and run.best_weights.exists()
    assert {"curves.png", "confusion.png", "report.json", "metrics.csv", "steps.csv"} <= set(run.paths)
    assert run.test["images"] == json.loads(run.paths["report.json"].read_text())["images"]
    assert run.params == {"classes": 2}
    model = run.model()
    assert model.head.out_features == 2 and not model.training


def test_callbacks_are_called_in_order(two_classes):
    _, run, recorder, epochs_seen = two_classes
    steps_per_epoch = 4  # 112 learning images (70% of 160) in batches of 32
    assert recorder.calls[0] == ("begin", 0) and recorder.calls[-1] == ("end", "completed")
    assert [c for c in recorder.calls if c[0] == "epoch"] == [("epoch", 1), ("epoch", 2), ("epoch", 3)]
    steps = [c[1] for c in recorder.calls if c[0] == "step"]
    assert steps == list(range(1, 3 * steps_per_epoch + 1))  # every step on the CPU
    assert epochs_seen == [1, 2, 3]


def test_fewer_than_six_classes_report_no_top5(two_classes):
    spec, run, _, _ = two_classes
    assert not [k for k in run.test if k.startswith("top")]  # 5 guesses among 2 classes are always right
    assert all(row["val_top5"] is None for row in run.metrics)


def test_a_run_trained_with_set_evaluates_and_predicts(two_classes, tmp_path):
    from PIL import Image

    spec, run, _, _ = two_classes
    report = session.evaluate(str(spec), str(run.folder))  # no --set given: the run's own parameters
    assert report["images"] == run.test["images"] and report["accuracy"] == pytest.approx(run.test["accuracy"])
    image = tmp_path / "x.png"
    Image.new("L", (8, 8), color=128).save(image)
    (result,) = session.predict(str(spec), str(run.best_weights), [str(image)], top=5)
    assert len(result["top"]) == 2


def test_evaluate_and_predict_on_the_command_line(two_classes, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from archspec.cli import main

    spec, run, _, _ = two_classes
    result = CliRunner().invoke(main, ["evaluate", str(spec), "--weights", str(run.folder)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "top-" not in result.output
    Image.new("L", (8, 8), color=128).save(tmp_path / "x.png")
    result = CliRunner().invoke(main, ["predict", str(spec), "--weights", str(run.folder), str(tmp_path / "x.png")])
    assert result.exit_code == 0 and result.output.count("%") == 2, result.output


def test_tensorboard_event_files_read_back(two_classes):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run, _, _ = two_classes
    events = EventAccumulator(str(run.folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert [e.step for e in events.Scalars("step/loss")] == list(range(1, 13))
    assert [e.step for e in events.Scalars("loss/validation")] == [1, 2, 3]
    validation = [e.value for e in events.Scalars("accuracy/validation")]
    assert validation == pytest.approx([row["val_acc"] for row in run.metrics], abs=1e-6)
    assert [e.value for e in events.Scalars("learning_rate")] == pytest.approx([0.01] * 3)
    grid = events.Images("first_batch")[0]  # the first 16 images of 8×8, tiled by TensorBoard
    assert "first_batch" in tags["images"] and grid.width * grid.height == 16 * 8 * 8
    assert tags["graph"] is True and len(events.Graph().node) > 5
    assert {"weights/conv1.weight", "weights/head.bias"} <= set(tags["histograms"])
    assert len(events.Histograms("weights/conv1.weight")) == 3


def test_csv_step_log(two_classes):
    _, run, _, _ = two_classes
    with open(run.paths["steps.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert rows[0]["batch"] == "1" and rows[3]["batch"] == "4" and rows[4]["epoch"] == "2"
    assert all(0 <= float(r["running_acc"]) <= 1 and float(r["loss"]) > 0 for r in rows)


def test_periodic_weights_keep_the_last_k(two_classes):
    _, run, _, _ = two_classes
    assert sorted(p for p in run.paths if p.startswith("epoch-")) == ["epoch-2.safetensors", "epoch-3.safetensors"]
    report = session.evaluate(str(run.spec), str(run.paths["epoch-2.safetensors"]))  # they carry the metadata
    assert report["images"] == run.test["images"]


def test_a_callback_stops_training_and_a_stopped_run_stays_stopped(tmp_path, spec_file):
    spec = str(spec_file(TINY_DIGITS))

    def stop_at_two(trainer, row):
        if row["epoch"] == 2:
            trainer.stop("accuracy is good enough")

    run = archspec.train(spec, data="synthetic:96:2", epochs=6, params={"classes": 2}, verbose=False,
                         on_epoch_end=stop_at_two, out=str(tmp_path / "stop"), **OPTIONS)
    assert run.stopped == "accuracy is good enough at epoch 2" and len(run.metrics) == 2
    assert run.test is not None  # the test report still comes, on the best weights

    # early stopping ended a run; resuming it with more epochs must not train on
    early = archspec.train(spec, data="synthetic:96:2", epochs=4, params={"classes": 2}, verbose=False,
                           early_stopping={"metric": "val_acc", "patience": 1, "min_delta": 0.5},
                           out=str(tmp_path / "early"), **{**OPTIONS, "lr": 1e-9})
    assert early.stopped.startswith("early stopping at epoch 2") and len(early.metrics) == 2
    resumed = session.train(None, {"epochs": 6}, resume=str(tmp_path / "early"))
    assert len(resumed.history) == 2 and resumed.stopped.startswith("early stopping at epoch 2")


def test_options_are_checked_and_import_archspec_stays_light(spec_file):
    with pytest.raises(UsageError, match="learning_rate"):
        archspec.train(str(spec_file(TINY_DIGITS)), epochs=1, learning_rate=0.1)
    probe = "import sys, archspec; assert callable(archspec.train); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
