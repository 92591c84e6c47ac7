"""Labelled images in the spec's input shape: what every data source becomes.

The trainer should not care where images come from, so each source (see ``sources.py``) is converted
to float tensors of the spec's (C, H, W) with values in [0, 1] and integer labels. Small sets live in
memory; file-backed sets decode lazily, one image at a time through `archspec.images` (the decoder
`predict` and `inspect` use too), so a data set larger than memory streams from disk through
DataLoader workers (`in_memory` decodes it once when it fits). A set is a map-style Dataset with a
length and an index, so a DistributedSampler or `subset` gives each process its own share.

A corrupt image either stops the run with its path and CSV row (``bad_images="stop"``) or is dropped
with a warning (``"skip"``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..machine import available_memory
from ..errors import ArchspecError, LimitError, Location, UsageError
from ..images import ImageError, ImageLimitError, TooLarge, decode_file, decode_picture, describe
from ..text import listing

MAX_MEMORY_BYTES = 16 << 30  # an in-memory set after conversion to float32 in the spec's shape
MEMORY_SHARE = 0.5  # of the memory available when a set is opened: the rest is for the model and the OS
BAD_IMAGE_POLICIES = ("stop", "skip")
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's "L" conversion

__all__ = ["BadImageWarning", "ImageError", "ImageLimitError", "LabelledImages", "collate"]


class BadImageWarning(UserWarning):
    """An unreadable image was skipped (``bad_images="skip"``); one warning per image.

    Its text starts with the location (``list.csv:12: ``, or the image's path), so the CLI prints it as
    it prints errors, without the line of archspec's source that Python's default display adds."""


@dataclass(frozen=True)
class _Failure:
    """Why one image could not be decoded; plain data so it crosses from DataLoader workers intact."""

    kind: str  # "unreadable" | "too large"
    reason: str


@dataclass(eq=False, repr=False)
class LabelledImages(torch.utils.data.Dataset):
    """Images converted to the spec's input (C, H, W) with float values in [0, 1], and integer labels."""

    classes: list[str]  # class names, index = label
    labels: torch.Tensor  # (N,) int64
    images: torch.Tensor | None  # (N, C, H, W) float32 in [0, 1] when held in memory, else None
    paths: list[str] | None  # file-backed sets: one path per sample (labels aligned)
    shape: tuple[int, int, int]  # (C, H, W)
    origin: str  # human description: "digits (scikit-learn, 1,797 images)" or the CSV path
    bad_images: str = "stop"  # "stop" | "skip"
    rows: list[int] | None = None  # the CSV line of each sample, for messages
    list_file: str | None = None  # the CSV the rows refer to
    fit: str = "stretch"  # how file-backed images are fitted to the shape (archspec.images)
    # Paths dropped as unreadable; shared by subsets of one source. DataLoader workers record theirs
    # in their own copies (and warn there), so the main process sees only what it decoded itself.
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        kind = "in memory" if self.images is not None else "file-backed"
        return (f"LabelledImages({self.origin!r}: {len(self):,} samples, {len(self.classes)} classes, "
                f"{'×'.join(map(str, self.shape))}, {kind})")

    def __getitem__(self, i) -> tuple[torch.Tensor | None, int]:
        i = int(i)
        label = int(self.labels[i])
        if self.images is not None:
            return self.images[i], label
        image, failure = self._read(i)
        if failure is None:
            return image, label
        if failure.kind == "too large" or self.bad_images == "stop":
            raise self._error(i, failure)
        self._note_skipped(i, failure)
        return None, label  # `collate` drops it

    def __getitems__(self, indices) -> _Batch:
        """A whole batch, which a DataLoader asks for instead of sample by sample: a file-backed set decodes
        each image into one uint8 buffer and converts the batch to float at once, in shared memory when
        in a worker (what crosses to the main process). `collate` passes it through."""
        indices = [int(i) for i in indices]
        if self.images is not None:
            index = torch.tensor(indices, dtype=torch.int64)
            return _Batch(self.images[index], self.labels[index])
        channels, height, width = self.shape
        pixels = torch.empty((len(indices), height, width, channels), dtype=torch.uint8)
        kept: list[int] = []
        for i in indices:
            picture, failure = self._read(i, as_picture=True)
            if failure is None:
                pixels[len(kept)] = torch.from_numpy(np.array(picture).reshape(height, width, channels))
                kept.append(i)
            elif failure.kind == "too large" or self.bad_images == "stop":
                raise self._error(i, failure)
            else:
                self._note_skipped(i, failure)
        images = _float_batch((len(kept), channels, height, width))
        images.copy_(pixels[:len(kept)].permute(0, 3, 1, 2)).div_(255.0)
        return _Batch(images, self.labels[torch.tensor(kept, dtype=torch.int64)])

    def subset(self, indices) -> LabelledImages:
        """The same classes with the selected samples (in the order given)."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        picked = index.tolist()
        return replace(self, classes=list(self.classes), labels=self.labels[index],
                       images=None if self.images is None else self.images[index],
                       paths=None if self.paths is None else [self.paths[k] for k in picked],
                       rows=None if self.rows is None else [self.rows[k] for k in picked])

    def in_memory(self, max_bytes: int, workers: int = 0) -> LabelledImages:
        """Decode a file-backed set into one tensor when it fits in ``max_bytes``; else return self.

        Decoding runs in ``workers`` DataLoader processes; a failure comes back as data and is
        raised (or skipped, with its warning) here in the calling process.
        """
        if self.images is not None or self.paths is None:
            return self
        channels, height, width = self.shape
        if len(self) * channels * height * width * 4 > max_bytes:
            return self
        out = torch.empty((len(self), channels, height, width), dtype=torch.float32)
        kept = torch.ones(len(self), dtype=torch.bool)
        loader = torch.utils.data.DataLoader(_Decoding(self), batch_size=64, num_workers=workers,
                                             collate_fn=_decoded_batch)
        for indices, images, failures in loader:
            if len(indices):
                out[indices] = images
            for i, failure in failures:
                if failure.kind == "too large" or self.bad_images == "stop":
                    raise self._error(i, failure)
                self._note_skipped(i, failure)
                kept[i] = False
        if not kept.any():
            raise ArchspecError(f"every image is unreadable ({len(self):,} skipped)",
                                Location(self.list_file or self.origin))
        if kept.all():
            labels, paths, rows = self.labels, self.paths, self.rows
        else:
            out = out[kept]
            labels = self.labels[kept]
            keep = kept.tolist()
            paths = [p for p, k in zip(self.paths, keep) if k]
            rows = None if self.rows is None else [r for r, k in zip(self.rows, keep) if k]
        return replace(self, classes=list(self.classes), labels=labels, images=out, paths=paths, rows=rows)

    # -- file-backed decoding ------------------------------------------------------------------

    def _read(self, i: int, as_picture: bool = False) -> tuple[Any, _Failure | None]:
        """Decode sample i without side effects (safe in a worker); a failure is returned, not raised."""
        try:
            if as_picture:
                return decode_picture(self._path(i), self.shape, self.fit), None
            return decode_file(self._path(i), self.shape, self.fit), None
        except TooLarge as exc:
            return None, _Failure("too large", str(exc))
        except Exception as exc:  # Pillow raises many types for corrupt files; all mean "unreadable"
            return None, _Failure("unreadable", describe(exc))

    def _path(self, i: int) -> str:
        assert self.paths is not None, "only a file-backed set decodes files"
        return self.paths[i]

    def _where(self, i: int) -> Location:
        if self.rows is not None and self.list_file is not None:
            return Location(self.list_file, self.rows[i])
        return Location(self._path(i))

    def _error(self, i: int, failure: _Failure) -> ArchspecError:
        path = self._path(i)
        if failure.kind == "too large":
            return ImageLimitError(f"image {path} is too large to decode ({failure.reason})", self._where(i))
        hint = " (bad_images: skip drops such images)" if self.bad_images == "stop" else ""
        return ImageError(f"cannot read image {path}: {failure.reason}{hint}", self._where(i))

    def _note_skipped(self, i: int, failure: _Failure) -> None:
        path = self._path(i)
        if path in self.skipped:
            return
        self.skipped.append(path)
        warnings.warn(f"{self._where(i)}: skipped unreadable image {path}: {failure.reason}", BadImageWarning,
                      stacklevel=3)


class _Decoding(torch.utils.data.Dataset):
    """Sample i of a file-backed set as (i, image or None, failure or None), for `in_memory`'s workers."""

    def __init__(self, data: LabelledImages):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        image, failure = self.data._read(i)
        return i, image, failure


def _decoded_batch(batch):
    """Decoded images stacked in the worker (one shared-memory transfer per batch, not per image)."""
    good = [(i, image) for i, image, failure in batch if failure is None]
    failures = [(i, failure) for i, _, failure in batch if failure is not None]
    indices = torch.tensor([i for i, _ in good], dtype=torch.int64)
    images = torch.stack([image for _, image in good]) if good else torch.empty(0)
    return indices, images, failures


class _Batch(list):
    """What `LabelledImages.__getitems__` returns: the batch's images and labels, stacked. It is also the
    list of its samples (views), so a DataLoader with PyTorch's default collate still works."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__(zip(images, labels.tolist()))
        self.images, self.labels = images, labels


def _float_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """An empty float32 batch; in a DataLoader worker, in shared memory, so that handing it to the main
    process does not copy it again (as PyTorch's default collate does)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    count = 1
    for size in shape:
        count *= size
    model = torch.empty(0, dtype=torch.float32)
    storage = model._typed_storage()._new_shared(count, device=model.device)
    return model.new(storage).view(shape)


def collate(samples) -> tuple[torch.Tensor, torch.Tensor]:
    """DataLoader collate_fn: stack images and labels, dropping samples skipped as unreadable.

    A batch whose every sample was skipped comes back with zero samples (images of shape (0,)).
    """
    if isinstance(samples, _Batch):
        if len(samples.labels) == 0:
            return torch.empty(0), torch.empty(0, dtype=torch.int64)
        return samples.images, samples.labels
    kept = [(image, label) for image, label in samples if image is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    return torch.stack([image for image, _ in kept]), torch.tensor([label for _, label in kept], dtype=torch.int64)


def check_shape(shape) -> tuple[int, int, int]:
    try:
        dims = tuple(shape)
        ok = len(dims) == 3 and all(int(d) == d and d > 0 for d in dims)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"input shape must be three positive integers (C, H, W), not {shape!r}")
    channels, height, width = (int(d) for d in dims)
    return channels, height, width


def in_memory_set(images: torch.Tensor, labels: torch.Tensor, classes: list[str], shape, origin: str,
               scale: float) -> LabelledImages:
    """An in-memory set from (N, c, h, w) values in [0, scale], converted to ``shape`` chunk by chunk
    (so the float copy in the source size never exists for the whole set at once)."""
    channels, height, width = shape
    count = images.shape[0]
    check_memory(count, shape, origin)
    out = torch.empty((count, channels, height, width), dtype=torch.float32)
    for start in range(0, count, 2048):
        chunk = images[start:start + 2048].to(torch.float32) / scale
        out[start:start + 2048] = convert(chunk, shape)
    return LabelledImages(classes=classes, labels=labels.to(torch.int64), images=out, paths=None,
                          shape=shape, origin=origin)


def check_memory(count: int, shape, origin: str, extra: int = 0) -> None:
    """Refuse, before allocating, a set whose float32 copy (plus ``extra`` bytes read on the way) exceeds
    the memory budget: MAX_MEMORY_BYTES or MEMORY_SHARE of the memory available now, whichever is less."""
    needed = count * shape[0] * shape[1] * shape[2] * 4 + extra
    budget = memory_budget()
    if needed > budget:
        raise LimitError(f"{origin} at {'×'.join(map(str, shape))} needs {_gib(needed)} in memory, more than "
                         f"{_gib(budget)} ({budget_reason(budget)}); use a smaller input or fewer images")


def memory_budget() -> int:
    """The most bytes one data set may take in memory here and now."""
    available = available_memory()
    return MAX_MEMORY_BYTES if available is None else min(MAX_MEMORY_BYTES, int(available * MEMORY_SHARE))


def budget_reason(budget: int) -> str:
    if budget >= MAX_MEMORY_BYTES:
        return "archspec's limit for one data set"
    return f"half the {_gib(available_memory() or 0)} this machine has available"


def _gib(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:,} bytes"


def convert(images: torch.Tensor, shape) -> torch.Tensor:
    """(n, c, h, w) floats in [0, 1] -> (n, C, H, W): replicate gray, luminance from RGB, bilinear resize."""
    channels, height, width = shape
    have = images.shape[1]
    if have != channels:
        if have == 1:
            images = images.expand(-1, channels, -1, -1)
        elif have == 3 and channels == 1:
            weights = torch.tensor(LUMINANCE, dtype=images.dtype).view(1, 3, 1, 1)
            images = (images * weights).sum(dim=1, keepdim=True)
        else:
            raise UsageError(f"cannot convert {have}-channel images to {channels} channels")
    if tuple(images.shape[2:]) != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(0.0, 1.0)


def remap(data: LabelledImages, classes: list[str]) -> LabelledImages:
    """Relabel an in-memory set onto another class list (a validation source onto the training classes)."""
    classes = [str(c) for c in classes]
    index = {name: k for k, name in enumerate(classes)}
    unknown = [name for name in data.classes if name not in index]
    if unknown:
        raise ArchspecError(f"{data.origin} has classes not among the training classes "
                            f"({listing(classes)}): {listing(unknown)}")
    mapping = torch.tensor([index[name] for name in data.classes], dtype=torch.int64)
    data.labels = mapping[data.labels]
    data.classes = classes
    return data




def file_backed(paths: list[str], labels: list[int], classes: list[str], request, origin: str,
                rows: list[int] | None = None, list_file: str | None = None) -> LabelledImages:
    """A set decoded from its files when read (``request`` is a sources.Request)."""
    return LabelledImages(classes=classes, labels=torch.tensor(labels, dtype=torch.int64), images=None,
                          paths=paths, shape=request.shape, origin=origin, bad_images=request.bad_images,
                          rows=rows, list_file=list_file)
