"""The idx format (LeCun et al., MNIST): MNIST, Fashion-MNIST and EMNIST.

An idx file is a 4-byte magic number (0, 0, type, dimensions), one big-endian 32-bit size per
dimension, then the values; the data sets ship an images file (N×rows×cols unsigned bytes) and a
labels file (N bytes) per split, often gzipped. Fashion-MNIST (Xiao et al., 2017) uses MNIST's file
names; EMNIST (Cohen et al., 2017) names its files ``emnist-SPLIT-{train,test}-…`` and stores each
image transposed.

Files from strangers: both headers are read and checked against each other, the file sizes and the
memory this machine has available before any payload is read; a gzip file must be large enough to
hold what its header declares (deflate expands at most 1032:1), so a small file claiming a huge
payload is refused before anything is allocated, and decompression stops at the declared size.
"""
from __future__ import annotations

import gzip
import math
import os
import re
import struct
import zlib
from dataclasses import dataclass

import torch

from ..errors import ArchspecError, LimitError, Location, UsageError
from ..images import describe
from ..text import listing
from .labelled import LabelledImages, check_memory, in_memory_set
from .sources import Request

MAX_IDX_BYTES = 1 << 31  # one idx file's declared payload
DEFLATE_MAX_RATIO = 1032  # deflate's largest expansion: a 258-byte match coded in 2 bits (RFC 1951)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")  # Xiao, Rasul & Vollgraf (2017), table 1
EMNIST_SPLITS = ("balanced", "byclass", "bymerge", "digits", "letters", "mnist")
EMNIST_FILE = re.compile(r"emnist-(\w+?)-(train|test)-images-idx3-ubyte(\.gz)?")


# -- MNIST and Fashion-MNIST: train-* and t10k-* files -------------------------------------------


def _mnist_images(folder: str, prefix: str) -> str | None:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = os.path.join(folder, f"{prefix}-images{sep}idx3-ubyte{suffix}")
            if os.path.isfile(candidate):
                return candidate
    return None


def has_t10k(argument: str) -> bool:
    """A folder holding both the train and the t10k files: t10k is then the test split."""
    return (os.path.isdir(argument) and _mnist_images(argument, "train") is not None
            and _mnist_images(argument, "t10k") is not None)


def _mnist_file(argument: str, part: str) -> str:
    if os.path.isfile(argument):
        return argument
    if not os.path.isdir(argument):
        raise ArchspecError(f"no such file or folder: {argument}", Location(argument))
    prefixes = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[part]
    for prefix in prefixes:
        found = _mnist_images(argument, prefix)
        if found is not None:
            return found
    raise ArchspecError(f"no MNIST idx files in {argument} (expected train-images-idx3-ubyte[.gz] "
                        "and train-labels-idx1-ubyte[.gz])", Location(argument))


def open_mnist(argument: str, request: Request) -> LabelledImages:
    return read_pair(_mnist_file(argument, request.part), request, "MNIST idx")


def open_fashion_mnist(argument: str, request: Request) -> LabelledImages:
    return read_pair(_mnist_file(argument, request.part), request, "Fashion-MNIST",
                     names=dict(enumerate(FASHION_MNIST_CLASSES)))


# -- EMNIST: emnist-SPLIT-{train,test}-* files, transposed images, a mapping file ----------------


def _emnist_argument(argument: str) -> tuple[str, str]:
    split, _, folder = argument.partition(":")
    if not os.path.isdir(folder):
        raise ArchspecError(f"no such folder: {folder}", Location(folder))
    present = sorted({m.group(1) for m in map(EMNIST_FILE.fullmatch, os.listdir(folder)) if m})
    if not split:
        if len(present) != 1:
            what = f"several EMNIST splits ({listing(present)})" if present else "no EMNIST idx files"
            raise UsageError(f"{what} in {folder}: write emnist-SPLIT:{folder} with SPLIT one of "
                             f"{listing(present or EMNIST_SPLITS)}", Location(folder))
        split = present[0]
    elif split not in present:
        raise ArchspecError(f"no emnist-{split}-train-images-idx3-ubyte[.gz] in {folder}"
                            + (f" (splits there: {listing(present)})" if present else ""), Location(folder))
    return split, folder


def emnist_has_test(argument: str) -> bool:
    split, folder = _emnist_argument(argument)
    return _emnist_images(folder, split, "test") is not None


def _emnist_images(folder: str, split: str, part: str) -> str | None:
    for suffix in ("", ".gz"):
        candidate = os.path.join(folder, f"emnist-{split}-{part}-images-idx3-ubyte{suffix}")
        if os.path.isfile(candidate):
            return candidate
    return None


def open_emnist(argument: str, request: Request) -> LabelledImages:
    split, folder = _emnist_argument(argument)
    path = _emnist_images(folder, split, "test" if request.part == "test" else "train")
    if path is None:
        raise ArchspecError(f"no emnist-{split}-train-images-idx3-ubyte[.gz] in {folder}", Location(folder))
    mapping = os.path.join(folder, f"emnist-{split}-mapping.txt")
    names = _emnist_mapping(mapping) if os.path.isfile(mapping) else None
    return read_pair(path, request, f"EMNIST {split}", names=names, transposed=True)


