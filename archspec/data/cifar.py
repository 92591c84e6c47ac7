"""CIFAR-10 and CIFAR-100 in their binary version (Krizhevsky, 2009; www.cs.toronto.edu/~kriz/cifar.html).

Not the pickled Python version: archspec never unpickles data. A binary file is a run of records,
each the label byte(s) then 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue, row by row, 32×32):
CIFAR-10 has one label byte per record (files data_batch_1.bin … data_batch_5.bin, test_batch.bin,
class names in batches.meta.txt); CIFAR-100 two, coarse then fine (train.bin, test.bin, names in
coarse_label_names.txt and fine_label_names.txt). Each file's length is checked to be whole records,
and the set's size against the memory available, before anything is read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import ArchspecError, Location
from ..images import describe
from .labelled import LabelledImages, check_memory, in_memory_set
from .sources import Request

PIXELS = 3 * 32 * 32
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class _Layout:
    name: str
    train: tuple[str, ...]  # file names of the training part (those present are read, in this order)
    test: str
    label_bytes: int  # per record
    label_at: int  # which of them is this set's label
    classes: int
    names_file: str
    default_names: tuple[str, ...] | None  # when the names file is absent


CIFAR10 = _Layout("CIFAR-10", tuple(f"data_batch_{k}.bin" for k in range(1, 6)), "test_batch.bin", 1, 0, 10,
                  "batches.meta.txt", CIFAR10_CLASSES)
CIFAR100_FINE = _Layout("CIFAR-100", ("train.bin",), "test.bin", 2, 1, 100, "fine_label_names.txt", None)
CIFAR100_COARSE = _Layout("CIFAR-100 coarse", ("train.bin",), "test.bin", 2, 0, 20, "coarse_label_names.txt", None)


def cifar10_has_test(argument: str) -> bool:
    return os.path.isfile(os.path.join(argument, CIFAR10.test))


def cifar100_has_test(argument: str) -> bool:
    return os.path.isfile(os.path.join(argument, CIFAR100_FINE.test))


def open_cifar10(argument: str, request: Request) -> LabelledImages:
    return _open(argument, request, CIFAR10)


def open_cifar100_fine(argument: str, request: Request) -> LabelledImages:
    return _open(argument, request, CIFAR100_FINE)


def open_cifar100_coarse(argument: str, request: Request) -> LabelledImages:
    return _open(argument, request, CIFAR100_COARSE)


def _open(folder: str, request: Request, layout: _Layout) -> LabelledImages:
    where = Location(folder)
    if not os.path.isdir(folder):
        raise ArchspecError(f"no such folder: {folder} ({layout.name}'s binary files go in one folder)", where)
    wanted = (layout.test,) if request.part == "test" else layout.train
    paths = [os.path.join(folder, name) for name in wanted if os.path.exists(os.path.join(folder, name))]
    if not paths:
        raise ArchspecError(f"no {layout.name} binary files in {folder} (expected {', '.join(wanted)})", where)
    record = layout.label_bytes + PIXELS
    counts = []
    for path in paths:
        if not os.path.isfile(path):
            raise ArchspecError("not a regular file", Location(path))
        size = os.path.getsize(path)
        if size == 0 or size % record:
            raise ArchspecError(f"{size:,} bytes is not a whole number of {layout.name} records of {record:,} bytes "
                                "(truncated, or not the binary version?)", Location(path))
        counts.append(size // record)
    count = sum(counts)
    origin = f"{layout.name} {folder} ({count:,} images{', test part' if request.part == 'test' else ''})"
    check_memory(count, request.shape, origin, extra=count * record)
    raw = torch.empty((count, record), dtype=torch.uint8)
    start = 0
    for path, n in zip(paths, counts):
        try:
            with open(path, "rb") as f:
                got = f.readinto(raw[start:start + n].numpy().data)
        except OSError as exc:
            raise ArchspecError(f"cannot read {layout.name} file: {describe(exc)}", Location(path)) from None
        if got != n * record:
            raise ArchspecError(f"the file shrank while it was read ({got:,} of {n * record:,} bytes)", Location(path))
        start += n
    labels = raw[:, layout.label_at].to(torch.int64)
    bad = (labels >= layout.classes).nonzero().flatten()
    if len(bad):
        k = int(bad[0])
        path, record_index = _record_of(paths, counts, k)
        raise ArchspecError(f"record {record_index:,} has label {int(labels[k])}; {layout.name} has "
                            f"{layout.classes} classes (0 to {layout.classes - 1})", Location(path))
    images = raw[:, layout.label_bytes:].view(count, 3, 32, 32)
    names = _class_names(folder, layout)
    return in_memory_set(images, labels, names, request.shape, origin, scale=255.0)


def _record_of(paths: list[str], counts: list[int], k: int) -> tuple[str, int]:
    for path, n in zip(paths, counts):
        if k < n:
            return path, k
        k -= n
    return paths[-1], k


def _class_names(folder: str, layout: _Layout) -> list[str]:
    path = os.path.join(folder, layout.names_file)
    if os.path.isfile(path) and os.path.getsize(path) < 1 << 16:
        with open(path, encoding="utf-8", errors="replace") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == layout.classes and len(set(names)) == len(names):
            return names
    return list(layout.default_names or (str(k) for k in range(layout.classes)))
