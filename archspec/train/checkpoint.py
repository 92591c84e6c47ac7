"""Training state on disk without pickle: tensors in safetensors, everything else as JSON metadata.

A checkpoint is one file, so one atomic rename makes it whole or leaves the previous one: the
tensors (model, optimizer moments, random-generator states) are safetensors entries, and the
nested plain data around them (optimizer hyper-parameters, step counts, history) is a JSON tree
in the file's metadata, in which each tensor stands as ``{"$tensor": "entry name"}``.

A checkpoint read back is checked twice before anything uses it: the tree against the grammar
above (``_unflatten``), then the trainer's state against its schema and against the model it is
for (``check_training_state``), so a damaged or foreign file is one message, never a traceback
from deep inside torch.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..errors import ArchspecError, Location
from ..weights import CHECKSUM_KEY, _read_header, parse_json, write_safetensors

STATE_KEY = "archspec.state"
FORMAT = "archspec-checkpoint-1"
SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class CorruptCheckpoint(ArchspecError):
    """A checkpoint whose contents do not make a training state archspec wrote."""


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
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {prefix}")


def _unflatten(value: Any, tensors: dict, where: Location) -> Any:
    """The tree back, each node checked against the grammar ``_flatten`` writes."""
    def bad(what: str) -> CorruptCheckpoint:
        return CorruptCheckpoint(f"corrupt checkpoint: {what}", where)

    if isinstance(value, dict):
        if set(value) == {"$tensor"}:
            name = value["$tensor"]
            if not isinstance(name, str) or name not in tensors:
                raise bad(f"tensor {name!r} is missing")
            return tensors[name]
        if set(value) == {"$dict"}:
            pairs = value["$dict"]
            if not isinstance(pairs, list) or not all(
                    isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int)) and not isinstance(p[0], bool)
                    for p in pairs):
                raise bad("a $dict entry is not a list of [key, value] pairs")
            return {k: _unflatten(v, tensors, where) for k, v in pairs}
        if set(value) <= {"$list", "tuple"} and "$list" in value:
            if not isinstance(value["$list"], list) or not isinstance(value.get("tuple", False), bool):
                raise bad("a $list entry is not a list")
            items = [_unflatten(v, tensors, where) for v in value["$list"]]
            return tuple(items) if value.get("tuple") else items
        if set(value) == {"$float"}:
            if not isinstance(value["$float"], str) or value["$float"] not in SPECIAL_FLOATS:
                raise bad(f"unknown special number {value['$float']!r}")
            return SPECIAL_FLOATS[value["$float"]]
        raise bad("unknown entry in its state")
    if isinstance(value, list):
        raise bad("a bare list in its state")
    return value


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts, lists, tensors and scalars) to one safetensors file, atomically."""
    import json

    tensors: dict[str, Any] = {}
    tree = _flatten(state, "s", tensors)
    metadata = {"format": "pt", "writer": "archspec", "archspec.format": FORMAT, STATE_KEY: json.dumps(tree)}
    write_safetensors(path, tensors, metadata)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The state saved by ``save_checkpoint``; the header, layout and checksum are validated first."""
    from safetensors.torch import load_file

    where = Location(str(path))
    header, metadata = _read_header(path)  # regular file, layout, checksum
    if metadata.get("archspec.format") != FORMAT or STATE_KEY not in metadata:
        raise CorruptCheckpoint("not an archspec training checkpoint", where)
    if CHECKSUM_KEY not in metadata:
        raise CorruptCheckpoint("corrupt checkpoint: it carries no checksum", where)
    try:
        tree = parse_json(metadata[STATE_KEY])
    except ValueError:
        raise CorruptCheckpoint("corrupt checkpoint: its state is not JSON (or is nested too deeply)", where) from None
    return _unflatten(tree, load_file(str(path)), where)


# ------------------------------------------------------------------ the trainer's state


def check_training_state(state: Any, model, optimizer, where: Location) -> None:
    """Refuse a state that ``Trainer.load_state`` could not take whole: every key, type and shape,
    checked against the model and optimizer it is for, before any of them is touched."""
    import torch

    def bad(what: str) -> CorruptCheckpoint:
        return CorruptCheckpoint(f"corrupt checkpoint: {what}", where)

    def count(key: str) -> int:
        value = state.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"'{key}' is {value!r}, not a count of 0 or more")
        return value

    if not isinstance(state, dict):
        raise bad("its state is not a table")
    missing = [k for k in ("epoch", "step", "model", "optimizer", "rng", "history", "best", "bad_epochs", "trainable")
               if k not in state]
    if missing:
        raise bad(f"its state lacks {', '.join(missing)}")
    epoch, _, _ = count("epoch"), count("step"), count("bad_epochs")

    weights = state["model"]
    expected = model.state_dict()
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise bad("'model' is not a table of tensors")
    if set(weights) != set(expected):
        extra, lacking = sorted(set(weights) - set(expected)), sorted(set(expected) - set(weights))
        differences = ([f"lacks {', '.join(lacking[:5])}"] if lacking else []) + (
            [f"has {', '.join(extra[:5])}"] if extra else [])
        raise CorruptCheckpoint("this checkpoint is for another model: " + "; ".join(differences), where)
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise CorruptCheckpoint(f"this checkpoint is for another model: {name} is "
                                    f"{list(tensor.shape)} {tensor.dtype}, the model's is "
                                    f"{list(expected[name].shape)} {expected[name].dtype}", where)
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise bad(f"the weights {name} hold NaN or infinite values")

    _check_optimizer(state["optimizer"], optimizer, bad)

    rng = state["rng"]
    generators = ("cpu", "shuffle", "augment")
    if not isinstance(rng, dict) or not all(isinstance(rng.get(k), torch.Tensor) for k in generators):
        raise bad("'rng' lacks a generator state")
    for key in ("cpu", "shuffle"):
        if rng[key].dtype != torch.uint8 or rng[key].shape != torch.get_rng_state().shape:
            raise bad(f"the random generator state '{key}' is not one torch accepts")
    if "cuda" in rng and (not isinstance(rng["cuda"], torch.Tensor) or rng["cuda"].dtype != torch.uint8):
        raise bad("the random generator state 'cuda' is not one torch accepts")

    history = state["history"]
    if not isinstance(history, list) or len(history) != epoch or not all(
            isinstance(row, dict) and row.get("epoch") == i for i, row in enumerate(history, 1)):
        raise bad(f"its history is not one row per completed epoch (it says {epoch} completed)")
    best = state["best"]
    if best is not None and not (isinstance(best, (list, tuple)) and len(best) == 2
                                 and isinstance(best[0], (int, float)) and isinstance(best[1], int)
                                 and 0 <= best[1] <= epoch):
        raise bad("'best' is not a pair (score, epoch)")
    names = {n for n, _ in model.named_parameters()}
    trainable = state["trainable"]
    if not isinstance(trainable, list) or not all(isinstance(n, str) and n in names for n in trainable):
        raise bad("'trainable' names parameters this model does not have")
    scaler = state.get("scaler")
    if scaler is not None and not isinstance(scaler, dict):
        raise bad("'scaler' is not a table")


def _check_optimizer(saved: Any, optimizer, bad) -> None:
    import torch

    own = optimizer.state_dict()
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or not isinstance(
            saved.get("param_groups"), list):
        raise bad("'optimizer' is not an optimizer state")
    groups = saved["param_groups"]
    if len(groups) != len(own["param_groups"]) or not all(
            isinstance(g, dict) and g.get("params") == o["params"] and set(g) == set(o)
            for g, o in zip(groups, own["param_groups"])):
        raise bad("its optimizer state is for other parameters or another optimizer")
    shapes = {i: p.shape for i, p in enumerate(p for group in optimizer.param_groups for p in group["params"])}
    for index, entry in saved["state"].items():
        if index not in shapes or not isinstance(entry, dict):
            raise bad(f"its optimizer state names parameter {index!r}, which the model does not have")
        for key, value in entry.items():
            if not isinstance(value, torch.Tensor) and not isinstance(value, (int, float)):
                raise bad(f"its optimizer state {index}.{key} is not a number or tensor")
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != shapes[index]:
                raise bad(f"its optimizer state {index}.{key} is {list(value.shape)}; the parameter is "
                          f"{list(shapes[index])}")
