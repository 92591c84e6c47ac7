"""Benchmark (not a test): training-step throughput of archspec-compiled modules against the same
networks written by hand in plain PyTorch, side by side in one run.

    .venv/bin/python bench/bench_compile.py                       # resnet18 and vgg11, CPU: about 1-2 minutes on 2 idle cores
    .venv/bin/python bench/bench_compile.py --models resnet18 --windows 9 --json out.json
    .venv/bin/python bench/bench_compile.py --device cuda --channels-last --bf16 --batch 128 --size 224

For each model: the compiled module (``archspec.build`` of the zoo spec, a torch.fx GraphModule)
and an independent hand-written equivalent (the layout of torchvision.models, without
torchvision: ``ReLU(inplace=True)`` as torchvision writes it) get the same weights (the compiled
state copied into the hand-written one by order, each shape checked), are checked to compute the
same outputs and the same first training-step loss, and are then timed on one full training step
each (SGD with momentum, cross-entropy, forward + backward + step, ``zero_grad(set_to_none=True)``).

Timing: warm-up steps for both, then ``--windows`` timed windows per model (each of ``--steps``
steps, by default as many as take about ``--window-seconds`` on the slower model),
the two models interleaved (A B, then B A, ...) so that drift of the machine (clock, heat, other
load) falls on both alike. Printed: the median images/s of each, the spread of the windows, and
the ratio compiled / hand-written (1.0 = as fast; the target is >= 0.98) three ways: of the
medians, the median of the per-pair ratios (each window against its neighbour of the other
model), and of the best windows (on a shared machine, other load only ever slows a window down).

The zoo specs declare a 3x224x224 input and no size parameter; both networks end in an adaptive
average pool, so their modules accept any image size, and the default here is a CPU-sized batch of
8 images of 3x64x64 (``--size 224`` for the spec's own size). The figures depend on the machine
and on whatever else it is running: compare figures of one run only.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import archspec  # noqa: E402


# ---------------------------------------------------------------- hand-written plain PyTorch

INPLACE = True  # torchvision's ReLU(inplace=True); --plain-relu for nn.ReLU() as archspec compiles it


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, written out."""

    def __init__(self, c_in: int, c: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=INPLACE)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        if stride != 1 or c_in != c:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18's layout: a 7x7 stem, 4 stages of 2 basic blocks, a linear head."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=INPLACE)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c_in = [], 64
        for c, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c)))
            c_in = c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG11(nn.Module):
    """torchvision.models.vgg11's layout: configuration A, then three fully connected layers."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        layers, c = [], 3
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=INPLACE)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(INPLACE), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(INPLACE), nn.Dropout(0.5),
            nn.Linear(4096, classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


HAND = {"resnet18": ResNet18, "vgg11": VGG11}


def copy_by_order(source: nn.Module, target: nn.Module) -> int:
    """Copy every parameter and buffer of ``source`` into ``target``, pairing them by order."""
    src, dst = list(source.state_dict().items()), list(target.state_dict().items())
    if len(src) != len(dst):
        raise SystemExit(f"state_dicts differ in length: {len(src)} vs {len(dst)}")
    with torch.no_grad():
        for (name_s, s), (name_d, d) in zip(src, dst):
            if s.shape != d.shape or s.dtype != d.dtype:
                raise SystemExit(f"{name_s} {tuple(s.shape)} does not pair with {name_d} {tuple(d.shape)}")
            d.copy_(s)
    return len(src)


# ---------------------------------------------------------------- one training step

class Trainer:
    def __init__(self, model: nn.Module, args, device: torch.device):
        self.model = model.to(device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=args.lr, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.device = device
        self.bf16 = args.bf16

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def step(self, x, y) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_window(trainer: Trainer, x, y, steps: int) -> float:
    """Seconds for ``steps`` training steps, waiting for the device at both ends."""
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = trainer.step(x, y)
    loss.item()  # the last step's result is needed: nothing is left queued
    sync(trainer.device)
    return time.perf_counter() - start


def check_equivalent(compiled: nn.Module, hand: nn.Module, x, y, args, device) -> tuple[float, float, float]:
    """Same outputs in eval mode, and the same loss after one training step from the same state."""
    compiled.eval(), hand.eval()
    with torch.no_grad():
        a, b = compiled(x), hand(x)
    out_diff = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
    losses = []
    for model in (compiled, hand):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(123)  # the same dropout masks for both
            trainer = Trainer(model, args, device)
            trainer.step(x, y)
            trainer.model.eval()
            with torch.no_grad(), trainer.autocast():
                losses.append(trainer.loss_fn(trainer.model(x), y).item())
    return out_diff, losses[0], losses[1]


def bench_model(name: str, args, device: torch.device) -> dict:
    spec = f"{name}.yaml"
    compiled = archspec.build(spec, seed=0)
    torch.manual_seed(0)
    hand = HAND[name]()
    n = copy_by_order(compiled, hand)
    params = sum(p.numel() for p in compiled.parameters())
    compiled, hand = compiled.to(device), hand.to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=generator).to(device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, 1000, (args.batch,), generator=generator).to(device)

    # equivalence on copies, so the timed models start from the shared state
    out_diff, loss_c, loss_h = check_equivalent(copy.deepcopy(compiled), copy.deepcopy(hand), x, y, args, device)
    print(f"\n{name}: {params:,} parameters, {n} tensors copied by order; batch {args.batch} × 3×{args.size}×{args.size}"
          f"; max output difference {out_diff:.1e}; loss after one step {loss_c:.6f} (compiled) vs "
          f"{loss_h:.6f} (hand-written)", flush=True)

    trainers = {"compiled": Trainer(compiled, args, device), "hand-written": Trainer(hand, args, device)}
    # warm-up, one step at a time: the fastest step of each (the least disturbed) sets the window
    fastest = [min(timed_window(trainer, x, y, 1) for _ in range(args.warmup)) for trainer in trainers.values()]
    steps = args.steps or min(200, max(1, round(args.window_seconds / max(fastest))))
    times: dict[str, list[float]] = {k: [] for k in trainers}
    order = list(trainers)
    for w in range(args.windows):
        for key in (order if w % 2 == 0 else order[::-1]):
            times[key].append(timed_window(trainers[key], x, y, steps))
    rates = {k: [args.batch * steps / t for t in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in rates.items()}
    # the ratio per window pair, then its median: drift cancels within each pair
    ratios = [c / h for c, h in zip(rates["compiled"], rates["hand-written"])]
    best = {k: max(v) for k, v in rates.items()}  # other load only ever slows a window down
    result = {
        "model": name, "params": params, "batch": args.batch, "size": args.size, "steps_per_window": steps,
        "windows": args.windows, "images_per_s": med,
        "images_per_s_windows": rates, "ratio_of_medians": med["compiled"] / med["hand-written"],
        "median_pairwise_ratio": statistics.median(ratios),
        "best_images_per_s": best, "ratio_of_best": best["compiled"] / best["hand-written"],
        "max_output_difference": out_diff, "first_step_losses": [loss_c, loss_h],
    }
    for key in trainers:
        spread = f"{min(rates[key]):.1f} to {max(rates[key]):.1f}"
        print(f"  {key:<13} {med[key]:8.1f} images/s   (median of {args.windows} windows of {steps} steps; "
              f"windows {spread})", flush=True)
    print(f"  compiled / hand-written = {result['ratio_of_medians']:.3f} (medians); "
          f"{result['median_pairwise_ratio']:.3f} (median of the per-pair ratios); "
          f"{result['ratio_of_best']:.3f} (best windows)", flush=True)
    return result


def cpu_times() -> tuple[list[int], float] | None:
    """The machine's cumulative CPU ticks (Linux /proc/stat) and this process's CPU seconds."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    own = os.times()
    return ticks, own.user + own.system


