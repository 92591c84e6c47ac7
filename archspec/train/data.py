"""Labelled images for `archspec train`: every source becomes one `LabelledImages` in the spec's input shape.

The trainer should not care where images come from, so each source (scikit-learn's bundled digits,
a CSV of ``path,label`` rows, a folder of class subfolders, MNIST idx files, or a synthetic set for
benchmarks) is converted to float tensors of the spec's (C, H, W) with values in [0, 1] and integer
labels. Small sets live in memory; file-backed sets decode lazily, one image at a time, so a data set
larger than memory still trains (`in_memory` decodes it once when it fits).

Data sets come from strangers, so their files are checked before they cost anything: every CSV row
is checked (all problems reported at once, with their line numbers), idx headers are checked against
the file length and a size limit before anything is allocated, and an image's pixel count is read
from its header before it is decoded (decompression bombs). A corrupt image either stops the run
with its path and CSV row (``bad_images="stop"``) or is dropped with a warning (``"skip"``).
"""
from __future__ import annotations

import csv
import gzip
import math
import os
import re
import struct
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError

MAX_IMAGE_PIXELS = 64_000_000  # one image; far beyond any training image, well below a decompression bomb
MAX_IDX_BYTES = 1 << 31  # one MNIST-style idx file's declared payload
MAX_MEMORY_BYTES = 16 << 30  # an in-memory set after conversion to float32 in the spec's shape
MAX_LISTED_PROBLEMS = 20  # CSV row problems shown before "… and N more"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
BAD_IMAGE_POLICIES = ("stop", "skip")
SYNTHETIC_DEFAULT_SIZE = 1024
SYNTHETIC_DEFAULT_CLASSES = 10
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's "L" conversion
HEADER_PATH_NAMES = {"path", "file", "filename", "image"}
HEADER_LABEL_NAMES = {"label", "class"}
INTEGER = re.compile(r"[+-]?[0-9]+")


class BadImageWarning(UserWarning):
    """An unreadable image was skipped (``bad_images="skip"``); one warning per image."""


class _SurvivesWorkers:
    """A DataLoader worker re-raises an exception in the main process as ``type(exc)(traceback_text)``,
    which would print a traceback where archspec promises one line. Recover that line instead."""

    def __init__(self, message: str, location: Location | None = None, node: str = ""):
        if message.startswith(f"Caught {type(self).__name__} in DataLoader worker"):
            message, location = _original_problem(message, type(self).__name__)
        super().__init__(message, location, node)


class ImageError(_SurvivesWorkers, ArchspecError):
    """An image that cannot be read, raised with its path (and CSV row) under ``bad_images="stop"``."""


class ImageLimitError(_SurvivesWorkers, LimitError):
    """An image larger than MAX_IMAGE_PIXELS: refused under either policy (it is not merely unreadable)."""


