"""Every GPU check of the trainer in one run, printed as one table (under 8 minutes on one GPU).

    python bench/gpu_check.py                 # all checks
    python bench/gpu_check.py --json out.json # also write the rows
    python bench/gpu_check.py --only memory   # one check by name (see CHECKS)

On a machine without CUDA it says so and exits with status 0, having checked nothing. With CUDA
the exit status is 1 when a check fails or breaks, else 0. The checks:

- tests:       the test suite's GPU tests (``pytest -m gpu``, and the augmentation tests on cuda)
- precision:   two short runs, autocast bf16, and fp16 with the gradient scaler (its scale in the checkpoint)
- channels:    channels_last gives the outputs of the default memory format (fp32, TF32 off)
- backoff:     batch_size auto under a memory cap: the memory model's batch does not fit, and the
               confirming step halves it until one does
- nccl:        two processes on two GPUs (torchrun, NCCL), through the test phase; skipped on one GPU
- memory:      predicted training memory (the summary's model) against torch.cuda.max_memory_allocated
               over a real training step, every zoo spec at batch 32, fp32 (target: within 10%)
- throughput:  resnet50, bf16, channels_last, synthetic images held on the GPU: archspec's trainer
               against a plain PyTorch loop (bench_train.py's), images/s (target: ratio >= 0.97)
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEMORY_TOLERANCE = 0.10
THROUGHPUT_TARGET = 0.97
MEMORY_BATCH = 32


@dataclass
class Row:
    check: str
    result: str
    target: str = ""
    ok: bool | None = None  # None: nothing to judge (skipped, or a figure reported without a target)
    seconds: float = 0.0


def verdict(ok: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: "-"}[ok]


def within(measured: float, predicted: float, tolerance: float = MEMORY_TOLERANCE) -> bool:
    """Whether ``measured`` is within ``tolerance`` (a fraction) of ``predicted``."""
    return predicted > 0 and abs(measured / predicted - 1) <= tolerance


def format_table(rows: list[Row]) -> str:
    """One plain-text table: check, result, target, verdict, seconds."""
    header = ("check", "result", "target", "", "s")
    cells = [header] + [(r.check, r.result, r.target, verdict(r.ok), f"{r.seconds:.1f}") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c[i].ljust(widths[i]) if i < 4 else c[i].rjust(widths[i]) for i in range(len(header)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# ------------------------------------------------------------------ checks


GPU_TESTS = (["-m", "gpu", "tests"], ["-k", "cuda", "tests/test_train_augment.py"])  # marked, and parametrized


def check_tests(context) -> list[Row]:
    rows = []
    for selection in GPU_TESTS:
        started = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        rows.append(Row(f"pytest {' '.join(selection)}", last, "all pass", done.returncode == 0 and "passed" in last,
                        time.perf_counter() - started))
    return rows


def _short_run(precision: str, folder: Path) -> dict:
    from archspec.train import session
    from archspec.train.checkpoint import load_checkpoint

    outcome = session.train("lenet_digits.yaml", {"device": "cuda", "precision": precision, "epochs": 3,
                                                  "batch_size": 64, "lr": 0.01, "channels_last": True,
                                                  "out": str(folder / precision)})
    state = load_checkpoint(outcome.run / "checkpoint.safetensors")
    config = (outcome.run / "config.yaml").read_text()
    scale = state["scaler"].get("scale") if state.get("scaler") else None
    return {"accuracy": outcome.test["accuracy"], "loss": outcome.history[-1]["train_loss"],
            "scale": float(scale) if scale is not None else None,
            "recorded": f"precision: {precision}" in config and "channels_last: true" in config}


def check_precision(context) -> list[Row]:
    rows = []
    for precision in ("bf16", "fp16"):
        started = time.perf_counter()
        r = _short_run(precision, context["tmp"])
        scaler_ok = (r["scale"] is not None and r["scale"] > 0) if precision == "fp16" else r["scale"] is None
        ok = r["accuracy"] > 0.8 and math.isfinite(r["loss"]) and r["recorded"] and scaler_ok
        scaler = f", scaler scale {r['scale']:g}" if r["scale"] is not None else ", no scaler"
        rows.append(Row(f"autocast {precision} (lenet_digits, 3 epochs)",
                        f"test accuracy {100 * r['accuracy']:.1f}%, loss {r['loss']:.3f}{scaler}",
                        "> 80%, finite" + (", scaler used" if precision == "fp16" else ""), ok,
                        time.perf_counter() - started))
    return rows


def check_channels_last(context) -> list[Row]:
    import torch

    import archspec

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    model = archspec.build("resnet18.yaml", seed=0).cuda().train(False)
    x = torch.randn(8, 3, 224, 224, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    with torch.no_grad():
        plain = model(x)
        model = model.to(memory_format=torch.channels_last)
        last = model(x.contiguous(memory_format=torch.channels_last))
    difference = float((plain - last).abs().max())
    return [Row("channels_last (resnet18, fp32)", f"max |difference| {difference:.2e}", "< 1e-3", difference < 1e-3)]


def check_backoff(context) -> list[Row]:
    import torch

    from archspec import api
    from archspec.compiler import compile_graph
    from archspec.train.batch import auto_batch_size, data_limit, memory_limit
    from archspec.train.config import resolve
    from archspec.train.trainer import pick_hardware

    graph = api.expand("resnet50.yaml", {"classes": 10})
    config = resolve({"device": "cuda", "precision": "bf16", "batch_size": "auto"}, None, None)
    hardware = pick_hardware(config)
    model = compile_graph(graph, seed=0).to(hardware.device, memory_format=torch.channels_last)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, (4 << 30) / total))  # a 4 GiB card, as far as torch knows
    try:
        train_size = 1 << 20
        batch, how = auto_batch_size(graph, model, hardware, config, train_size)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    planned = min(data_limit(train_size), memory_limit(graph, "bfloat16", "adam", 0.8 * free, 1 << 16))
    ok = batch < planned and "out of memory" in how
    return [Row("auto batch, forced back-off (resnet50, 4 GiB cap)", f"{planned} planned, {batch} chosen",
                "halved until it fits", ok)]


def check_nccl(context) -> list[Row]:
    import torch

    if torch.cuda.device_count() < 2:
        return [Row("two processes, NCCL", f"skipped: {torch.cuda.device_count()} GPU", "2 GPUs", None)]
    folder = context["tmp"] / "ddp"
    command = [sys.executable, "-m", "archspec", "train", "lenet_digits.yaml", "--devices", "2", "--device", "cuda",
               "--epochs", "2", "--out", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    ok = done.returncode == 0 and (folder / "report.json").exists() and (folder / "confusion.png").exists()
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
    return [Row("two processes, NCCL (lenet_digits)", f"exit {done.returncode}: {tail[0][:60]}",
                "report.json and confusion.png", ok)]


def measured_peak(spec: str, batch: int) -> tuple[int, int]:
    """(predicted, measured) bytes of one fp32 Adam training step at ``batch``; the measured peak counts
    only what the step allocates beyond what was allocated before the model was built."""
    import torch
    import torch.nn.functional as F

    from archspec import api
    from archspec.compiler import compile_graph
    from archspec.summary import summarize_graph

    graph = api.expand(spec)
    totals = summarize_graph(graph, batch=batch, dtype="float32", optimizer="adam").totals
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    model = compile_graph(graph, seed=0).cuda()
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.randn(batch, *graph.input_shape, device="cuda")
    classes = graph.shape_of(graph.output)[0]
    y = torch.randint(0, classes, (batch,), device="cuda")

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # Adam's moments exist from here on, as the summary counts them
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return totals.training_bytes + totals.input_bytes, torch.cuda.max_memory_allocated() - before


def check_memory(context) -> list[Row]:
    import torch

    from archspec import zoo

    torch.backends.cudnn.benchmark = False  # no autotuning workspaces between the two steps
    rows = []
    for name in zoo.names():
        started = time.perf_counter()
        try:
            predicted, measured = measured_peak(name, MEMORY_BATCH)
            torch.cuda.empty_cache()  # the step's tensors are gone with the function's frame
        except Exception as exc:  # noqa: BLE001 - one spec's failure is one row, not the end of the check
            rows.append(Row(f"memory {name} b{MEMORY_BATCH}", f"error: {type(exc).__name__}: {exc}"[:90],
                            "within 10%", False, time.perf_counter() - started))
            continue
        rows.append(Row(f"memory {name} b{MEMORY_BATCH}",
                        f"predicted {mib(predicted)}, measured {mib(measured)} ({measured / predicted:.3f})",
                        "within 10%", within(measured, predicted), time.perf_counter() - started))
    return rows


def check_throughput(context) -> list[Row]:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_train import compare

    r = compare("resnet50.yaml", [], images_count=4096, batch=256, rounds=5, device="cuda", precision="bf16",
                channels_last=True)
    return [Row("resnet50 bf16 channels_last, images/s",
                f"archspec {r['archspec']:,.0f}, plain {r['plain']:,.0f} ({r['ratio']:.3f})", ">= 0.97",
                r["ratio"] >= THROUGHPUT_TARGET)]


CHECKS = {"tests": check_tests, "precision": check_precision, "channels": check_channels_last,
          "backoff": check_backoff, "nccl": check_nccl, "memory": check_memory, "throughput": check_throughput}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CHECKS), action="append", help="run these checks only")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False): nothing was "
              "checked. Run it where there is an NVIDIA GPU and a CUDA build of torch; see docs/performance.md.")
        return 0
    print(f"gpu_check on {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} GPU), torch {torch.__version__}",
          flush=True)
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        context = {"tmp": Path(tmp)}
        for name in args.only or list(CHECKS):
            begun = time.perf_counter()
            try:
                new = CHECKS[name](context)
            except Exception as exc:  # noqa: BLE001 - a broken check is a failed row; the others still run
                new = [Row(name, f"error: {type(exc).__name__}: {exc}"[:120], "", False)]
            if len(new) == 1 and not new[0].seconds:
                new[0].seconds = time.perf_counter() - begun
            rows += new
            print(f"  {name}: {', '.join(verdict(r.ok) for r in new)}", flush=True)
    print(format_table(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
