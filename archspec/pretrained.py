"""Published weights as a starting point: a torch state_dict checked against a spec, saved as safetensors.

torchvision publishes its ImageNet weights as ``.pth`` files of a plain state_dict. They are
read with ``torch.load(weights_only=True)``, which unpickles tensors and containers only and
refuses anything else, and mapped from disk rather than read into memory where the file's
format allows. Every name and shape is compared with the spec's compiled module (built on the
meta device, so nothing is allocated), every problem is reported at once, and only a file that
matches exactly is written, as safetensors, which ``archspec train --init`` and
``load_weights`` read without pickle.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchspecError, Location, Problem, SpecError, UsageError
from .files import atomic_write

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
# where training scripts commonly nest the state_dict inside a checkpoint dictionary
NESTED_KEYS = ("state_dict", "model", "model_state_dict", "module")


@dataclass
class ConvertReport:
    """What ``convert`` wrote: the tensors, and those the ``drop`` patterns left out."""

    path: Path
    tensors: int = 0
    values: int = 0  # elements over all tensors
    dropped: list[str] = field(default_factory=list)
    nested: str | None = None  # the checkpoint key the state_dict was found under, if any


def _shape(shape) -> str:
    return "×".join(str(d) for d in shape) or "scalar"


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, Any], str | None]:
    """The tensors of a torch checkpoint (.pth, .pt, .bin, .ckpt) or a safetensors file.

    Returns the name -> tensor mapping and, where the state_dict sat inside a checkpoint
    dictionary, the key it was found under. Never unpickles anything but tensors.
    """
    path = Path(path)
    where = Location(str(path))
    if not path.is_file():
        raise UsageError("no such weights file", where)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        from .weights import read_header

        read_header(path)  # validated before any tensor is read
        return load_file(str(path)), None
    if path.suffix.lower() not in TORCH_SUFFIXES:
        raise UsageError(f"unknown weights format '{path.suffix}': expected a torch state_dict "
                         f"({', '.join(TORCH_SUFFIXES)}) or .safetensors", where)
    loaded = _torch_load(path, where)
    return _tensors_of(loaded, where)


def _torch_load(path: Path, where: Location) -> Any:
    import torch

    try:
        # mapped, not read: a large file costs no memory until its tensors are used
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise ArchspecError(f"not a torch checkpoint, or a damaged one ({_first_line(exc)})", where) from None
    except Exception as exc:  # the weights-only unpickler's refusal (pickle's UnpicklingError), or a damaged file
        raise ArchspecError(_refused(exc), where) from None
    try:  # the legacy (non-zip) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ArchspecError(_refused(exc), where) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _refused(exc: BaseException) -> str:
    """torch's weights-only unpickler names what it refused on its own line; say that, not its advice."""
    lines = [line.strip() for line in str(exc).splitlines()]
    said = next((line.split("error:", 1)[1].strip() for line in lines if line.startswith("WeightsUnpickler error:")),
                _first_line(exc))
    if "Unsupported global" not in said:
        return f"not a torch checkpoint, or a damaged one ({said[:200]})"
    what = said.split(" was not an allowed global")[0].replace("Unsupported global: GLOBAL ", "")
    return ("refused: the file holds Python objects besides tensors, and archspec unpickles tensors only "
            f"(torch.load with weights_only=True found {what}); save the model's state_dict() instead")


