"""A cluster on one host: torchrun groups on gloo over loopback train as one process on the same global batch.

Each test starts at most two torchrun launchers (two workers each), bounded by a timeout, and
kills every process it started, workers included, whatever happens. The data (synthetic:117:4)
leaves 81 training images: batches of 10 end with a batch of 1, so the last step gives some
processes an empty share, and the uneven shares (3, 3, 2, 2 of 10 over four processes) test the
loss weighting; validation (18) and test (18) do not divide by four either.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import archspec
from archspec.train import session
from archspec.train.runs import read_metrics
from shared_specs import PLAIN_8X8

pytestmark = pytest.mark.slow
TIMEOUT_S = 400  # a bound on each group, so that a hang fails the test instead of the suite
OPTIONS = {"data": "synthetic:117:4", "epochs": 2, "batch_size": 10, "lr": 0.05, "optimizer": "sgd", "workers": 0,
           "device": "cpu"}
ARGS = ["--data", "synthetic:117:4", "--epochs", "2", "--batch-size", "10", "--lr", "0.05", "--optimizer", "sgd",
        "--workers", "0", "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]

PLAIN = PLAIN_8X8
NORMED = PLAIN.replace("name: plain", "name: normed").replace("  - relu\n", "  - {batchnorm2d: {}, name: bn1}\n  - relu\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@contextmanager
def launchers(folder: Path):
    """start(command) -> Popen with output in a file; on leaving, every process started is killed."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(command: list[str], env: dict[str, str] = ENV) -> subprocess.Popen:
        log = folder / f"launcher{len(started)}.log"
        process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=folder,
                                   start_new_session=True)
        started.append((process, log))
        return process

    try:
        yield start
    finally:
        for process, _ in started:
            if process.poll() is None:
                for pid in _descendants(process.pid) + [process.pid]:  # torchrun puts workers in sessions of their own
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            process.wait()


def finish(processes: list[subprocess.Popen], logs: list[Path]) -> str:
    deadline = time.monotonic() + TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"no end after {TIMEOUT_S} s:\n" + "\n".join(log.read_text() for log in logs))
    output = "\n".join(log.read_text() for log in logs)
    assert all(p.returncode == 0 for p in processes), output
    return output


def assert_same_run(folder: Path, single, test_images: int | None = None) -> None:
    """Weights (batch-norm statistics too) and every metric of ``folder`` equal the single process's."""
    many, one = load_file(str(folder / "last.safetensors")), load_file(str(single.run / "last.safetensors"))
    assert list(many) == list(one)
    for name in one:
        assert torch.allclose(many[name].double(), one[name].double(), atol=1e-5), name
    rows = read_metrics(folder / "metrics.csv")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in single.history]
    for a, b in zip(rows, single.history):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    report = json.loads((folder / "report.json").read_text())
    assert report["images"] == single.test["images"] == test_images  # every test image, once
    assert report["confusion"] == single.test["confusion"]
    assert report["loss"] == pytest.approx(single.test["loss"], rel=1e-4)
    assert (folder / "confusion.png").stat().st_size > 0


def test_two_processes_with_sync_batchnorm_equal_one(spec_file, tmp_path):
    spec = str(spec_file(NORMED, "normed.yaml"))
    with launchers(tmp_path) as start:
        group = start([sys.executable, "-m", "archspec", "train", spec, *ARGS, "--devices", "2", "--sync-batchnorm",
                       "--out", str(tmp_path / "ddp")])
        output = finish([group], [tmp_path / "launcher0.log"])
    config = (tmp_path / "ddp" / "config.yaml").read_text()
    assert "processes: 2" in config and "train: 81" in config and not (tmp_path / "ddp-2").exists()
    assert output.count("epoch 1/2") == 1 and output.count("test: accuracy") == 1  # rank 0 speaks for both

    single = session.train(spec, {**OPTIONS, "out": str(tmp_path / "one")})
    assert_same_run(tmp_path / "ddp", single, test_images=18)
    initial = archspec.build(spec, seed=0).state_dict()
    assert not torch.allclose(initial["head.weight"], single_weights(single)["head.weight"], atol=1e-3)  # it trained


def single_weights(outcome):
    return load_file(str(outcome.run / "last.safetensors"))


def test_two_nodes_of_two_processes_equal_one(spec_file, tmp_path):
    """Two torchrun launchers meet at a c10d rendezvous on loopback: one by hand, one through --nodes."""
    spec = str(spec_file(PLAIN, "plain.yaml"))
    port, run_id = free_port(), f"test-{os.getpid()}"
    out = ["--out", str(tmp_path / "cluster")]
    as_documented = {**ENV, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}  # what archspec's launcher sets
    with launchers(tmp_path) as start:
        by_hand = start([*TORCHRUN, "--nnodes", "2", "--nproc-per-node", "2", "--rdzv-backend", "c10d",
                         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", run_id,
                         "-m", "archspec", "train", spec, *ARGS, *out, "--micro-batch", "2"], env=as_documented)
        # in passes of at most 2 images: the shares of 3 and 2 images accumulate over two passes
        shorthand = start([sys.executable, "-m", "archspec", "train", spec, *ARGS, *out, "--nodes", "2",
                           "--node-rank", "1", "--master", f"127.0.0.1:{port}", "--devices", "2", "--run-id", run_id,
                           "--micro-batch", "2"])
        output = finish([by_hand, shorthand], [tmp_path / "launcher0.log", tmp_path / "launcher1.log"])
    assert "processes: 4" in (tmp_path / "cluster" / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["cluster"]  # one run folder
    assert output.count("epoch 2/2") == 1 and output.count("wrote ") == 1  # one set of metrics

    single = session.train(spec, {**OPTIONS, "out": str(tmp_path / "one")})
    assert_same_run(tmp_path / "cluster", single, test_images=18)


WORKER = """
import os, signal, sys
from archspec.cli import main
from archspec.train.trainer import Trainer

if os.environ["TORCHELASTIC_RESTART_COUNT"] == "0" and os.environ["RANK"] == "1":
    set_lr = Trainer._set_lr

    def dying(self):  # the first attempt's rank 1 dies on the third step of epoch 2, as a preempted worker would
        if self.step == {kill_step}:
            os.kill(os.getpid(), signal.SIGKILL)
        return set_lr(self)

    Trainer._set_lr = dying
main(["train", *sys.argv[1:]])
"""


def test_a_worker_killed_mid_epoch_is_restarted_and_the_run_ends_as_if_uninterrupted(spec_file, tmp_path):
    spec = str(spec_file(PLAIN, "plain.yaml"))
    steps_per_epoch = 9  # 81 images in batches of 10
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent(WORKER).replace("{kill_step}", str(steps_per_epoch + 2)))
    with launchers(tmp_path) as start:
        group = start([*TORCHRUN, "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "--monitor-interval",
                       "0.5", str(worker), spec, *ARGS, "--epochs", "3", "--out", str(tmp_path / "elastic")])
        output = finish([group], [tmp_path / "launcher0.log"])
    assert "resuming after epoch 1 of 3 (restart 1)" in output, output
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["elastic"]

    single = session.train(spec, {**OPTIONS, "epochs": 3, "out": str(tmp_path / "one")})
    assert_same_run(tmp_path / "elastic", single, test_images=18)
