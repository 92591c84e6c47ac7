"""Weights on disk as safetensors (no pickle), checked against the model before anything loads.

A checkpoint comes from a stranger: its header is parsed and checked (size, offsets, names,
shapes, dtypes) before a single tensor is read, and a mismatch lists every problem at once.
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write
from .errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError

MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1}


@dataclass
class LoadReport:
    """What a non-strict load did: names loaded, and those it could not match."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # same name, other shape: "name: file 3×3, model 5×5"


def save_weights(module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Save a module's state_dict (parameters and buffers) as safetensors, atomically."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    info = {"format": "pt", "writer": "archspec", **(metadata or {})}
    atomic_write(Path(path), lambda tmp: save_file(state, tmp, metadata=info))
    return Path(path)


def read_header(path: str | os.PathLike) -> dict[str, dict]:
    """The tensor table of a safetensors file, validated without reading any tensor data."""
    return _read_header(path)[0]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's ``__metadata__`` strings (archspec's trainer stores classes, normalisation and spec there)."""
    return _read_header(path)[1]


def _read_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    path = Path(path)
    where = Location(str(path))
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise ArchspecError("not a safetensors file (too short)", where)
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise LimitError(f"not a safetensors file (header of {length:,} bytes)", where)
            raw = f.read(length)
    except OSError as exc:
        raise ArchspecError(f"cannot read weights: {exc.strerror}", where) from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArchspecError("not a safetensors file (its header is not JSON)", where) from None
    if not isinstance(header, dict):
        raise ArchspecError("not a safetensors file (bad header)", where)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArchspecError("not a safetensors file (its metadata is not a table of strings)", where)
    data_bytes = size - 8 - length
    for name, entry in header.items():
        ok = (isinstance(entry, dict) and entry.get("dtype") in DTYPE_SIZES
              and isinstance(entry.get("shape"), list) and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2)
        if ok:
            begin, end = entry["data_offsets"]
            numel = 1
            for d in entry["shape"]:
                numel *= d
            ok = 0 <= begin <= end <= data_bytes and end - begin == numel * DTYPE_SIZES[entry["dtype"]]
        if not ok:
            raise ArchspecError(f"corrupt safetensors entry '{name}' (shape, dtype or offsets do not add up)", where)
    return header, metadata


def load_weights(module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load safetensors weights into ``module``.

    strict: every name and shape must match, or nothing is loaded and every mismatch is listed.
    Not strict: matching names with matching shapes load; the report lists the rest.
    """
    import torch
    from safetensors import safe_open

    header = read_header(path)
    expected = module.state_dict()
    report = LoadReport()
    for name, tensor in expected.items():
        if name not in header:
            report.missing.append(name)
        elif list(tensor.shape) != header[name]["shape"]:
            file_shape = "×".join(map(str, header[name]["shape"])) or "scalar"
            model_shape = "×".join(map(str, tensor.shape)) or "scalar"
            report.mismatched.append(f"{name}: file has {file_shape}, model has {model_shape}")
        else:
            report.loaded.append(name)
    report.unexpected = [name for name in header if name not in expected]
    if strict and (report.missing or report.unexpected or report.mismatched):
        where = Location(str(path))
        problems = ([Problem(f"missing from the file: {n}", where) for n in report.missing]
                    + [Problem(f"not in the model: {n}", where) for n in report.unexpected]
                    + [Problem(f"shape differs: {m}", where) for m in report.mismatched])
        raise SpecError(problems)
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for name in report.loaded:
            state[name] = f.get_tensor(name)
    with torch.no_grad():
        for name, value in state.items():
            expected[name].copy_(value.to(expected[name].dtype))
    return report


# ------------------------------------------------------------------ run folders and the trainer's metadata


@dataclass(frozen=True)
class WeightsInfo:
    """A weights file and what the trainer recorded in its metadata (all optional)."""

    path: Path
    classes: list[str] | None = None
    mean: list[float] | None = None  # per channel; the model's input is (image - mean) / std
    std: list[float] | None = None
    input: tuple[int, ...] | None = None
    spec: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def resolve_weights(source: str | os.PathLike) -> Path:
    """A safetensors file, or a run folder's best.safetensors (else its last.safetensors)."""
    path = Path(source)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise UsageError("this run folder has no best.safetensors or last.safetensors (has its training "
                         "finished an epoch?)", Location(str(path)))
    if not path.is_file():
        raise UsageError("no such weights file or run folder", Location(str(path)))
    return path


def _json_metadata(metadata: dict[str, str], key: str, where: Location, check) -> Any:
    if key not in metadata:
        return None
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError:
        value = None
    if value is None or not check(value):
        raise ArchspecError(f"the metadata entry {key} is malformed: {metadata[key][:60]!r}", where)
    return value


def _numbers(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))


def read_info(source: str | os.PathLike) -> WeightsInfo:
    """The weights file behind ``source`` and its archspec metadata; the header is validated first."""
    path = resolve_weights(source)
    metadata = read_metadata(path)
    where = Location(str(path))
    classes = _json_metadata(metadata, "archspec.classes", where,
                             lambda v: isinstance(v, list) and all(isinstance(c, (str, int)) for c in v))
    mean = _json_metadata(metadata, "archspec.mean", where, _numbers)
    std = _json_metadata(metadata, "archspec.std", where, lambda v: _numbers(v) and all(s > 0 for s in v))
    shape = _json_metadata(metadata, "archspec.input", where,
                           lambda v: isinstance(v, list) and all(isinstance(d, int) and d > 0 for d in v))
    params = _json_metadata(metadata, "archspec.params", where, lambda v: isinstance(v, dict)) or {}
    spec = metadata.get("archspec.spec") or None
    return WeightsInfo(path, [str(c) for c in classes] if classes else None, mean, std,
                       tuple(shape) if shape else None, spec, params)