def _original_problem(wrapped: str, class_name: str) -> tuple[str, Location | None]:
    # The traceback ends with "module.ClassName: <str(problem)>", and str(problem) is
    # "<file>:<line>:<col>: error: <message>" or "error: <message>" (see errors.Problem).
    last = next((line for line in reversed(wrapped.splitlines()) if f"{class_name}: " in line), "")
    text = last.split(f"{class_name}: ", 1)[-1]
    if text.startswith("error: "):
        return text[len("error: "):], None
    where, sep, message = text.partition(": error: ")
    if not sep:
        return text, None
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return message, Location(parts[0], int(parts[1]), int(parts[2]))
    return message, Location(where)


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

    def subset(self, indices) -> LabelledImages:
        """The same classes with the selected samples (in the order given)."""
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        picked = index.tolist()
        return LabelledImages(
            classes=list(self.classes), labels=self.labels[index],
            images=None if self.images is None else self.images[index],
            paths=None if self.paths is None else [self.paths[k] for k in picked],
            shape=self.shape, origin=self.origin, bad_images=self.bad_images,
            rows=None if self.rows is None else [self.rows[k] for k in picked],
            list_file=self.list_file, skipped=self.skipped)

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
        return LabelledImages(classes=list(self.classes), labels=labels, images=out, paths=paths,
                              shape=self.shape, origin=self.origin, bad_images=self.bad_images,
                              rows=rows, list_file=self.list_file, skipped=self.skipped)

    # -- file-backed decoding ------------------------------------------------------------------

    def _read(self, i: int) -> tuple[torch.Tensor | None, _Failure | None]:
        """Decode sample i without side effects (safe in a worker); a failure is returned, not raised."""
        try:
            return _decode_file(self.paths[i], self.shape), None
        except _TooLarge as exc:
            return None, _Failure("too large", str(exc))
        except Exception as exc:  # Pillow raises many types for corrupt files; all mean "unreadable"
            return None, _Failure("unreadable", _describe(exc))

    def _where(self, i: int) -> Location:
        if self.rows is not None and self.list_file is not None:
            return Location(self.list_file, self.rows[i])
        return Location(self.paths[i])

    def _error(self, i: int, failure: _Failure) -> ArchspecError:
        path = self.paths[i]
        if failure.kind == "too large":
            return ImageLimitError(f"image {path} is too large to decode ({failure.reason})", self._where(i))
        hint = " (bad_images: skip drops such images)" if self.bad_images == "stop" else ""
        return ImageError(f"cannot read image {path}: {failure.reason}{hint}", self._where(i))

    def _note_skipped(self, i: int, failure: _Failure) -> None:
        path = self.paths[i]
        if path in self.skipped:
            return
        self.skipped.append(path)
        where = f"{self._where(i)}: " if self.rows is not None else ""
        warnings.warn(f"{where}skipped unreadable image {path}: {failure.reason}", BadImageWarning, stacklevel=3)


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