def other_load(before, after) -> str:
    """The share of the machine's CPU time that other processes (and the hypervisor) took during
    the run: the figures are unreliable when it is high."""
    if not before or not after:
        return ""
    delta = [b - a for a, b in zip(before[0], after[0])]
    total = sum(delta)  # user nice system idle iowait irq softirq steal
    if total <= 0:
        return ""
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = total - delta[3] - delta[4]
    others = max(0.0, busy - (after[1] - before[1]) * hz)
    return f"; other processes took {100 * others / total:.0f}% of the CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet18,vgg11", help="comma-separated: resnet18, vgg11")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="image height and width (the specs say 224)")
    parser.add_argument("--windows", type=int, default=9, help="timed windows per model")
    parser.add_argument("--steps", type=int, default=0,
                        help="steps per window (default: as many as take --window-seconds)")
    parser.add_argument("--window-seconds", type=float, default=1.5,
                        help="length of a timed window when --steps is not given")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model first (at least 1)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    parser.add_argument("--channels-last", action="store_true", help="models and input in channels_last")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (forward and loss)")
    parser.add_argument("--plain-relu", action="store_true",
                        help="hand-written models with nn.ReLU() instead of torchvision's ReLU(inplace=True)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    args.warmup = max(1, args.warmup)
    global INPLACE
    INPLACE = not args.plain_relu

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to this torch")
        if args.bf16 and not torch.cuda.is_bf16_supported():
            raise SystemExit("--bf16: this GPU does not support bfloat16")
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in HAND]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]!r}; choose from {', '.join(HAND)}")

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, python {platform.python_version()}, {device} ({where})"
          f"{', channels_last' if args.channels_last else ''}{', bf16 autocast' if args.bf16 else ''}"
          f"{'; hand-written ReLU not in place' if args.plain_relu else ''}; "
          f"SGD momentum 0.9, cross-entropy; {args.warmup} warm-up steps, {args.windows} interleaved windows",
          flush=True)
    start, cpu_start = time.perf_counter(), cpu_times()
    results = [bench_model(name, args, device) for name in names]
    busy = other_load(cpu_start, cpu_times())
    print(f"\n{'model':<10} {'compiled':>12} {'hand-written':>14} {'ratio':>7} {'per-pair':>9} {'best':>7}")
    for r in results:
        ips = r["images_per_s"]
        print(f"{r['model']:<10} {ips['compiled']:>8.1f} im/s {ips['hand-written']:>10.1f} im/s "
              f"{r['ratio_of_medians']:>7.3f} {r['median_pairwise_ratio']:>9.3f} {r['ratio_of_best']:>7.3f}")
    load = f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"(target: compiled / hand-written >= 0.98; whole run {time.perf_counter() - start:.0f} s{load}{busy})")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "device": str(device), "where": where, "plain_relu": args.plain_relu,
                                         "channels_last": args.channels_last, "bf16": args.bf16,
                                         "threads": torch.get_num_threads(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
