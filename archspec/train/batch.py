"""``batch_size: auto``: the batch that fits in memory, suits the data set and, on the CPU, runs fastest.

Three limits, the smallest wins, each a power of two:

1. **Memory**: the largest batch whose training memory (the summary's analytic model: parameters,
   gradients, optimizer state and what autograd saves) fits 80% of the free GPU memory, or a
   quarter of the available RAM elsewhere. On CUDA one real forward and backward confirms it,
   halving on out-of-memory.
2. **The data set**: at least ``MIN_STEPS_PER_EPOCH`` optimizer steps per epoch, so batch ≤
   training images / 32. A batch near the size of the data set takes one or two steps an epoch
   and barely learns (1,024 of 1,050 MNIST images: 48.9% after 5 epochs); small batches train
   well (Masters & Luschi, 2018, "Revisiting Small Batch Training for Deep Neural Networks",
   found their best results between 2 and 32).
3. **Throughput, on the CPU**: larger batches stop paying off once the cores are busy. A few
   sizes are timed on synthetic images (a forward and a backward each, the model's state
   restored afterwards) and the knee is taken: the smallest batch within ``KNEE`` of the best
   images/s measured. On a GPU the memory limit stands: its throughput rises up to it.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from ..machine import available_memory
from ..errors import ArchspecError
from ..graph import Graph

MIN_STEPS_PER_EPOCH = 32
KNEE = 0.9  # the smallest batch reaching 90% of the best measured images/s
CPU_CAP = 1024
MAX_MEASURED = 6  # sizes timed on the CPU at most
SLOW_STEP_S = 2.0  # stop timing larger sizes once one step takes this long


def power_of_two_at_most(n: float) -> int:
    batch = 1
    while batch * 2 <= n:
        batch *= 2
    return batch


def data_limit(train_size: int) -> int:
    """The largest power-of-two batch that still gives ``MIN_STEPS_PER_EPOCH`` steps per epoch."""
    return power_of_two_at_most(max(1, train_size // MIN_STEPS_PER_EPOCH))


def memory_limit(graph: Graph, dtype: str, optimizer: str, budget: float, cap: int) -> int:
    """The largest power-of-two batch up to ``cap`` whose analytic training memory fits ``budget`` bytes."""
    from ..summary import summarize_graph

    batch = 1
    while batch * 2 <= cap:
        if summarize_graph(graph, batch=batch * 2, dtype=dtype, optimizer=optimizer).totals.training_bytes > budget:
            break
        batch *= 2
    return batch


def knee(rates: dict[int, float]) -> int:
    """The smallest batch whose images/s is within ``KNEE`` of the best of ``rates`` (batch -> images/s)."""
    best = max(rates.values())
    return min(b for b, rate in rates.items() if rate >= KNEE * best)


def fastest_on_cpu(measure: Callable[[int], float], limit: int) -> tuple[int, dict[int, float]]:
    """Time a few power-of-two sizes up to ``limit`` with ``measure(batch) -> seconds per step``; the knee.

    Sizes start at 8 (or ``limit``) and double; timing stops after ``MAX_MEASURED`` sizes, when a
    step gets slow, or when doubling the batch gains less than 5% (past the knee already).
    """
    rates: dict[int, float] = {}
    batch = min(8, limit)
    while batch <= limit and len(rates) < MAX_MEASURED:
        seconds = measure(batch)
        rates[batch] = batch / seconds if seconds > 0 else float("inf")
        previous = rates.get(batch // 2)
        if seconds > SLOW_STEP_S or (previous and rates[batch] < 1.05 * previous):
            break
        batch *= 2
    return knee(rates), rates


class _StateKept:
    """Run trial steps without leaving a trace: parameters, gradients and buffers (batch-norm
    statistics) are as before afterwards."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.saved = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.was_training = self.model.training
        return self

    def __exit__(self, *exc):
        self.model.zero_grad(set_to_none=True)
        self.model.load_state_dict(self.saved)
        self.model.train(self.was_training)
        return False


def _trial_step(model, hardware, shape, batch: int, generator: torch.Generator) -> None:
    x = torch.randn(batch, *shape, generator=generator).to(hardware.device)
    if hardware.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(hardware.device.type, dtype=hardware.amp_dtype or torch.float32,
                        enabled=hardware.amp_dtype is not None):
        y = model(x)
    y.float().sum().backward()
    model.zero_grad(set_to_none=True)


def cpu_step_seconds(model, hardware, shape) -> Callable[[int], float]:
    """``measure(batch)``: seconds of one forward and backward, the faster of two after a warm-up."""
    generator = torch.Generator().manual_seed(0)

    def measure(batch: int) -> float:
        model.train()
        _trial_step(model, hardware, shape, batch, generator)  # warm-up: allocations, kernels chosen
        times = []
        for _ in range(2):
            started = time.perf_counter()
            _trial_step(model, hardware, shape, batch, generator)
            times.append(time.perf_counter() - started)
        return min(times)

    return measure


def confirm_on_cuda(model, hardware, shape, batch: int) -> int:
    """``batch``, halved until one real step fits in the GPU's memory."""
    generator = torch.Generator().manual_seed(0)
    while batch >= 1:
        try:
            model.train()
            _trial_step(model, hardware, shape, batch, generator)
            torch.cuda.empty_cache()
            return batch
        except torch.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            batch //= 2
    raise ArchspecError(f"even a batch of 1 does not fit on {hardware.device}")


def available_ram() -> float:
    """Bytes available, or 4 GiB where the machine does not say."""
    return available_memory() or 4 << 30


def auto_batch_size(graph: Graph, model, hardware, config, train_size: int) -> tuple[int, str]:
    """The batch size for ``batch_size: auto`` and one line saying how it was chosen."""
    dtype = "bfloat16" if hardware.amp_dtype is torch.bfloat16 else "float16" if hardware.amp_dtype else "float32"
    optimizer = config.optimizer if config.optimizer != "sgd" else "momentum"
    cuda = hardware.device.type == "cuda"
    if cuda:
        free, _ = torch.cuda.mem_get_info(hardware.device)
        budget, cap = 0.8 * free, 1 << 16
    else:
        budget, cap = 0.25 * available_ram(), CPU_CAP
    by_memory = memory_limit(graph, dtype, optimizer, budget, cap)
    by_data = data_limit(train_size)
    batch = min(by_memory, by_data)
    reasons = [f"memory allows {by_memory}", f"{train_size} images allow {by_data} "
               f"(at least {MIN_STEPS_PER_EPOCH} steps per epoch)"]
    with _StateKept(model):
        if cuda:
            confirmed = confirm_on_cuda(model, hardware, graph.input_shape, batch)
            if confirmed < batch:
                reasons.append(f"out of memory at {batch}, {confirmed} fits")
            batch = confirmed
        elif hardware.device.type == "cpu" and batch > 8:
            batch, rates = fastest_on_cpu(cpu_step_seconds(model, hardware, graph.input_shape), batch)
            reasons.append("fastest per image: " + ", ".join(f"{b}: {r:,.0f} img/s" for b, r in rates.items()))
    return batch, f"batch size auto: {batch} ({'; '.join(reasons)})"