def collate(samples) -> tuple[torch.Tensor, torch.Tensor]:
    """DataLoader collate_fn: stack images and labels, dropping samples skipped as unreadable.

    A batch whose every sample was skipped comes back with zero samples (images of shape (0,)).
    """
    kept = [(image, label) for image, label in samples if image is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    return torch.stack([image for image, _ in kept]), torch.tensor([label for _, label in kept], dtype=torch.int64)


class _TooLarge(Exception):
    pass


def _describe(exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image file Pillow can decode"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _decode_file(path: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image file as a (C, H, W) float32 tensor in [0, 1]: Pillow decodes, converts and resizes."""
    from PIL import Image

    channels, height, width = shape
    with warnings.catch_warnings():
        # Pillow's own bomb check only warns below twice its limit; make it refuse, like ours.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)  # lazy: reads the header only
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise _TooLarge(str(exc)) from None
        with image:
            pixels = image.size[0] * image.size[1]
            if pixels > MAX_IMAGE_PIXELS:
                raise _TooLarge(f"{image.size[0]}×{image.size[1]} = {pixels:,} pixels, "
                                f"limit {MAX_IMAGE_PIXELS:,}")
            mode = "L" if channels == 1 else "RGB"
            image.draft(mode, (width, height))  # JPEG: decode at a reduced scale when much larger
            image.load()
            if image.mode.startswith("I;16") or (image.mode == "I" and image.getextrema()[1] > 255):
                # 16-bit gray (PNG, TIFF): Pillow's conversion to 8 bits would clip, not scale
                image = image.convert("I").point(lambda v: v / 257)
            converted = image.convert(mode)  # grayscale -> RGB replicates, RGB -> L is ITU-R 601
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    raw = torch.frombuffer(bytearray(converted.tobytes()), dtype=torch.uint8)
    return raw.view(height, width, channels).permute(2, 0, 1).float().div_(255.0)


def load_image(path: str | os.PathLike, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image file as (C, H, W) float32 in [0, 1], converted as a data set's images are (for predict)."""
    shape = _check_shape(shape)
    path = os.fspath(path)
    where = Location(path)
    _check_file_channels(shape, where)
    if not os.path.isfile(path):
        raise ImageError(f"image {'is not a file' if os.path.exists(path) else 'not found'}: {path}", where)
    try:
        return _decode_file(path, shape)
    except _TooLarge as exc:
        raise ImageLimitError(f"image {path} is too large to decode ({exc})", where) from None
    except Exception as exc:  # Pillow raises many types for corrupt files; all mean "unreadable"
        raise ImageError(f"cannot read image {path}: {_describe(exc)}", where) from None


# -- opening a source ----------------------------------------------------------------------------


def open_data(source: str | None, shape: tuple[int, int, int], *, classes: list[str] | None = None,
              bad_images: str = "stop", seed: int = 0) -> LabelledImages:
    """Open a data source as `LabelledImages` in ``shape`` = (C, H, W).

    source: None or "digits" (scikit-learn's bundled 8×8 digits), "synthetic[:N[:K]]", "mnist:DIR",
    a ``.csv`` of ``path,label`` rows, a folder of MNIST idx files (or one idx images file), or a
    folder whose subfolders are the classes. (Write ``./digits`` for a folder named "digits".)
    classes: the class names labels must map onto (a validation or test source uses the training
    set's); by default the source's own, sorted. seed: only the synthetic set uses it.
    """
    shape = _check_shape(shape)
    if bad_images not in BAD_IMAGE_POLICIES:
        raise UsageError(f"bad_images must be 'stop' or 'skip', not {bad_images!r}")
    if source is not None:
        source = os.fspath(source)
    if source is None or source == "digits":
        data = _digits(shape)
    elif source == "synthetic" or source.startswith("synthetic:"):
        data = _synthetic(source, shape, seed)
    elif source.startswith("mnist:"):
        data = _mnist(source[len("mnist:"):], shape)
    elif source.lower().endswith(".csv"):
        data = _csv(source, shape, classes, bad_images)
    elif os.path.isdir(source):
        if _idx_images_in(source) is not None:
            data = _mnist(source, shape)
        else:
            data = _folder(source, shape, classes, bad_images)
    elif os.path.isfile(source) and _is_idx_images_name(source):
        data = _mnist(source, shape)
    elif not os.path.exists(source):
        raise ArchspecError(f"no such file or folder: {source} (data sources: 'digits', 'synthetic[:N[:K]]', "
                            "'mnist:DIR', a .csv of path,label rows, or a folder of class subfolders)",
                            Location(source))
    else:
        raise ArchspecError(f"cannot read data from {source}: expected a .csv of path,label rows, a folder of "
                            "class subfolders, MNIST idx files, 'digits' or 'synthetic[:N[:K]]'", Location(source))
    if data.images is not None and classes is not None:  # CSVs and folders map their labels themselves
        data = _remap(data, classes)
    if len(data) == 0:
        raise ArchspecError(f"no images in {data.origin}", Location(source or "digits"))
    if len(data.classes) < 2:
        found = ", ".join(repr(c) for c in data.classes) or "none"
        raise ArchspecError(f"{data.origin} has {len(data.classes)} class ({found}); classifying needs at least 2",
                            Location(source or "digits"))
    return data


def _check_shape(shape) -> tuple[int, int, int]:
    try:
        dims = tuple(shape)
        ok = len(dims) == 3 and all(int(d) == d and d > 0 for d in dims)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"input shape must be three positive integers (C, H, W), not {shape!r}")
    channels, height, width = (int(d) for d in dims)
    return channels, height, width


def _in_memory(images: torch.Tensor, labels: torch.Tensor, classes: list[str], shape, origin: str,
               scale: float) -> LabelledImages:
    """An in-memory set from (N, c, h, w) values in [0, scale], converted to ``shape`` chunk by chunk
    (so the float copy in the source size never exists for the whole set at once)."""
    channels, height, width = shape
    count = images.shape[0]
    _check_memory(count, shape, origin)
    out = torch.empty((count, channels, height, width), dtype=torch.float32)
    for start in range(0, count, 2048):
        chunk = images[start:start + 2048].to(torch.float32) / scale
        out[start:start + 2048] = _convert(chunk, shape)
    return LabelledImages(classes=classes, labels=labels.to(torch.int64), images=out, paths=None,
                          shape=shape, origin=origin)


def _check_memory(count: int, shape, origin: str) -> None:
    needed = count * shape[0] * shape[1] * shape[2] * 4
    if needed > MAX_MEMORY_BYTES:
        raise LimitError(f"{origin} at {'×'.join(map(str, shape))} needs {needed / 2**30:.1f} GiB in memory "
                         f"(limit {MAX_MEMORY_BYTES / 2**30:.0f} GiB); use a smaller input or fewer images")


def _convert(images: torch.Tensor, shape) -> torch.Tensor:
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


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names):,} in all)" if len(names) > limit else "")


