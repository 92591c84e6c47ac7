"""Fault injection: a short run killed, interrupted, starved of disk or raced at many points.

Each case runs `archspec train` in a child process on the small digits spec, breaks it, and
checks that the run folder is consistent (whole files only, resumable) and that `--resume` ends
with exactly the metrics of an uninterrupted run. Kills during writes are placed by counting the
renames that finish archspec's atomic writes (os.replace in the child) and killing the process
just before the Nth one, when a temporary file is written but not yet in place.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archspec.train.checkpoint import load_checkpoint
from archspec.train.runs import read_metrics, remove_stale_drafts
from shared_specs import TINY_DIGITS

pytestmark = pytest.mark.slow

OPTIONS = ["--epochs", "2", "--batch-size", "64", "--lr", "0.01", "--workers", "0", "--device", "cpu"]
# the child: archspec's CLI, with os.replace counting (and killing before the Nth) when asked
CHILD = """
import os, signal, sys
kill_at = int(os.environ.get("KILL_AT_REPLACE", "0"))
if kill_at:
    real, count = os.replace, [0]
    def replace(src, dst, *a, **k):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **k)
    os.replace = replace
if os.environ.get("SIGNAL_AT_EPOCH"):
    from archspec.train import trainer
    original = trainer.Trainer._train_epoch
    def epoch(self, n):
        if n == int(os.environ["SIGNAL_AT_EPOCH"]):
            os.kill(os.getpid(), int(os.environ["SIGNAL"]))
        return original(self, n)
    trainer.Trainer._train_epoch = epoch
from archspec.cli import main
sys.argv = ["archspec", *sys.argv[1:]]
main()
"""


def archspec(*args, cwd, env=None, preexec=None):
    return subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec, timeout=600)


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    (folder / "tiny.yaml").write_text(TINY_DIGITS)
    return folder


@pytest.fixture(scope="module")
def whole(place):
    result = archspec("train", "tiny.yaml", *OPTIONS, "--out", "whole", cwd=place)
    assert result.returncode == 0, result.stderr
    return read_metrics(place / "whole" / "metrics.csv")


KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def assert_consistent_and_resumable(folder: Path, whole, cwd):
    # a draft killed before its rename is no run folder; the next start removes it (its lock died with it)
    remove_stale_drafts(folder.parent, older_than_s=0)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")], "a draft was left"
    if not folder.exists():
        return  # killed before the folder was born: nothing to resume, nothing half made
    state = load_checkpoint(folder / "checkpoint.safetensors")  # whole, and checked
    assert 0 <= state["epoch"] <= 2
    result = archspec("train", "--resume", str(folder), cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_metrics(folder / "metrics.csv")
    assert [[r[k] for k in KEYS] for r in rows] == [[r[k] for k in KEYS] for r in whole]
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("n", [2, 6])  # in the birth of the folder; in epoch 1's saves
def test_kill_9_before_the_nth_atomic_write_lands(place, whole, n):
    out = place / f"kill{n}"
    result = archspec("train", "tiny.yaml", *OPTIONS, "--out", out.name, cwd=place, env={"KILL_AT_REPLACE": str(n)})
    assert result.returncode == -signal.SIGKILL
    assert_consistent_and_resumable(out, whole, place)


@pytest.mark.parametrize("signum, code, epoch", [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 2)])
def test_a_signal_saves_and_says_how_to_resume(place, whole, signum, code, epoch):
    out = place / f"sig{signum}-{epoch}"
    result = archspec("train", "tiny.yaml", *OPTIONS, "--out", out.name, cwd=place,
                      env={"SIGNAL_AT_EPOCH": str(epoch), "SIGNAL": str(int(signum))})
    assert result.returncode == code, result.stderr
    assert "Aborted!" not in result.stderr and "error: error:" not in result.stderr
    assert f"archspec train --resume {out.name}" in result.stderr
    assert_consistent_and_resumable(out, whole, place)


def test_kill_9_at_a_random_moment(place, whole):
    out = place / "random"
    child = subprocess.Popen([sys.executable, "-c", CHILD, "train", "tiny.yaml", *OPTIONS, "--out", out.name],
                             cwd=place, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "metrics.csv").exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the folder is born, then a little more
    time.sleep(0.3)
    child.kill()
    child.wait()
    assert_consistent_and_resumable(out, whole, place)


def test_runs_started_at_once_into_one_out_never_share(place, whole):
    children = [subprocess.Popen([sys.executable, "-c", CHILD, "train", "tiny.yaml", *OPTIONS, "--epochs", "1",
                                  "--out", "same", "--seed", str(seed)], cwd=place, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outputs = [c.communicate(timeout=600) for c in children]
    assert [c.returncode for c in children] == [0, 0], outputs
    folders = sorted(p.name for p in place.iterdir() if p.name.startswith("same"))
    assert folders == ["same", "same-2"]
    import yaml

    seeds = {yaml.safe_load((place / f / "config.yaml").read_text())["train"]["seed"] for f in folders}
    assert seeds == {1, 2}  # each folder's config is its own run's


def test_a_full_disk_is_a_message_and_the_run_resumes(place, whole):
    out = place / "full"

    def small_files():  # every file the child writes is cut at 30 KB: a checkpoint write fails
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))

    result = archspec("train", "tiny.yaml", *OPTIONS, "--out", out.name, cwd=place, preexec=small_files)
    if result.returncode == 0:
        pytest.skip("the platform did not enforce RLIMIT_FSIZE")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "cannot write" in result.stderr, result.stderr
    assert_consistent_and_resumable(out, whole, place)
