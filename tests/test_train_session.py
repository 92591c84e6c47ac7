"""archspec train end to end on small data: runs, resume, failures, transfer learning, evaluate, predict."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from archspec.errors import ArchspecError, UsageError
from archspec.train import session
from archspec.train.runs import read_metrics
from archspec.train.trainer import Interrupted, NonFiniteLoss, Progress
from archspec.weights import read_metadata

from shared_specs import TINY_DIGITS as TINY

FAST = {"epochs": 3, "batch_size": 64, "lr": 0.01, "workers": 0}


@pytest.fixture
def tiny(spec_file):
    return str(spec_file(TINY, "tiny.yaml"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One digits run shared by the tests that only read what it left."""
    folder = tmp_path_factory.mktemp("shared")
    spec = folder / "tiny.yaml"
    spec.write_text(TINY)
    outcome = session.train(str(spec), {**FAST, "epochs": 4, "out": str(folder / "run")})
    return spec, outcome


def test_a_run_leaves_everything_the_issue_lists(trained):
    _, outcome = trained
    names = {p.name for p in outcome.run.iterdir()}
    assert {"config.yaml", "metrics.csv", "curves.png", "confusion.png", "best.safetensors", "last.safetensors",
            "checkpoint.safetensors", "report.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]  # atomic writes leave no temporary files
    rows = read_metrics(outcome.run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert all(r["images_per_s"] > 0 and r["time_s"] > 0 and r["lr"] == pytest.approx(0.01) for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    report = json.loads((outcome.run / "report.json").read_text())
    assert report["images"] == 270 and report["accuracy"] > 0.85  # it learned
    assert sum(map(sum, report["confusion"])) == 270
    assert set(report["per_class_accuracy"]) == {str(i) for i in range(10)}


def test_weights_carry_what_prediction_needs(trained):
    _, outcome = trained
    meta = read_metadata(outcome.run / "best.safetensors")
    assert json.loads(meta["archspec.classes"]) == [str(i) for i in range(10)]
    assert len(json.loads(meta["archspec.mean"])) == 1 and json.loads(meta["archspec.input"]) == [1, 8, 8]


def test_evaluate_reproduces_the_runs_test_figures(trained):
    spec, outcome = trained
    report = session.evaluate(str(spec), str(outcome.run / "best.safetensors"))
    assert report["images"] == 270
    assert report["accuracy"] == pytest.approx(outcome.test["accuracy"])
    everything = session.evaluate(str(spec), str(outcome.run / "best.safetensors"), data="digits")
    assert everything["images"] == 1797


def test_predict_top_classes(trained, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    spec, outcome = trained
    digits = load_digits()
    paths = []
    for i in range(20):
        path = tmp_path / f"{i}.png"
        Image.fromarray((digits.images[i] * 255 / 16).round().astype("uint8")).save(path)
        paths.append(str(path))
    results = session.predict(str(spec), str(outcome.run / "best.safetensors"), paths, top=3)
    assert all(len(r["top"]) == 3 for r in results)
    assert all(abs(sum(c["probability"] for c in r["top"]) - 1) < 1 for r in results)
    right = sum(r["top"][0]["class"] == str(digits.target[i]) for i, r in enumerate(results))
    assert right >= 16


def test_a_second_run_never_overwrites_the_first(tiny, tmp_path):
    first = session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "r")}).run
    second = session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "r")}).run
    assert first.name == "r" and second.name == "r-2"


