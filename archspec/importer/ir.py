"""What every source reader produces: a flat list of catalogue layers with the source's names.

A reader (PyTorch, Keras, ONNX) turns its model into a ``SourceModel``: layers in execution
order, each with its dotted source path (``layer1.0.conv1``, ``conv2d_1``), its catalogue type,
its arguments as a spec would write them, its inputs, and its tensors under torch's names
(``weight``, ``bias``, ``running_mean``, ...). The structure finder reads only this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, Problem, SpecError

INPUT = "input"  # the value every model reads first


@dataclass
class SourceLayer:
    path: str  # dotted source path; tensors are saved under "<path>.<tensor name>"
    type: str  # catalogue type name
    args: dict[str, Any]  # arguments as written in a spec (plain values, lists for pairs)
    inputs: list[str]  # paths of the layers it reads, or INPUT
    tensors: dict[str, Any] = field(default_factory=dict)  # numpy arrays, torch's names
    fixed_name: bool = False  # the name must be kept (it names tensors); else it is a preference
    keep_name: bool = True  # False for layers the reader made up (a Keras layer's own activation)

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path.rsplit(".", 1)[0] if "." in self.path else ""


@dataclass
class SourceModel:
    name: str
    input_shape: tuple[int, ...]  # C, H, W (or features)
    layers: list[SourceLayer]
    output: str
    source: str  # where it came from, for the spec's `source:`
    doc: str = ""
    kinds: dict[str, str] = field(default_factory=dict)  # namespace path -> the source's class name


@dataclass
class Unsupported:
    """One thing of the source with no catalogue entry: what it is, and where it is used."""

    where: str  # module path or node name
    what: str


def refuse(source: str, missing: list[Unsupported]) -> None:
    """Raise one located problem per unsupported layer, all at once."""
    if missing:
        raise SpecError([Problem(m.what, Location(source), node=m.where) for m in missing])


def pair(value) -> Any:
    """(3, 3) -> 3, (3, 5) -> [3, 5]: a pair as a person writes it."""
    if isinstance(value, (tuple, list)):
        value = [int(v) for v in value]
        return value[0] if len(set(value)) == 1 else value
    return int(value)