def _tensors_of(loaded: Any, where: Location) -> tuple[dict[str, Any], str | None]:
    import torch

    if not isinstance(loaded, dict):
        raise ArchspecError(f"expected a state_dict (a mapping of names to tensors), found a {type(loaded).__name__}",
                            where)
    nested = None
    if loaded and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        inner = [k for k in NESTED_KEYS if isinstance(loaded.get(k), dict)]
        if not inner:
            others = sorted(str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor))[:5]
            raise ArchspecError("expected a state_dict (a mapping of names to tensors); these entries are not "
                                f"tensors: {', '.join(others)}", where)
        nested = inner[0]
        loaded = loaded[nested]
    problems = [Problem(f"{nested + '.' if nested else ''}{k}: not a tensor", where)
                for k, v in loaded.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if problems:
        raise SpecError(problems)
    return dict(loaded), nested


def expected_state(spec, **params: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    """name -> (shape, dtype) of the spec's state_dict, from a module built on the meta device."""
    import torch

    from .compiler import compile_graph
    from .expand import expand

    with torch.device("meta"):
        module = compile_graph(expand(spec, params))
    return {name: (tuple(t.shape), t.dtype) for name, t in module.state_dict().items()}


def check_state(state: dict[str, Any], expected: dict[str, tuple[tuple[int, ...], Any]],
                where: Location) -> list[Problem]:
    """Every difference between a state_dict and the spec's: missing and extra names, other shapes."""
    problems = [Problem(f"missing from the file: {name} ({_shape(shape)})", where)
                for name, (shape, _) in expected.items() if name not in state]
    problems += [Problem(f"not in the spec: {name} ({_shape(state[name].shape)})", where)
                 for name in state if name not in expected]
    for name, (shape, dtype) in expected.items():
        if name in state:
            tensor = state[name]
            if tuple(tensor.shape) != shape:
                problems.append(Problem(f"shape differs: {name}: file has {_shape(tensor.shape)}, "
                                        f"spec has {_shape(shape)}", where))
            elif tensor.dtype.is_floating_point != dtype.is_floating_point:
                problems.append(Problem(f"type differs: {name}: file has {str(tensor.dtype).replace('torch.', '')}, "
                                        f"spec has {str(dtype).replace('torch.', '')}", where))
    return problems


def convert(source: str | os.PathLike, out: str | os.PathLike, spec, drop: list[str] | tuple[str, ...] = (),
            **params: Any) -> ConvertReport:
    """Check a torch state_dict (or safetensors file) against ``spec`` and write it as safetensors.

    ``drop``: name patterns (``*`` wildcards, as in ``AuxLogits.*``) of tensors the spec does
    not have and that are left out on purpose, such as the auxiliary classifiers of
    torchvision's Inception weights. Anything else that differs is an error, all listed at
    once, and nothing is written. ``params`` override the spec's parameters.
    """
    import torch
    from safetensors.torch import save_file

    source, out = Path(source), Path(out)
    if out.suffix.lower() != ".safetensors":
        raise UsageError("the output must be a .safetensors file", Location(str(out)))
    if out.resolve() == source.resolve():
        raise UsageError("the output would overwrite the input", Location(str(out)))
    where = Location(str(source))
    expected = expected_state(spec, **params)
    state, nested = read_state_dict(source)
    dropped = [name for name in state if any(fnmatch.fnmatchcase(name, p) for p in drop)]
    unused = [p for p in drop if not any(fnmatch.fnmatchcase(name, p) for name in state)]
    problems = [Problem(f"--drop {p!r} matches no tensor of the file", where) for p in unused]
    for name in dropped:
        del state[name]
    problems += check_state(state, expected, where)
    if problems:
        raise SpecError(problems)
    tensors = {}
    for name, (_, dtype) in expected.items():
        # own, contiguous storage: safetensors refuses tensors that share memory
        tensors[name] = state[name].to(dtype=dtype if dtype.is_floating_point else state[name].dtype,
                                       copy=True).contiguous()
    metadata = {"format": "pt", "writer": "archspec", "archspec.source": source.name}
    spec_name = _spec_name(spec)
    if spec_name:
        metadata["archspec.spec"] = spec_name
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    with torch.no_grad():
        values = sum(t.numel() for t in tensors.values())
    return ConvertReport(out, len(tensors), values, dropped, nested)


def _spec_name(spec) -> str | None:
    if isinstance(spec, (str, os.PathLike)):
        return Path(spec).name
    return getattr(spec, "name", None)
