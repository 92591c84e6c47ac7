"""Weights on disk as safetensors (no pickle), checked against the model before anything loads.

A checkpoint comes from a stranger: its header is parsed and checked (size, offsets, names,
shapes, dtypes) before a single tensor is read, and a mismatch lists every problem at once.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write, open_regular
from .errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError

MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
MAX_JSON_DEPTH = 64  # a weights header nests 3 deep, a checkpoint's state tree about 8
CHECKSUM_KEY = "archspec.sha256"  # of the data section, written by every archspec writer
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
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
    """Save a module's state_dict (parameters and buffers) as safetensors, atomically, with a checksum."""
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    write_safetensors(path, state, {"format": "pt", "writer": "archspec", **(metadata or {})})
    return Path(path)


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str]) -> None:
    """Write ``tensors`` as one safetensors file whose metadata holds the sha256 of its data section,
    so that a flipped byte is found when the file is read back."""
    from safetensors.torch import save

    def write(tmp):
        blob = memoryview(save(tensors, metadata=metadata))
        (length,) = struct.unpack("<Q", blob[:8])
        data = blob[8 + length:]
        header = json.loads(bytes(blob[8:8 + length]))
        header["__metadata__"] = {**header.get("__metadata__", {}), CHECKSUM_KEY: hashlib.sha256(data).hexdigest()}
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # safetensors pads the header with spaces to 8 bytes
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(Path(path), write)


def read_header(path: str | os.PathLike) -> dict[str, dict]:
    """The tensor table of a safetensors file, validated without reading any tensor data."""
    return _read_header(path)[0]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The file's ``__metadata__`` strings (archspec's trainer stores classes, normalisation and spec there)."""
    return _read_header(path)[1]


def json_depth_within(raw: bytes | str, limit: int) -> bool:
    """Whether JSON text nests arrays and objects at most ``limit`` deep, found without parsing it
    (Python's parser recurses once per level: 100,000 ``[`` would exhaust the stack)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):  # each pass removes at least the innermost level
        if not brackets:
            return True
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):  # unbalanced: not JSON, and not worth parsing
            return False
        brackets = shorter
    return not brackets


def parse_json(raw: bytes | str, depth: int = MAX_JSON_DEPTH):
    """JSON from a file, refused (ValueError) when nested more than ``depth`` levels."""
    if not json_depth_within(raw, depth):
        raise ValueError(f"nested more than {depth} levels")
    return json.loads(raw)


def _read_header(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, dict], dict[str, str]]:
    """Every check of a safetensors file's layout, and of its checksum when archspec wrote one."""
    path = Path(path)
    where = Location(str(path))
    with open_regular(path, what="weights") as f:
        try:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            if len(prefix) < 8:
                raise ArchspecError("not a safetensors file (too short)", where)
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise LimitError(f"not a safetensors file (header of {length:,} bytes)", where)
            raw = f.read(length)
            header, metadata = _parse_header(raw, size - 8 - length, where)
            if verify and CHECKSUM_KEY in metadata:
                digest = hashlib.sha256()
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
                if digest.hexdigest() != metadata[CHECKSUM_KEY]:
                    raise ArchspecError("corrupt weights: the data does not match the checksum archspec wrote "
                                        "with it (the file was damaged or edited)", where)
        except OSError as exc:
            raise ArchspecError(f"cannot read weights: {exc.strerror}", where) from None
    return header, metadata


def _parse_header(raw: bytes, data_bytes: int, where: Location) -> tuple[dict[str, dict], dict[str, str]]:
    try:
        header = parse_json(raw)
    except (UnicodeDecodeError, ValueError):
        raise ArchspecError("not a safetensors file (its header is not JSON, or is nested too deeply)", where) from None
    if not isinstance(header, dict):
        raise ArchspecError("not a safetensors file (bad header)", where)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArchspecError("not a safetensors file (its metadata is not a table of strings)", where)
    spans = []
    for name, entry in header.items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and entry["dtype"] in DTYPE_SIZES
              and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"]))
        if ok:
            begin, end = entry["data_offsets"]
            in_bounds = 0 <= begin <= end <= data_bytes
            ok = in_bounds and end - begin == math.prod(entry["shape"]) * DTYPE_SIZES[entry["dtype"]]
        if not ok:
            raise ArchspecError(f"corrupt safetensors entry '{name}' (shape, dtype or offsets do not add up)", where)
        spans.append((entry["data_offsets"][0], entry["data_offsets"][1], name))
    # the tensors must tile the data section: no gap, no overlap, nothing after the last one
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            what = "overlaps the one before it" if begin < position else "leaves a gap before it"
            raise ArchspecError(f"corrupt safetensors file: tensor '{name}' {what}", where)
        position = end
    if position != data_bytes:
        raise ArchspecError(f"corrupt safetensors file: {data_bytes - position:,} bytes after the last tensor", where)
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
    wrong_kind = []
    for name, tensor in expected.items():
        if name not in header:
            report.missing.append(name)
        elif _kind(header[name]["dtype"]) != _kind(str(tensor.dtype)):
            wrong_kind.append(f"{name}: file has {header[name]['dtype']}, model has {str(tensor.dtype)[6:]}")
        elif list(tensor.shape) != header[name]["shape"]:
            file_shape = "×".join(map(str, header[name]["shape"])) or "scalar"
            model_shape = "×".join(map(str, tensor.shape)) or "scalar"
            report.mismatched.append(f"{name}: file has {file_shape}, model has {model_shape}")
        else:
            report.loaded.append(name)
    report.unexpected = [name for name in header if name not in expected]
    where = Location(str(path))
    if wrong_kind:  # an integer tensor read as floats (or back) is garbage, whatever its shape
        raise SpecError([Problem(f"tensor of another kind: {m}", where) for m in wrong_kind])
    if strict and (report.missing or report.unexpected or report.mismatched):
        problems = ([Problem(f"missing from the file: {n}", where) for n in report.missing]
                    + [Problem(f"not in the model: {n}", where) for n in report.unexpected]
                    + [Problem(f"shape differs: {m}", where) for m in report.mismatched])
        raise SpecError(problems)
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for name in report.loaded:
            state[name] = f.get_tensor(name)
    not_finite = [name for name, value in state.items()
                  if value.is_floating_point() and not torch.isfinite(value).all()]
    if not_finite:
        raise SpecError([Problem(f"tensor {name} holds NaN or infinite values: these weights are unusable "
                                 "(was the run diverging when they were saved?)", where) for name in not_finite])
    with torch.no_grad():
        for name, value in state.items():
            expected[name].copy_(value.to(expected[name].dtype))
    return report