class StopAfter(Progress):
    """Ctrl-C after the given epoch has ended (its checkpoint is written by then)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def end_epoch(self, row):
        if row["epoch"] == self.epoch:
            raise KeyboardInterrupt


def test_resume_after_ctrl_c_ends_like_an_uninterrupted_run(tiny, tmp_path):
    options = {**FAST, "epochs": 4, "augment": {"rotation": 10, "noise": 0.02}, "schedule": "cosine"}
    whole = session.train(tiny, {**options, "out": str(tmp_path / "whole")})
    with pytest.raises(Interrupted, match="--resume") as caught:
        session.train(tiny, {**options, "out": str(tmp_path / "cut")}, progress=StopAfter(2))
    assert "end of epoch 2" in str(caught.value)
    assert (tmp_path / "cut" / "interrupted.safetensors").exists()
    assert len(read_metrics(tmp_path / "cut" / "metrics.csv")) == 2
    resumed = session.train(None, resume=str(tmp_path / "cut"))
    assert resumed.run == tmp_path / "cut"
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in whole.history]
    assert resumed.test["accuracy"] == whole.test["accuracy"]


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(UsageError, match="no config.yaml"):
        session.train(None, resume=str(tmp_path))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    def poison(trainer):  # after epoch 1 is saved, break the weights
        with torch.no_grad():
            trainer.model.head.weight.fill_(float("nan"))

    from archspec.train import trainer as trainer_module

    original = trainer_module.Trainer.fit

    def fit(self):
        saver = self.on_epoch

        def on_epoch(t, best):
            saver(t, best)
            if t.epoch == 1:
                poison(t)
        self.on_epoch = on_epoch
        return original(self)

    trainer_module.Trainer.fit = fit
    try:
        with pytest.raises(NonFiniteLoss, match=r"loss became nan at epoch 2, batch 1.*last good checkpoint "
                                                r"\(epoch 1\) is kept"):
            session.train(tiny, {**FAST, "out": str(tmp_path / "nan")})
    finally:
        trainer_module.Trainer.fit = original
    from archspec.train.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "nan" / "checkpoint.safetensors")
    assert state["epoch"] == 1 and torch.isfinite(state["model"]["head.weight"]).all()


def test_early_stopping(tiny, tmp_path):
    outcome = session.train(tiny, {**FAST, "epochs": 10, "lr": 1e-9, "out": str(tmp_path / "es"),
                                   "early_stopping": {"metric": "val_acc", "patience": 2, "min_delta": 0.05}})
    assert outcome.stopped.startswith("early stopping at epoch 3")
    assert len(outcome.history) == 3 and outcome.best_epoch == 1


def test_classes_must_match_the_data(tiny):
    with pytest.raises(ArchspecError, match=r"output is 10 but the data has 4 classes \(set the classes parameter: "
                                            r"--set classes=4\)"):
        session.train(tiny, {**FAST, "data": "synthetic:64:4"})


def test_transfer_learning_new_head_freeze_and_phased_unfreezing(trained, tiny, tmp_path):
    _, source = trained
    outcome = session.train(tiny, {
        **FAST, "data": "synthetic:400:4", "out": str(tmp_path / "tl"), "init": str(source.run / "best.safetensors"),
        "freeze": ["conv1", "fc"], "unfreeze": [{"epoch": 3, "layers": ["fc"], "lr_factor": 0.1}]},
        params={"classes": 4})
    report = outcome.init_report
    assert sorted(report.loaded) == ["conv1.bias", "conv1.weight", "fc.bias", "fc.weight"]
    assert sorted(m.split(":")[0] for m in report.mismatched) == ["head.bias", "head.weight"]
    assert any("kept their initial values (other shape): head.weight" in n for n in outcome.notes)
    from safetensors.torch import load_file

    start = load_file(str(source.run / "best.safetensors"))
    end = load_file(str(outcome.run / "last.safetensors"))
    assert torch.equal(start["conv1.weight"], end["conv1.weight"])  # frozen throughout
    assert not torch.equal(start["fc.weight"], end["fc.weight"])  # unfrozen at epoch 3
    lrs = [r["lr"] for r in outcome.history]
    assert lrs[:2] == [pytest.approx(0.01)] * 2 and lrs[2] == pytest.approx(0.001)


def test_unreadable_images_stop_or_are_skipped(tiny, tmp_path):
    from PIL import Image

    rows = []
    for i in range(60):
        path = tmp_path / f"img{i}.png"
        Image.new("L", (8, 8), color=40 * (i % 2)).save(path)
        rows.append([path.name, str(i % 2)])
    (tmp_path / "img7.png").write_bytes(b"not a png")
    with open(tmp_path / "list.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    options = {**FAST, "epochs": 1, "data": str(tmp_path / "list.csv"), "out": str(tmp_path / "run")}
    with pytest.raises(ArchspecError, match="img7.png"):
        session.train(tiny, options, params={"classes": 2})
    with pytest.warns(UserWarning, match="img7.png"):
        outcome = session.train(tiny, {**options, "bad_images": "skip"}, params={"classes": 2})
    config = (outcome.run / "config.yaml").read_text()
    assert "train: 41" in config and "val: 9" in config  # 59 readable images, split 70/15/15


def test_auto_batch_size_on_the_cpu(tiny, tmp_path):
    outcome = session.train(tiny, {**FAST, "epochs": 1, "batch_size": "auto", "out": str(tmp_path / "auto")})
    batch = int(next(line for line in (outcome.run / "config.yaml").read_text().splitlines()
                     if "batch_size:" in line and "auto" not in line).split(":")[1])
    assert batch & (batch - 1) == 0 and 1 <= batch <= 1257 // 32  # at least 32 steps an epoch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_bf16_channels_last_and_auto_batch(tiny, tmp_path):
    outcome = session.train(tiny, {**FAST, "batch_size": "auto", "device": "cuda", "out": str(tmp_path / "gpu")})
    config = (outcome.run / "config.yaml").read_text()
    precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert f"precision: {precision}" in config and "channels_last: true" in config
    assert outcome.test["accuracy"] > 0.8


def test_api_options_are_checked_like_the_yaml(tiny):
    with pytest.raises(UsageError, match="epochs"):
        session.train(tiny, {"epochs": 0})


# ------------------------------------------------------------------ interrupted at any moment, resumed exactly


class StopAtStart(Progress):
    """A signal as the first epoch starts: only the run folder's first files exist."""

    def __init__(self, signum=None):
        self.signum = signum

    def start_epoch(self, epoch, epochs, batches):
        if self.signum is None:
            raise KeyboardInterrupt
        import os

        os.kill(os.getpid(), self.signum)


KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _figures(history):
    return [[r[k] for k in KEYS] for r in history]


def test_a_run_stopped_before_its_first_epoch_resumes_to_the_same_result(tiny, tmp_path):
    options = {**FAST, "epochs": 2}
    whole = session.train(tiny, {**options, "out": str(tmp_path / "whole")})
    with pytest.raises(Interrupted, match="--resume") as caught:
        session.train(tiny, {**options, "out": str(tmp_path / "cut")}, progress=StopAtStart())
    assert caught.value.signal == 2 and "error:" not in caught.value.problem.message
    assert (tmp_path / "cut" / "checkpoint.safetensors").is_file()  # the state before epoch 1
    resumed = session.train(None, resume=str(tmp_path / "cut"))
    assert _figures(resumed.history) == _figures(whole.history)


def test_sigterm_stops_like_ctrl_c_and_says_so(tiny, tmp_path):
    import signal

    with pytest.raises(Interrupted, match="--resume") as caught:
        session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "r")}, progress=StopAtStart(signal.SIGTERM))
    assert caught.value.signal == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is taken down again


def test_a_run_folder_without_a_checkpoint_resumes_from_scratch(tiny, tmp_path):
    whole = session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "whole")})
    with pytest.raises(Interrupted):
        session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "cut")}, progress=StopAtStart())
    (tmp_path / "cut" / "checkpoint.safetensors").unlink()  # as if killed before it was written
    resumed = session.train(None, resume=str(tmp_path / "cut"))
    assert _figures(resumed.history) == _figures(whole.history)


def test_resume_refuses_options_that_would_make_another_run(trained):
    _, outcome = trained
    with pytest.raises(UsageError, match="--lr, --seed would make it another run"):
        session.train(None, {"lr": 0.5, "seed": 3}, resume=str(outcome.run))
    with pytest.raises(UsageError, match="--set"):
        session.train(None, params={"classes": 3}, resume=str(outcome.run))


def test_resume_with_more_epochs_trains_on(tiny, tmp_path):
    first = session.train(tiny, {**FAST, "epochs": 1, "out": str(tmp_path / "r")})
    more = session.train(None, {"epochs": 2}, resume=str(first.run))
    assert [r["epoch"] for r in more.history] == [1, 2]
    with pytest.raises(UsageError, match="already trained 2 epochs"):
        session.train(None, {"epochs": 1}, resume=str(first.run))


class Notes(Progress):
    def __init__(self):
        self.notes = []

    def message(self, text):
        self.notes.append(text)


def test_resume_uses_the_spec_as_trained_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    with pytest.raises(Interrupted):
        session.train("tiny.yaml", {**FAST, "epochs": 1, "out": "r"}, progress=StopAtStart())
    (tmp_path / "tiny.yaml").write_text(TINY.replace("out: 8, kernel: 3", "out: 6, kernel: 3"))  # a shape change
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    notes = Notes()
    resumed = session.train(None, resume=str(tmp_path / "r"), progress=notes)
    assert [r["epoch"] for r in resumed.history] == [1]
    assert any("has changed since this run started" in n for n in notes.notes)


def test_a_spec_name_never_leads_outside_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.yaml").write_text(TINY.replace("name: tiny", "name: ../../escaped"))
    outcome = session.train("evil.yaml", {**FAST, "epochs": 1})
    assert outcome.run.resolve().parent == (tmp_path / "runs").resolve()
    assert not (tmp_path.parent / "escaped").exists()


def test_curves_are_redrawn_within_a_tenth_of_the_run_and_always_at_the_end(monkeypatch, tmp_path):
    """Epochs of 0.4 s and drawings of 1 s: the picture is redrawn once 9 s have passed since the
    last drawing ended, so drawing stays a tenth of the run; the end of the run draws what is left."""
    from types import SimpleNamespace

    from archspec.train import plots

    clock = [0.0]
    drawn: list[int] = []

    def draw(rows, path, best_epoch=None, metric="val_loss"):
        clock[0] += 1.0
        drawn.append(len(rows))

    monkeypatch.setattr(session.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(plots, "save_curves", draw)
    curves = session.CurvesRedraw(tmp_path / "curves.png", "val_loss")
    trainer = SimpleNamespace(epoch=0, history=[], best_epoch=None)
    for epoch in range(1, 31):
        clock[0] += 0.4
        trainer.epoch, trainer.history = epoch, trainer.history + [{"epoch": epoch}]
        curves.after_epoch(trainer)
    assert drawn == [1, 24]  # ended at 1.4 s; 10.6 s at the end of epoch 24
    curves.draw(trainer)
    curves.draw(trainer)  # drawn already: nothing to add
    assert drawn == [1, 24, 30]
