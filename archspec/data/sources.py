"""The data sources `archspec train --data` reads, as a table: one row per format.

A row names the format, says which ``--data`` values it takes (its matcher), where its reader lives
(``module:function``, imported only when that format is used, so the table itself costs no torch
import), whether the format holds its own test part, and a one-line description. The CLI help, the
config schema's description, the messages for a source nothing matches and docs/data.md are all
generated from these rows, so a new format is one row plus one reader module.

Rows are tried in order: the first whose matcher accepts the value opens it. Prefixed forms
(``mnist:DIR``) come first, then the forms recognised from what is on disk.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from ..errors import ArchspecError, Location, UsageError

Matcher = Callable[[str], "str | None"]  # the --data value -> the reader's argument, or None


@dataclass(frozen=True)
class Source:
    name: str  # "cifar10"
    syntax: str  # how it is written: "cifar10:DIR"
    matches: Matcher
    opener: str  # "archspec.data.cifar:open_cifar10", called as opener(argument, request)
    description: str
    has_test: str | None = None  # "module:function": does this argument hold a separate test part?
    examples: tuple[str, ...] = field(default=())
    listed: bool = True  # False for a form recognised on disk that a listed form already names

    def open(self, argument: str, request: Request) -> Any:
        return _function(self.opener)(argument, request)

    def test_part(self, argument: str) -> bool:
        return bool(self.has_test) and bool(_function(self.has_test)(argument))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Request:
    """What every reader is asked for: the spec's (C, H, W), the class names to map onto (a validation or
    test source uses the training set's), the bad-image policy, a seed (synthetic sets), and which part of
    a source that ships its own test part: "train", "test", or "all" (one that does not)."""

    shape: tuple[int, int, int]
    classes: list[str] | None = None
    bad_images: str = "stop"
    seed: int = 0
    part: str = "all"


def _function(reference: str) -> Callable[..., Any]:
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def expand_path(path: str) -> str:
    """``~`` and ``$NAME`` / ``${NAME}`` expanded, as a shell would; an unset variable is an error."""
    expanded = os.path.expandvars(os.path.expanduser(path))
    unset = re.search(r"\$(\{\w+\}|\w+)", expanded)
    if unset and not os.path.exists(expanded):
        name = unset.group(1).strip("{}")
        raise UsageError(f"{path}: the environment variable {name} is not set", Location(path))
    return expanded


def _exact(*words: str) -> Matcher:
    return lambda value: value if value in words else None


def _prefix(name: str, optional: bool = False, path: bool = True) -> Matcher:
    """``name:ARGUMENT`` (and the bare ``name`` when the argument is optional)."""

    def matches(value: str) -> str | None:
        if optional and value == name:
            return ""
        if value.startswith(name + ":"):
            argument = value[len(name) + 1:]
            return expand_path(argument) if path else argument
        return None

    return matches


IDX_IMAGES = re.compile(r".*images[-.]idx3-ubyte(\.gz)?")


def _idx_on_disk(value: str) -> str | None:
    path = expand_path(value)
    if os.path.isfile(path) and IDX_IMAGES.fullmatch(os.path.basename(path)):
        return path
    if os.path.isdir(path) and any(IDX_IMAGES.fullmatch(n) for n in _names(path)):
        return path
    return None


def _cifar10_on_disk(value: str) -> str | None:
    path = expand_path(value)
    return path if os.path.isdir(path) and "data_batch_1.bin" in _names(path) else None


def _csv_file(value: str) -> str | None:
    return expand_path(value) if value.lower().endswith(".csv") else None


def _folder(value: str) -> str | None:
    path = expand_path(value)
    return path if os.path.isdir(path) else None


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


SOURCES: tuple[Source, ...] = (
    Source("digits", "digits", _exact("digits"), "archspec.data.digits:open_digits",
           "scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; the default)"),
    Source("synthetic", "synthetic[:N[:K]]", _prefix("synthetic", optional=True, path=False),
           "archspec.data.synthetic:open_synthetic",
           "N generated images (default 1,024) of K classes (default 10), each class a smooth pattern plus "
           "noise: for benchmarks and tests", examples=("synthetic:2000:4",)),
    Source("mnist", "mnist:DIR", _prefix("mnist"), "archspec.data.idx:open_mnist",
           "MNIST idx files (train-images-idx3-ubyte[.gz] and its labels; t10k-* become the test split "
           "when present); DIR may also be one images file", has_test="archspec.data.idx:has_t10k",
           examples=("mnist:~/data/mnist",)),
    Source("fashion-mnist", "fashion-mnist:DIR", _prefix("fashion-mnist"), "archspec.data.idx:open_fashion_mnist",
           "Fashion-MNIST (Xiao et al., 2017): MNIST's idx format, classes named T-shirt/top to Ankle boot",
           has_test="archspec.data.idx:has_t10k"),
    Source("emnist", "emnist[-SPLIT]:DIR", lambda v: _emnist(v), "archspec.data.idx:open_emnist",
           "EMNIST (Cohen et al., 2017) idx files emnist-SPLIT-{train,test}-*-ubyte[.gz] (SPLIT: balanced, "
           "byclass, bymerge, digits, letters, mnist); images are transposed back; classes from "
           "emnist-SPLIT-mapping.txt when present", has_test="archspec.data.idx:emnist_has_test",
           examples=("emnist-letters:$DATA/emnist",)),
    Source("cifar10", "cifar10:DIR", _prefix("cifar10"), "archspec.data.cifar:open_cifar10",
           "CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin; Krizhevsky, 2009): 32×32 colour, "
           "10 classes", has_test="archspec.data.cifar:cifar10_has_test"),
    Source("cifar100", "cifar100:DIR", _prefix("cifar100"), "archspec.data.cifar:open_cifar100_fine",
           "CIFAR-100 binary version (train.bin, test.bin) with its 100 fine labels",
           has_test="archspec.data.cifar:cifar100_has_test"),
    Source("cifar100-coarse", "cifar100-coarse:DIR", _prefix("cifar100-coarse"),
           "archspec.data.cifar:open_cifar100_coarse", "CIFAR-100 with its 20 coarse (superclass) labels",
           has_test="archspec.data.cifar:cifar100_has_test"),
    Source("csv", "FILE.csv", _csv_file, "archspec.data.csvlist:open_csv",
           "a CSV of path,label rows (or 'path label'; an optional header); paths relative to the CSV; "
           "labels are class names or class numbers 0, 1, …"),
    Source("idx", "DIR or FILE", _idx_on_disk, "archspec.data.idx:open_mnist",
           "a folder holding MNIST-style idx files, or one *-images-idx3-ubyte[.gz] file: as mnist:DIR",
           has_test="archspec.data.idx:has_t10k", listed=False),
    Source("cifar10-folder", "DIR", _cifar10_on_disk, "archspec.data.cifar:open_cifar10",
           "a folder holding CIFAR-10's data_batch_1.bin: as cifar10:DIR",
           has_test="archspec.data.cifar:cifar10_has_test", listed=False),
    Source("folder", "DIR of class folders", _folder, "archspec.data.folder:open_folder",
           "a folder with one subfolder of images (PNG, JPEG, BMP, GIF, TIFF, WebP) per class; decoded "
           "into memory when it fits, else streamed from disk through DataLoader workers"),
)

EMNIST = re.compile(r"emnist(?:-(\w+))?:(.*)", re.DOTALL)


def _emnist(value: str) -> str | None:
    found = EMNIST.fullmatch(value)
    if not found:
        return None
    return f"{found.group(1) or ''}:{expand_path(found.group(2))}"


def find(value: str | os.PathLike | None) -> tuple[Source, str]:
    """The row that reads ``value`` and the argument for its reader; a located message when none does."""
    text = "digits" if value is None else os.fspath(value)
    for source in SOURCES:
        argument = source.matches(text)
        if argument is not None:
            return source, argument
    path = expand_path(text)
    what = "no such file or folder" if not os.path.exists(path) else "cannot read data from"
    raise ArchspecError(f"{what}: {text} (data sources: {syntax_list()})", Location(text))


def syntax_list() -> str:
    """``digits, synthetic[:N[:K]], mnist:DIR, …``: every form, for messages and help."""
    forms = [s.syntax for s in SOURCES if s.listed]
    return ", ".join(forms[:-1]) + f" or {forms[-1]}"


def help_text() -> str:
    """The ``--data`` option's help: every form, the default first."""
    return f"Training data: {syntax_list()} (default digits; ~ and $VARS are expanded). See docs/data.md."


def markdown_table() -> str:
    """The table docs/data.md shows (a test checks that the doc holds it)."""
    lines = ["| `--data` | format |", "|---|---|"]
    for s in SOURCES:
        lines.append(f"| `{s.syntax}` | {s.description} |")
    return "\n".join(lines)