def _kind(dtype: str) -> str:
    """float, int or bool, for a safetensors dtype ("F32") or a torch one ("torch.float32")."""
    dtype = dtype.lower().replace("torch.", "")
    if dtype.startswith(("f", "bf")):
        return "float"
    return "bool" if dtype.startswith("bool") else "int"


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
    name: str | None = None  # the spec's name when it was trained
    data: str | None = None
    split: tuple[float, float, float] | None = None
    seed: int | None = None

    def check_fits(self, graph) -> None:
        """Refuse weights whose recorded spec, input, classes or normalisation cannot serve ``graph``."""
        where = Location(str(self.path))
        if self.name is not None and graph.name and self.name != graph.name:
            raise ArchspecError(f"these weights were trained for the spec '{self.name}' "
                                f"({self.spec or 'path unknown'}), not for '{graph.name}' ({graph.file})", where)
        shape = tuple(graph.input_shape)
        if self.input is not None and tuple(self.input) != shape:
            raise ArchspecError(f"these weights were trained on input {list(self.input)}; the spec's input is "
                                f"{list(shape)}", where)
        channels = shape[0] if shape else None
        for label, values in (("archspec.mean", self.mean), ("archspec.std", self.std)):
            if values is not None and channels is not None and len(values) != channels:
                raise ArchspecError(f"the metadata entry {label} has {len(values)} values for an input of "
                                    f"{channels} channels", where)
        out = graph.shape_of(graph.output)
        if self.classes is not None and len(out) == 1 and len(self.classes) != out[0]:
            raise ArchspecError(f"the metadata entry archspec.classes names {len(self.classes)} classes; the spec's "
                                f"output has {out[0]}", where)


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
        value = parse_json(metadata[key])
    except ValueError:  # JSONDecodeError is one
        value = None
    if value is None or not check(value):
        raise ArchspecError(f"the metadata entry {key} is malformed: {metadata[key][:60]!r}", where)
    return value


def _numbers(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value))


def _split(value) -> bool:
    return (_numbers(value) and len(value) == 3 and all(0 <= v <= 1 for v in value)
            and abs(sum(value) - 1) < 1e-6)


def read_info(source: str | os.PathLike) -> WeightsInfo:
    """The weights file behind ``source`` and its archspec metadata; the header is validated first."""
    path = resolve_weights(source)
    metadata = read_metadata(path)
    where = Location(str(path))
    classes = _json_metadata(metadata, "archspec.classes", where,
                             lambda v: isinstance(v, list) and all(isinstance(c, (str, int)) for c in v)
                             and len(set(map(str, v))) == len(v))
    mean = _json_metadata(metadata, "archspec.mean", where, _numbers)
    std = _json_metadata(metadata, "archspec.std", where, lambda v: _numbers(v) and all(s > 0 for s in v))
    shape = _json_metadata(metadata, "archspec.input", where,
                           lambda v: isinstance(v, list) and all(isinstance(d, int) and d > 0 for d in v))
    params = _json_metadata(metadata, "archspec.params", where, lambda v: isinstance(v, dict)) or {}
    split = _json_metadata(metadata, "archspec.split", where, _split)
    seed = _json_metadata(metadata, "archspec.seed", where,
                          lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0)
    if mean is not None and std is not None and len(mean) != len(std):
        raise ArchspecError(f"the metadata entries archspec.mean and archspec.std differ in length "
                            f"({len(mean)} and {len(std)})", where)
    spec = metadata.get("archspec.spec") or None
    return WeightsInfo(path, [str(c) for c in classes] if classes else None, mean, std,
                       tuple(shape) if shape else None, spec, params, metadata.get("archspec.name") or None,
                       metadata.get("archspec.data") or None, tuple(split) if split else None, seed)