def _remap(data: LabelledImages, classes: list[str]) -> LabelledImages:
    """Relabel an in-memory set onto another class list (a validation source onto the training classes)."""
    classes = [str(c) for c in classes]
    index = {name: k for k, name in enumerate(classes)}
    unknown = [name for name in data.classes if name not in index]
    if unknown:
        raise ArchspecError(f"{data.origin} has classes not among the training classes "
                            f"({_listing(classes)}): {_listing(unknown)}")
    mapping = torch.tensor([index[name] for name in data.classes], dtype=torch.int64)
    data.labels = mapping[data.labels]
    data.classes = classes
    return data


def _digits(shape) -> LabelledImages:
    from sklearn.datasets import load_digits

    bunch = load_digits()  # bundled with scikit-learn: never downloads
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8), 0..16
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    origin = f"digits (scikit-learn, {len(labels):,} images)"
    return _in_memory(images, labels, [str(d) for d in range(10)], shape, origin, scale=16.0)


def _synthetic(source: str, shape, seed: int) -> LabelledImages:
    """A learnable set for benchmarks and tests: each class is a fixed smooth random pattern, plus noise."""
    parts = source.split(":")[1:]
    try:
        if len(parts) > 2:
            raise ValueError
        count = int(parts[0]) if parts and parts[0] else SYNTHETIC_DEFAULT_SIZE
        kinds = int(parts[1]) if len(parts) > 1 else SYNTHETIC_DEFAULT_CLASSES
    except ValueError:
        raise UsageError(f"synthetic data is 'synthetic', 'synthetic:N' or 'synthetic:N:K', not {source!r}") from None
    if count < 1 or kinds < 2 or kinds > count:
        raise UsageError(f"{source}: needs N ≥ K ≥ 2 (N images, K classes)")
    origin = f"synthetic ({count:,} images, {kinds} classes)"
    _check_memory(count, shape, origin)
    channels, height, width = shape
    # The patterns depend only on K and the shape, so separate synthetic sources (train, val, test)
    # share their classes; the seed picks the samples. Coarse 4×4 patterns survive resizing and augmentation.
    patterns_rng = torch.Generator().manual_seed(0x5EED + kinds)
    coarse = torch.rand((kinds, channels, 4, 4), generator=patterns_rng)
    patterns = 0.2 + 0.6 * F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    rng = torch.Generator().manual_seed(seed)
    labels = (torch.arange(count) % kinds)[torch.randperm(count, generator=rng)]
    images = torch.empty((count, channels, height, width), dtype=torch.float32)
    for start in range(0, count, 4096):
        chunk = labels[start:start + 4096]
        noise = torch.randn((len(chunk), channels, height, width), generator=rng)
        images[start:start + 4096] = (patterns[chunk] + 0.1 * noise).clamp_(0.0, 1.0)
    return LabelledImages(classes=[str(k) for k in range(kinds)], labels=labels, images=images, paths=None,
                          shape=shape, origin=origin)


# -- MNIST idx files -----------------------------------------------------------------------------


def _is_idx_images_name(path: str) -> bool:
    name = os.path.basename(path)
    return bool(re.fullmatch(r".*images[-.]idx3-ubyte(\.gz)?", name))


def _idx_images_in(folder: str) -> str | None:
    """The training images file of an MNIST folder (the t10k one when that is all there is)."""
    for prefix in ("train", "t10k"):
        for sep in ("-", "."):
            for suffix in ("", ".gz"):
                candidate = os.path.join(folder, f"{prefix}-images{sep}idx3-ubyte{suffix}")
                if os.path.isfile(candidate):
                    return candidate
    return None


