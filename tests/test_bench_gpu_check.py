"""bench/gpu_check.py where no GPU is: it says so and exits cleanly; its table and verdicts are right."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_without_cuda_it_says_so_and_exits_0():
    done = subprocess.run([sys.executable, "bench/gpu_check.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no CUDA device" in done.stdout and "nothing was checked" in done.stdout
    assert done.stderr == ""


def test_verdicts_and_the_table():
    check = gpu_check()
    assert check.within(1.09e9, 1e9) and check.within(0.91e9, 1e9) and not check.within(1.11e9, 1e9)
    assert not check.within(5, 0)
    rows = [check.Row("memory vgg16 b32", "predicted 1.0 MiB, measured 1.0 MiB (1.000)", "within 10%", True, 2.5),
            check.Row("two processes, NCCL", "skipped: 1 GPU", "2 GPUs", None),
            check.Row("throughput", "archspec 900, plain 1,000 (0.900)", ">= 0.97", False, 30)]
    lines = check.format_table(rows).splitlines()
    assert lines[0].split() == ["check", "result", "target", "s"] and set(lines[1]) <= {"-", " "}
    assert [line.split("  ")[0].strip() for line in lines[2:]] == [r.check for r in rows]
    assert [check.verdict(r.ok) for r in rows] == ["ok", "-", "FAIL"]
    assert lines[2].split()[-2:] == ["ok", "2.5"] and lines[4].split()[-2:] == ["FAIL", "30.0"]
    assert set(check.CHECKS) == {"tests", "precision", "channels", "backoff", "nccl", "memory", "throughput"}


def test_only_unknown_checks_are_refused():
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--only", "warp"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice" in done.stderr
