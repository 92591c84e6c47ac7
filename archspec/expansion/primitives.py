"""Primitive layers: arguments coerced by the catalogue, inputs counted, the output shape inferred
and checked against the limits; a chunk gives one node per part."""
from __future__ import annotations

from typing import Any

from ..graph import Node
from ..layers import ShapeError, lookup
from ..loader import PathKey
from ..vocabulary import PART_SEPARATOR, args_not_mapping
from .scope import FAILED, Parts, Scope
from .state import MAX_LAYER_PARAMS, Expansion


class Primitives:
    def __init__(self, ex: Expansion):
        self.ex = ex

    def expand_layer(self, kind: str, raw: Any, scope: Scope, kp: PathKey, path: str,
                     inputs: list[Any], trainable: bool) -> Any:
        layer = lookup(kind)
        doc = scope.document
        where = doc.locate(kp)
        args_kp = kp + (kind,)
        if raw is not None and not isinstance(raw, dict):
            self.ex.error(args_not_mapping(kind, raw), doc.locate(args_kp), path)
            return FAILED
        args = self.ex.evaluate(raw or {}, scope.params, doc, args_kp, path)
        if args is FAILED:
            return FAILED
        coerced, problems = layer.coerce_args(args)
        for key, message in problems:
            # unknown keys are pointed at the key, wrong values at the value (as the schema pass does)
            at = doc.locate(args_kp + (key,), key=key not in layer.args) if key else doc.locate(args_kp)
            self.ex.error(message, at, path)
        if problems:
            return FAILED
        if not layer.min_inputs <= len(inputs) <= layer.max_inputs:
            wanted = (str(layer.min_inputs) if layer.min_inputs == layer.max_inputs
                      else f"at least {layer.min_inputs}")
            self.ex.error(f"{layer.name} takes {wanted} input{'s' if layer.min_inputs > 1 else ''}, "
                          f"found {len(inputs)}" + (": name them with from: [a, b]" if layer.min_inputs > 1 else ""),
                          where, path)
            return FAILED
        if any(i is FAILED for i in inputs):
            return FAILED
        in_shapes = [self.ex.shapes[i] for i in inputs]
        if any(s is None for s in in_shapes):
            shape = None
        else:
            try:
                layer.check_inputs(in_shapes)
                shape = layer.output_shape(coerced, in_shapes)
            except ShapeError as exc:
                self.ex.error(str(exc), where, path)
                shape = None
            if shape is not None and not self.ex.check_size(shape, where, path):
                shape = None
            if shape is not None and layer.param_count(coerced, in_shapes, shape).total > MAX_LAYER_PARAMS:
                self.ex.error("absurdly many parameters in one layer; archspec refuses it", where, path)
                shape = None
        parts = layer.outputs(coerced)
        if parts > 1 and shape is not None:  # one node per part, each at path.k, read with from: name.k
            paths = tuple(f"{path}{PART_SEPARATOR}{k}" for k in range(parts))
            for k, part in enumerate(paths):
                self.ex.shapes[part] = shape
                if shape is not None:
                    self.ex.nodes.append(Node(part, layer.name, {**coerced, "part": k}, list(inputs), shape, where,
                                           trainable, scope.init))
            return Parts(path.rsplit(".", 1)[-1], paths)
        self.ex.shapes[path] = shape
        if shape is None:
            return path  # known to have failed; later layers skip their shape checks
        self.ex.nodes.append(Node(path, layer.name, coerced, list(inputs), shape, where, trainable, scope.init))
        return path
