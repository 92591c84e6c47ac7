"""Training throughput: archspec's Trainer against a plain hand-written PyTorch loop.

Both sides train the same compiled model (same initial weights) on the same synthetic images,
with the same batch size, optimizer, precision and memory format, and hold the data on the device.
Each round times one epoch of each side, which goes first alternating, after a warm-up epoch; the report is the
median images/s of each side and their ratio (archspec / plain, higher is better).

    python bench/bench_train.py                                   # CPU, LeNet-5 on 32x32
    python bench/bench_train.py --spec mnist_cnn.yaml             # CPU, a Keras course's MNIST CNN
    python bench/bench_train.py --spec resnet50.yaml --device cuda --precision bf16 --channels-last \
        --images 4096 --batch 128 --set classes=10                # the GPU run in docs/performance.md
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from archspec import api
from archspec.compiler import compile_graph
from archspec.expand import parse_overrides
from archspec.train.config import resolve
from archspec.data import open_data
from archspec.train.trainer import Trainer, pick_hardware


def plain_epoch(model, optimizer, images, labels, batch, mean, std, hardware, generator) -> float:
    """The loop a person writes by hand; returns images/s."""
    model.train()
    n = images.shape[0]
    order = torch.randperm(n, generator=generator).to(images.device)
    sync(hardware)
    started = time.perf_counter()
    for i in range(0, n, batch):
        idx = order[i:i + batch]
        x = (images[idx] - mean) / std
        if hardware.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(hardware.device.type, dtype=hardware.amp_dtype or torch.float32,
                            enabled=hardware.amp_dtype is not None):
            loss = F.cross_entropy(model(x).float(), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(hardware)
    return n / (time.perf_counter() - started)


def sync(hardware) -> None:
    if hardware.device.type == "cuda":
        torch.cuda.synchronize(hardware.device)


def compare(spec: str, overrides: list[str], images_count: int, batch: int, rounds: int, device: str,
            precision: str, channels_last: bool) -> dict:
    """Median images/s of archspec's Trainer and of the plain loop, epochs alternating; and their ratio."""
    graph = api.expand(spec, parse_overrides(overrides))
    classes = graph.shape_of(graph.output)[0]
    data = open_data(f"synthetic:{images_count}:{classes}", tuple(graph.input_shape))
    config = resolve(None, None, {"device": device, "precision": precision, "optimizer": "sgd",
                                  "lr": 0.01, "channels_last": channels_last, "epochs": 1000,
                                  "device_data_bytes": 1 << 40})
    hardware = pick_hardware(config)
    mean, std = [0.5] * graph.input_shape[0], [0.25] * graph.input_shape[0]

    ours = Trainer(compile_graph(graph, seed=0), config, data, data.subset([]), mean, std, hardware, batch)
    model = compile_graph(graph, seed=0).to(hardware.device)
    if hardware.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = data.images.to(hardware.device), data.labels.to(hardware.device)
    mean_t = torch.tensor(mean, device=hardware.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=hardware.device).view(1, -1, 1, 1)
    generator = torch.Generator().manual_seed(0)

    def archspec_epoch() -> float:
        row = ours._train_epoch(ours.epoch + 1)
        ours.epoch += 1
        return row["images_per_s"]

    def plain() -> float:
        return plain_epoch(model, optimizer, images, labels, batch, mean_t, std_t, hardware, generator)

    archspec_epoch(), plain()  # warm-up: allocator, cuDNN autotuning, first-touch
    ours_rates, plain_rates = [], []
    for i in range(rounds):  # alternate which side goes first, so neither always follows the other
        if i % 2:
            plain_rates.append(plain())
            ours_rates.append(archspec_epoch())
        else:
            ours_rates.append(archspec_epoch())
            plain_rates.append(plain())
    a, p = statistics.median(ours_rates), statistics.median(plain_rates)
    name = torch.cuda.get_device_name(hardware.device) if hardware.device.type == "cuda" else "CPU"
    return {"graph": graph, "hardware": hardware, "device_name": name, "archspec": a, "plain": p, "ratio": a / p,
            "archspec_rounds": ours_rates, "plain_rounds": plain_rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="lenet5.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()

    r = compare(args.spec, args.overrides, args.images, args.batch, args.rounds, args.device, args.precision,
                args.channels_last)
    graph, hardware = r["graph"], r["hardware"]
    print(f"{graph.name} {list(graph.input_shape)} batch {args.batch}, {args.images} images, {hardware.device} "
          f"({r['device_name']}), {hardware.precision}, channels_last={hardware.channels_last}, "
          f"{torch.get_num_threads()} threads")
    print(f"archspec train  {r['archspec']:10.1f} images/s   (rounds: {', '.join(f'{x:.0f}' for x in r['archspec_rounds'])})")
    print(f"plain loop      {r['plain']:10.1f} images/s   (rounds: {', '.join(f'{x:.0f}' for x in r['plain_rounds'])})")
    print(f"ratio archspec / plain = {r['ratio']:.3f}")


if __name__ == "__main__":
    main()
