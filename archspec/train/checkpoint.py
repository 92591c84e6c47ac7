"""Training state on disk without pickle: tensors in safetensors, everything else as JSON metadata.

A checkpoint is one file, so one atomic rename makes it whole or leaves the previous one: the
tensors (model, optimizer moments, random-generator states) are safetensors entries, and the
nested plain data around them (optimizer hyper-parameters, step counts, history) is a JSON tree
in the file's metadata, in which each tensor stands as ``{"$tensor": "entry name"}``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ArchspecError, Location
from ..files import atomic_write
from ..weights import read_metadata

STATE_KEY = "archspec.state"
FORMAT = "archspec-checkpoint-1"


def _flatten(value: Any, prefix: str, tensors: dict) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous()
        return {"$tensor": prefix}
    if isinstance(value, dict):
        # JSON keys are strings: remember integer keys (optimizer state is keyed by parameter index)
        return {"$dict": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"$list": [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:
            return {"$float": "nan"}
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {prefix}")


def _unflatten(value: Any, tensors: dict, where: Location) -> Any:
    if isinstance(value, dict):
        if "$tensor" in value:
            name = value["$tensor"]
            if name not in tensors:
                raise ArchspecError(f"corrupt checkpoint: tensor '{name}' is missing", where)
            return tensors[name]
        if "$dict" in value:
            return {k: _unflatten(v, tensors, where) for k, v in value["$dict"]}
        if "$list" in value:
            items = [_unflatten(v, tensors, where) for v in value["$list"]]
            return tuple(items) if value.get("tuple") else items
        if "$float" in value:
            return float(value["$float"])
        raise ArchspecError("corrupt checkpoint: unknown entry in its state", where)
    return value


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts, lists, tensors and scalars) to one safetensors file, atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    tree = _flatten(state, "s", tensors)
    metadata = {"format": "pt", "writer": "archspec", "archspec.format": FORMAT, STATE_KEY: json.dumps(tree)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state saved by ``save_checkpoint``; the header is validated before any tensor is read."""
    from safetensors.torch import load_file

    where = Location(str(path))
    metadata = read_metadata(path)  # validates the header, sizes and offsets first
    if metadata.get("archspec.format") != FORMAT or STATE_KEY not in metadata:
        raise ArchspecError("not an archspec training checkpoint", where)
    try:
        tree = json.loads(metadata[STATE_KEY])
    except json.JSONDecodeError:
        raise ArchspecError("corrupt checkpoint: its state is not JSON", where) from None
    return _unflatten(tree, load_file(str(path)), where)