def _mnist(source: str, shape) -> LabelledImages:
    if os.path.isdir(source):
        images_path = _idx_images_in(source)
        if images_path is None:
            raise ArchspecError(f"no MNIST idx files in {source} (expected train-images-idx3-ubyte[.gz] "
                                "and train-labels-idx1-ubyte[.gz])", Location(source))
    elif os.path.isfile(source):
        images_path = source
    else:
        raise ArchspecError(f"no such file or folder: {source}", Location(source))
    labels_path = re.sub(r"images([-.])idx3", r"labels\1idx1", images_path)
    if labels_path == images_path or not os.path.isfile(labels_path):
        raise ArchspecError(f"no labels file for {images_path} (expected {labels_path})", Location(images_path))
    dims, pixels = _read_idx(images_path, 3)
    (label_count,), label_bytes = _read_idx(labels_path, 1)
    if dims[0] != label_count:
        raise ArchspecError(f"{dims[0]:,} images but {label_count:,} labels in {labels_path}", Location(labels_path))
    count, rows, cols = dims
    if count and not rows * cols:
        raise ArchspecError(f"idx images of {rows}×{cols} pixels", Location(images_path))
    images = torch.frombuffer(pixels, dtype=torch.uint8).view(count, 1, rows, cols)
    labels = torch.frombuffer(label_bytes, dtype=torch.uint8).to(torch.int64)
    kinds = int(labels.max()) + 1 if count else 0
    origin = f"MNIST idx {images_path} ({count:,} images)"
    return _in_memory(images, labels, [str(k) for k in range(kinds)], shape, origin, scale=255.0)


def _read_idx(path: str, ndim: int) -> tuple[tuple[int, ...], bytearray]:
    """An idx file's dimensions and unsigned-byte payload, its header checked before anything is allocated."""
    where = Location(path)
    compressed = path.endswith(".gz")
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise ArchspecError("not an idx file (bad magic number)", where)
            if magic[2] != 0x08:
                raise ArchspecError(f"idx data type 0x{magic[2]:02x} is not supported (only unsigned bytes, 0x08)",
                                    where)
            if magic[3] != ndim:
                raise ArchspecError(f"idx file has {magic[3]} dimensions, expected {ndim}", where)
            header = f.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise ArchspecError("truncated idx file (incomplete header)", where)
            dims = struct.unpack(f">{ndim}I", header)
            size = math.prod(dims)
            if size > MAX_IDX_BYTES:
                raise LimitError(f"idx file declares {size:,} bytes of data (limit {MAX_IDX_BYTES:,})", where)
            if not compressed:
                actual = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
                if actual != size:
                    state = "truncated" if actual < size else "longer than declared"
                    raise ArchspecError(f"{state} idx file: its header declares {size:,} bytes of data, "
                                        f"the file holds {actual:,}", where)
            payload = bytearray(size)
            got = f.readinto(payload)
            if got < size:
                raise ArchspecError(f"truncated idx file: its header declares {size:,} bytes of data, "
                                    f"the file holds {got:,}", where)
            if f.read(1):
                raise ArchspecError(f"idx file longer than declared ({size:,} bytes of data)", where)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchspecError(f"cannot read idx file: {_describe(exc)}", where) from None
    return dims, payload


# -- files listed in a CSV or found in class folders ---------------------------------------------


def _files(paths: list[str], labels: list[int], classes: list[str], shape, origin: str, bad_images: str,
           rows: list[int] | None = None, list_file: str | None = None) -> LabelledImages:
    return LabelledImages(classes=classes, labels=torch.tensor(labels, dtype=torch.int64), images=None,
                          paths=paths, shape=shape, origin=origin, bad_images=bad_images, rows=rows,
                          list_file=list_file)


def _check_file_channels(shape, where: Location) -> None:
    if shape[0] not in (1, 3):
        raise ArchspecError(f"the input has {shape[0]} channels; images from files can be converted to "
                            "1 (grayscale) or 3 (RGB)", where)


def _label_key(label: str) -> str:
    return str(int(label)) if INTEGER.fullmatch(label) else label