def _emnist_mapping(path: str) -> dict[int, str]:
    """``label code [code]`` per line: the class of a label is the character with the first code."""
    names: dict[int, str] = {}
    with open(path, encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                label, code = int(fields[0]), int(fields[1])
                names[label] = chr(code)
            except (ValueError, IndexError, OverflowError):
                raise ArchspecError(f"expected 'label character-code', found {line.strip()[:40]!r}",
                                    Location(path, number)) from None
    return names


# -- reading one images file and its labels --------------------------------------------------------


@dataclass
class _Header:
    path: str
    dims: tuple[int, ...]
    size: int  # bytes of data the header declares


def labels_path_for(images_path: str) -> str:
    """The labels file beside an images file, gzipped or not whichever the images are."""
    named = re.sub(r"images([-.])idx3", r"labels\1idx1", images_path)
    other = named[:-3] if named.endswith(".gz") else named + ".gz"
    return other if not os.path.isfile(named) and os.path.isfile(other) else named


def read_pair(images_path: str, request: Request, kind: str, names: dict[int, str] | None = None,
              transposed: bool = False) -> LabelledImages:
    """An images file and its labels file as an in-memory set; every check made before a payload is read."""
    labels_path = labels_path_for(images_path)
    if labels_path == images_path or not os.path.isfile(labels_path):
        raise ArchspecError(f"no labels file for {images_path} (expected {labels_path})", Location(images_path))
    images_header = read_header(images_path, 3)
    labels_header = read_header(labels_path, 1)
    count, rows, cols = images_header.dims
    if labels_header.dims[0] != count:
        raise ArchspecError(f"{count:,} images but {labels_header.dims[0]:,} labels in {labels_path}",
                            Location(labels_path))
    if count == 0:
        raise ArchspecError("the idx file holds no images (its header declares 0)", Location(images_path))
    if not rows * cols:
        raise ArchspecError(f"idx images of {rows}×{cols} pixels", Location(images_path))
    origin = f"{kind} {images_path} ({count:,} images)"
    # the payloads and the converted set must fit before anything is read
    check_memory(count, request.shape, origin, extra=images_header.size + labels_header.size)
    pixels = read_payload(images_header)
    label_bytes = read_payload(labels_header)
    images = torch.frombuffer(pixels, dtype=torch.uint8).view(count, 1, rows, cols)
    if transposed:
        images = images.transpose(2, 3)
    labels = torch.frombuffer(label_bytes, dtype=torch.uint8).to(torch.int64)
    if names is None:
        classes = [str(k) for k in range(int(labels.max()) + 1)]
    else:
        unknown = sorted(set(labels.unique().tolist()) - set(names))
        if unknown:
            raise ArchspecError(f"labels {listing(map(str, unknown))} are not among the {len(names)} classes",
                                Location(labels_path))
        order = sorted(names)
        index = torch.full((256,), -1, dtype=torch.int64)
        index[torch.tensor(order)] = torch.arange(len(order))
        labels = index[labels]
        classes = [names[k] for k in order]
    return in_memory_set(images, labels, classes, request.shape, origin, scale=255.0)


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_header(path: str, ndim: int) -> _Header:
    """An idx file's dimensions, checked against the limit and the file's size before any data is read."""
    where = Location(path)
    if not os.path.isfile(path):  # a FIFO would block the read
        raise ArchspecError("not a regular file", where)
    try:
        with _open(path) as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
                raise ArchspecError("not an idx file (bad magic number)", where)
            if magic[2] != 0x08:
                raise ArchspecError(f"idx data type 0x{magic[2]:02x} is not supported (only unsigned bytes, 0x08)",
                                    where)
            if magic[3] != ndim:
                raise ArchspecError(f"idx file has {magic[3]} dimensions, expected {ndim}", where)
            header = f.read(4 * ndim)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a corrupt stream, zlib.error
        raise ArchspecError(f"cannot read idx file: {describe(exc)}", where) from None
    if len(header) < 4 * ndim:
        raise ArchspecError("truncated idx file (incomplete header)", where)
    dims = struct.unpack(f">{ndim}I", header)
    size = math.prod(dims)
    if size > MAX_IDX_BYTES:
        raise LimitError(f"idx file declares {size:,} bytes of data (limit {MAX_IDX_BYTES:,})", where)
    on_disk = os.path.getsize(path)
    if path.endswith(".gz"):
        if (4 + 4 * ndim + size) > on_disk * DEFLATE_MAX_RATIO:
            raise ArchspecError(f"truncated or corrupt idx file: its header declares {size:,} bytes of data, "
                                f"more than a gzip file of {on_disk:,} bytes can hold (deflate expands at most "
                                f"{DEFLATE_MAX_RATIO}:1)", where)
    elif on_disk - 4 - 4 * ndim != size:
        actual = on_disk - 4 - 4 * ndim
        state = "truncated" if actual < size else "longer than declared"
        raise ArchspecError(f"{state} idx file: its header declares {size:,} bytes of data, the file holds "
                            f"{actual:,}", where)
    return _Header(path, dims, size)


def read_payload(header: _Header) -> bytearray:
    """The declared bytes, decompressed in chunks into one buffer of the declared size and no further."""
    where = Location(header.path)
    payload = bytearray(header.size)
    view = memoryview(payload)
    got = 0
    try:
        with _open(header.path) as f:
            f.read(4 + 4 * len(header.dims))
            while got < header.size:
                n = f.readinto(view[got:got + (1 << 24)])
                if not n:
                    break
                got += n
            longer = bool(f.read(1)) if got == header.size else False
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a corrupt stream, zlib.error
        raise ArchspecError(f"cannot read idx file: {describe(exc)}", where) from None
    if got < header.size:
        raise ArchspecError(f"truncated idx file: its header declares {header.size:,} bytes of data, "
                            f"the file holds {got:,}", where)
    if longer:
        raise ArchspecError(f"idx file longer than declared ({header.size:,} bytes of data)", where)
    return payload
