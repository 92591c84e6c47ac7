"""Opening a data source and cutting it into the train, validation and test splits a run uses."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from ..errors import ArchspecError, Location, UsageError
from .labelled import BAD_IMAGE_POLICIES, LabelledImages, check_shape, collate, remap
from .sources import Request, find


def open_data(source: str | os.PathLike | None, shape: tuple[int, int, int], *, classes: list[str] | None = None,
              bad_images: str = "stop", seed: int = 0, part: str = "all") -> LabelledImages:
    """Open a data source (see ``sources.SOURCES``; None is the digits) as `LabelledImages` in (C, H, W).

    classes: the class names labels must map onto (a validation or test source uses the training
    set's); by default the source's own, sorted. seed: only the synthetic set uses it. part: "train" or
    "test" for a source that ships its own test part (MNIST's t10k files, CIFAR's test batch); "all"
    reads the training files of such a source.
    """
    shape = check_shape(shape)
    if bad_images not in BAD_IMAGE_POLICIES:
        raise UsageError(f"bad_images must be 'stop' or 'skip', not {bad_images!r}")
    row, argument = find(source)
    name = "digits" if source is None else os.fspath(source)
    data = row.open(argument, Request(shape, None if classes is None else [str(c) for c in classes],
                                      bad_images, seed, part))
    if data.images is not None and classes is not None:  # CSVs and folders map their labels themselves
        data = remap(data, classes)
    if len(data) == 0:
        raise ArchspecError(f"no images in {data.origin}", Location(name))
    if len(data.classes) < 2:
        found = ", ".join(repr(c) for c in data.classes) or "none"
        raise ArchspecError(f"{data.origin} has {len(data.classes)} class ({found}); classifying needs at least 2",
                            Location(name))
    return data


@dataclass
class Splits:
    """The three parts a run uses: fit on train, choose on val, report on test."""

    train: LabelledImages
    val: LabelledImages
    test: LabelledImages


def _check_fractions(fractions, count: int) -> list[float]:
    try:
        values = [float(f) for f in fractions]
    except (TypeError, ValueError):
        values = []
    if (len(values) != count or not all(math.isfinite(v) and v >= 0 for v in values)
            or abs(sum(values) - 1.0) > 1e-6 or values[0] <= 0):
        raise UsageError(f"split fractions must be {count} non-negative numbers summing to 1 with a positive "
                         f"training share, not {tuple(fractions) if values else fractions!r}")
    return values


def _cut(data: LabelledImages, fractions: list[float], names: list[str], seed: int) -> list[LabelledImages]:
    """Stratified cut: each class is permuted, then sample j of a class of n gets the key (j + ½)/n and
    all samples are ordered by key, so cutting that order at the fractions gives every part its share of
    every class (±1) while the part sizes come out exactly as rounded from the whole."""
    total = len(data)
    generator = torch.Generator().manual_seed(seed)
    keys = torch.zeros(total, dtype=torch.float64)
    for label in range(len(data.classes)):
        members = (data.labels == label).nonzero().flatten()
        if len(members):
            shuffled = members[torch.randperm(len(members), generator=generator)]
            keys[shuffled] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    order = torch.sort(keys, stable=True).indices
    sizes = [int(math.floor(total * f + 0.5)) for f in fractions[1:]]
    sizes.insert(0, total - sum(sizes))
    parts, start = [], 0
    for name, fraction, size in zip(names, fractions, sizes):
        if size <= 0 and fraction > 0:
            raise ArchspecError(f"{data.origin}: {total:,} samples are too few for split fractions "
                                f"{', '.join(f'{f:g}' for f in fractions)} (the {name} split would be empty)")
        parts.append(data.subset(order[start:start + max(size, 0)].sort().values))
        start += max(size, 0)
    return parts


def split(data: LabelledImages, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> Splits:
    """Stratified train/val/test split, deterministic for a seed; disjoint and covering every sample.

    Each part keeps the data set's order. A zero fraction gives a deliberately empty part.
    """
    values = _check_fractions(fractions, 3)
    train, val, test = _cut(data, values, ["train", "val", "test"], seed)
    return Splits(train, val, test)


def load_splits(source: str | None, shape: tuple[int, int, int], *, fractions=(0.7, 0.15, 0.15),
                val: str | None = None, test: str | None = None, bad_images: str = "stop",
                seed: int = 0) -> Splits:
    """Train/val/test from one source, or from separate val/test sources (the main source fills the rest).

    Separate sources are labelled with the main source's classes. With only one of them given, the main
    source is split by the fractions of the other two parts, renormalised.
    """
    values = _check_fractions(fractions, 3)
    if test is None:  # a source that ships its test part (MNIST's t10k, CIFAR's test batch) uses it
        row, argument = find(source)
        if row.test_part(argument):
            main = open_data(source, shape, bad_images=bad_images, seed=seed, part="train")
            test_part = open_data(source, shape, classes=main.classes, bad_images=bad_images, seed=seed + 2,
                                  part="test")
            return _with_test(main, test_part, val, values, shape, bad_images, seed)
    main = open_data(source, shape, bad_images=bad_images, seed=seed)
    # a different seed per source only matters for synthetic sets: val and test then hold other samples
    val_data = None if val is None else open_data(val, shape, classes=main.classes, bad_images=bad_images,
                                                  seed=seed + 1)
    test_data = None if test is None else open_data(test, shape, classes=main.classes, bad_images=bad_images,
                                                    seed=seed + 2)
    if test_data is not None:
        return _with_test(main, test_data, val_data, values, shape, bad_images, seed)
    if val_data is None:
        return split(main, values, seed)
    train, other = _cut(main, _shares(values[0], values[2]), ["train", "test"], seed)
    return Splits(train, val_data, other)


def _shares(a: float, b: float) -> list[float]:
    return [a / (a + b), b / (a + b)]


def _with_test(main: LabelledImages, test: LabelledImages, val: str | LabelledImages | None, values: list[float],
               shape, bad_images: str, seed: int) -> Splits:
    """The test part given: validation from its own source, else cut from the main one (train : val)."""
    if isinstance(val, str):
        val = open_data(val, shape, classes=main.classes, bad_images=bad_images, seed=seed + 1)
    if val is not None:
        return Splits(main, val, test)
    train, cut_val = _cut(main, _shares(values[0], values[1]), ["train", "val"], seed)
    return Splits(train, cut_val, test)


# -- statistics ----------------------------------------------------------------------------------


def channel_stats(data: LabelledImages, max_samples: int = 10_000,
                  workers: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation (floored at 1e-6) for input normalisation.

    At most ``max_samples`` samples, evenly spaced through the set: the same samples for every seed,
    and not only the first classes of a set ordered by class (a folder source).
    """
    count = len(data)
    if count == 0:
        raise ArchspecError(f"no samples in {data.origin} to compute channel statistics from")
    if count > max_samples:
        picked = torch.linspace(0, count - 1, max_samples).round().to(torch.int64).unique()
        data = data.subset(picked)
    channels = data.shape[0]
    sums = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    pixels = 0
    if data.images is not None:
        batches = (data.images[start:start + 1024] for start in range(0, len(data), 1024))
    else:
        loader = torch.utils.data.DataLoader(data, batch_size=64, num_workers=workers, collate_fn=collate)
        batches = (images for images, _ in loader)
    for images in batches:
        if images.numel() == 0:
            continue
        values = images.to(torch.float64).transpose(0, 1).reshape(channels, -1)
        sums += values.sum(dim=1)
        squares += (values * values).sum(dim=1)
        pixels += values.shape[1]
    if pixels == 0:
        raise ArchspecError(f"every image of {data.origin} is unreadable")
    mean = sums / pixels
    std = (squares / pixels - mean * mean).clamp_min(0.0).sqrt().clamp_min(1e-6)
    return mean.tolist(), std.tolist()