def _csv(path: str, shape, classes: list[str] | None, bad_images: str) -> LabelledImages:
    where = Location(path)
    if not os.path.isfile(path):
        raise ArchspecError(f"no such CSV file: {path}", where)
    _check_file_channels(shape, where)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise ArchspecError("the CSV is not UTF-8 text", where) from None
    except OSError as exc:
        raise ArchspecError(f"cannot read the CSV: {_describe(exc)}", where) from None
    folder = os.path.dirname(path)
    problems: list[Problem] = []
    entries: list[tuple[int, str, str]] = []  # (line number, resolved path, label text)
    first = True
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([text]))] if "," in text else text.split()
        except csv.Error as exc:  # a NUL byte, say
            problems.append(Problem(f"unreadable row: {exc}", Location(path, number)))
            continue
        if first:
            first = False
            if (len(fields) == 2 and fields[0].lower() in HEADER_PATH_NAMES
                    and fields[1].lower() in HEADER_LABEL_NAMES):
                continue
        row = Location(path, number)
        if len(fields) != 2 or not all(fields):
            problems.append(Problem(f"expected 'path,label' (or 'path label'), found {len(fields)} "
                                    f"field{'s' * (len(fields) != 1)}: {text[:80]}", row))
            continue
        image, label = fields
        resolved = image if os.path.isabs(image) else os.path.join(folder, image)
        if not os.path.isfile(resolved):
            looked = f" (looked for {resolved})" if resolved != image else ""
            what = "is not a file" if os.path.exists(resolved) else "not found"
            problems.append(Problem(f"image {what}: {image}{looked}", row))
            continue
        entries.append((number, resolved, label))
    if classes is None:
        keys = {_label_key(label) for _, _, label in entries}
        numeric = all(INTEGER.fullmatch(k) for k in keys)
        names = sorted(keys, key=int) if numeric else sorted(keys)
    else:
        names = [str(c) for c in classes]
    index = {name: k for k, name in enumerate(names)}
    labels: list[int] = []
    kept: list[tuple[int, str, str]] = []
    for number, resolved, label in entries:
        key = label if label in index else _label_key(label)
        if key not in index:
            problems.append(Problem(f"label {label!r} is not one of the classes ({_listing(names)})",
                                    Location(path, number)))
            continue
        labels.append(index[key])
        kept.append((number, resolved, label))
    if problems:
        problems.sort(key=lambda p: p.location.line)
        if len(problems) > MAX_LISTED_PROBLEMS:
            more = len(problems) - MAX_LISTED_PROBLEMS
            problems = problems[:MAX_LISTED_PROBLEMS] + [Problem(f"… and {more:,} more problem{'s' * (more > 1)}",
                                                                 where)]
        raise SpecError(problems)
    if not kept:
        raise ArchspecError("no images listed in the CSV", where)
    return _files([r for _, r, _ in kept], labels, names, shape, path, bad_images,
                  rows=[n for n, _, _ in kept], list_file=path)


def _folder(folder: str, shape, classes: list[str] | None, bad_images: str) -> LabelledImages:
    where = Location(folder)
    _check_file_channels(shape, where)
    try:
        found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    except OSError as exc:
        raise ArchspecError(f"cannot read the folder: {_describe(exc)}", where) from None
    if not found:
        raise ArchspecError("no class subfolders (a folder source holds one subfolder of images per class)", where)
    names = found if classes is None else [str(c) for c in classes]
    index = {name: k for k, name in enumerate(names)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise ArchspecError(f"class folders not among the training classes ({_listing(names)}): "
                            f"{_listing(unknown)}", where)
    paths: list[str] = []
    labels: list[int] = []
    for name in found:
        for root, dirs, files in os.walk(os.path.join(folder, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # walk in a fixed order
            for file in sorted(files):
                path = os.path.join(root, file)
                # regular files only: opening a named pipe called "x.png" would wait forever
                if (not file.startswith(".") and os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS
                        and os.path.isfile(path)):
                    paths.append(path)
                    labels.append(index[name])
    if not paths:
        raise ArchspecError("no image files (png, jpg, jpeg, bmp, gif, tif, tiff, webp) in the class subfolders",
                            where)
    return _files(paths, labels, names, shape, folder, bad_images)


# -- splits ---------------------------------------------------------------------------------------


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
    main = open_data(source, shape, bad_images=bad_images, seed=seed)
    # a different seed per source only matters for synthetic sets: val and test then hold other samples
    val_data = None if val is None else open_data(val, shape, classes=main.classes, bad_images=bad_images,
                                                  seed=seed + 1)
    test_data = None if test is None else open_data(test, shape, classes=main.classes, bad_images=bad_images,
                                                    seed=seed + 2)
    if val_data is not None and test_data is not None:
        return Splits(main, val_data, test_data)
    if val_data is None and test_data is None:
        return split(main, values, seed)
    if test_data is not None:
        shares, names = [values[0], values[1]], ["train", "val"]
    else:
        shares, names = [values[0], values[2]], ["train", "test"]
    total = sum(shares)
    train, other = _cut(main, [s / total for s in shares], names, seed)
    return Splits(train, other, test_data) if test_data is not None else Splits(train, val_data, other)


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
