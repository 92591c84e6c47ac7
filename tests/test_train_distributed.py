"""DDP on the CPU: two gloo processes under torchrun train exactly as one process on the same global batch."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import archspec
from archspec.train import session
from archspec.train.runs import read_metrics

# No batch norm (its statistics are per process) and no dropout (its masks are per process).
PLAIN = """
archspec: 1
name: plain
input: [1, 8, 8]
params: {classes: 4}
layers:
  - {conv2d: {out: 6, kernel: 3, padding: 1}, name: conv1}
  - relu
  - {maxpool2d: {kernel: 2}}
  - flatten
  - {dense: {out: $classes}, name: head}
"""


def test_two_processes_equal_one(spec_file, tmp_path):
    spec = str(spec_file(PLAIN, "plain.yaml"))
    args = ["--data", "synthetic:256:4", "--epochs", "2", "--batch-size", "32", "--lr", "0.05", "--optimizer", "sgd",
            "--workers", "0", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "archspec", "train", spec, *args, "--devices", "2",
                           "--out", str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "ddp" / "report.json").exists() and not (tmp_path / "ddp-2").exists()
    assert "processes: 2" in (tmp_path / "ddp" / "config.yaml").read_text()

    single = session.train(spec, {"data": "synthetic:256:4", "epochs": 2, "batch_size": 32, "lr": 0.05,
                                  "optimizer": "sgd", "workers": 0, "device": "cpu", "out": str(tmp_path / "one")})
    ddp, one = load_file(str(tmp_path / "ddp" / "last.safetensors")), load_file(str(single.run / "last.safetensors"))
    assert list(ddp) == list(one)
    for name in one:
        assert torch.allclose(ddp[name], one[name], atol=1e-5), name
    initial = archspec.build(spec, seed=0).state_dict()
    assert not torch.allclose(initial["head.weight"], one["head.weight"], atol=1e-3)  # it did train
    # validation is shared out and summed across the processes: the same figures
    for a, b in zip(read_metrics(tmp_path / "ddp" / "metrics.csv"), single.history):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4) and a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-6)
