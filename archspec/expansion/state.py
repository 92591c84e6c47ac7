"""What one expansion shares between its units: the nodes and shapes so far, the problems found,
the limits, and the helpers every unit uses (report a problem, evaluate a $ expression)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .. import expr
from ..errors import Collector, Location, Problem
from ..graph import Group, Node
from ..layers import did_you_mean, fmt_shape
from ..loader import Document, PathKey
from ..spec import Spec
from .scope import FAILED

MAX_NODES = 100_000
MAX_REPEAT = 10_000
MAX_DIM = 1 << 24  # 16M along one axis
MAX_SAMPLE_ELEMENTS = 1 << 34  # 16G elements in one sample's tensor
MAX_LAYER_PARAMS = 1 << 36
MAX_ITEMS = 2 * MAX_NODES  # items expanded, counting those that fail and so add no node
MAX_NESTING = 100  # blocks, repeats, branches and residuals inside each other


class TooBig(Exception):
    """The spec expands past MAX_NODES or MAX_ITEMS: expansion stops at once."""


@dataclass
class Expansion:
    spec: Spec
    overrides: dict[str, Any]
    problems: Collector = field(default_factory=Collector)
    warnings: list[Problem] = field(default_factory=list)  # valid but likely not meant (severity "warning")
    nodes: list[Node] = field(default_factory=list)
    shapes: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    spec_params: dict[str, Any] = field(default_factory=dict)  # what blocks see besides their own parameters
    item_count: int = 0  # items expanded so far, against MAX_ITEMS
    # (namespace id, name) -> (namespace, file, key path, where)
    name_sites: dict[tuple, tuple] = field(default_factory=dict)
    depth: int = 0  # bodies being expanded inside each other, against MAX_NESTING
    # the units, wired by archspec.expand
    items: Any = None
    primitives: Any = None
    blocks: Any = None
    structures: Any = None

    def error(self, message: str, where: Location, node: str = "") -> None:
        self.problems.add(message, where, node)

    def evaluate(self, value: Any, params: dict, document: Document, key_path: PathKey, node: str = "",
                 template: bool = False) -> Any:
        """Evaluate ``$`` expressions anywhere inside a value; FAILED if one cannot be. With
        ``template``, a string of ``${...}`` parts amid text is rendered (names: "block${k}-${i}")."""
        if isinstance(value, str) and expr.is_expression(value):
            try:
                if template and expr.is_template(value):
                    return expr.render(value, params)
                return expr.evaluate(value, params)
            except expr.ExpressionError as exc:
                message = f"{exc} in {value!r}"
                if str(exc).startswith("undefined name"):
                    name = str(exc).split("'")[1]
                    message += did_you_mean(name, params) + (f"; defined here: {', '.join(sorted(params))}" if params
                                                             else "; no parameters are defined here")
                self.error(message, document.locate(key_path), node)
                return FAILED
        if isinstance(value, list):
            elements = [self.evaluate(v, params, document, key_path + (i,), node) for i, v in enumerate(value)]
            return FAILED if any(v is FAILED for v in elements) else elements
        if isinstance(value, dict):
            entries = {k: self.evaluate(v, params, document, key_path + (k,), node) for k, v in value.items()}
            return FAILED if any(v is FAILED for v in entries.values()) else entries
        return value

    def check_size(self, shape: tuple[int, ...], where: Location, path: str) -> bool:
        if any(d <= 0 for d in shape):
            self.error(f"output size {fmt_shape(shape)} has a zero or negative dimension", where, path)
            return False
        if any(d > MAX_DIM for d in shape) or math.prod(shape) > MAX_SAMPLE_ELEMENTS:
            self.error(f"tensor of {fmt_shape(shape)} per sample is absurdly large; archspec refuses it",
                       where, path)
            return False
        return True

    def parse_init(self, value: Any, document: Document, key_path: PathKey):
        from .. import init

        try:
            return init.parse(value)
        except ValueError as exc:
            self.error(str(exc), document.locate(key_path))
            return None
