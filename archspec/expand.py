"""Stage 2: Spec -> Graph. Blocks, repeats, parallel branches and residuals are unrolled into
primitive nodes, each keeping its dotted path and the place in the YAML it came from.

Shapes are inferred while unrolling, because the spec language depends on them: a residual's
projection shortcut exists only where the main path changes the shape. Every problem found is
collected (one per source location), so a user sees all of them at once.

Each part of the language is one small unit in ``archspec.expansion`` (scope, items, primitive
layers, blocks, structures); this module reads the top of a spec (params, input, layers, freeze)
and runs them.
"""
from __future__ import annotations

from typing import Any

from .errors import ArchspecError, SpecError, UsageError, file_order, warning
from .expansion.blocks import Blocks
from .expansion.items import Items
from .expansion.primitives import Primitives
from .expansion.scope import FAILED, Parts, Scope
from .expansion.state import MAX_NODES, Expansion, TooBig
from .expansion.structures import Structures
from .graph import INPUT, Graph
from .layers import did_you_mean
from .layers.base import _found
from .loader import Document
from .spec import Spec, load
from .vocabulary import INPUT_MESSAGE


def parse_overrides(pairs: list[str] | dict | None) -> dict[str, Any]:
    """``["classes=10", "width=0.5"]`` -> ``{"classes": 10, "width": 0.5}`` (YAML scalars)."""
    import yaml

    if pairs is None:
        return {}
    if isinstance(pairs, dict):
        return dict(pairs)
    result = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set expects name=value, found {pair!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, (dict, list)):
            raise UsageError(f"--set {name}: expected a number, string or boolean, found {text!r}")
        result[name.strip()] = value
    return result


def expand(spec: Spec | str, params: dict[str, Any] | None = None) -> Graph:
    """Unroll a loaded spec into a Graph of primitive nodes with shapes; raises SpecError.

    Warnings (a valid spec likely not meant as written) are the graph's ``warnings``; when the spec
    also has errors, they are among the SpecError's problems, in file order.
    """
    expander = _SpecExpander(load(spec), params or {})
    try:
        return expander.run()
    except SpecError as exc:
        if not expander.ex.warnings:
            raise
        raise SpecError(sorted(exc.problems + expander.ex.warnings, key=file_order)) from None


def channels_last_guess(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The (C, H, W) an input written as Keras' (H, W, C) likely meant: [32, 32, 3] -> (3, 32, 32).

    Only where the last size is an image's channel count (grey, RGB, RGBA) and the others are image
    sizes, so that channels-first shapes such as [64, 8, 8] or [3, 224, 224] never match.
    """
    if len(shape) == 3 and shape[2] in (1, 3, 4) and min(shape[:2]) >= 8:
        return (shape[2], shape[0], shape[1])
    return None


class _SpecExpander:
    """The top of a spec: its parameters and overrides, its input, its layers, its freeze list."""

    def __init__(self, spec: Spec, overrides: dict[str, Any]):
        self.ex = ex = Expansion(spec, overrides)
        ex.items, ex.primitives, ex.blocks, ex.structures = Items(ex), Primitives(ex), Blocks(ex), Structures(ex)

    def run(self) -> Graph:
        data = self.ex.spec.data
        document = self.ex.spec.document
        if not isinstance(document.data, dict):
            raise ArchspecError("a spec is a YAML mapping with at least 'input' and 'layers'",
                                document.locate(()))
        if "layers" not in data and "blocks" in data:
            raise ArchspecError("this file defines blocks but no 'layers': it is a block library, checked "
                                "through a spec that imports it", document.locate(()))
        params = self.resolve_params(data.get("params") or {}, document)
        self.ex.spec_params = params  # what blocks see besides their own parameters
        input_shape = self.resolve_input(data.get("input"), params, document)
        top = Scope("", params, INPUT, document)
        if "init" in data:
            top.init = self.ex.parse_init(data["init"], document, ("init",))
        self.ex.shapes[INPUT] = input_shape
        layers = data.get("layers")
        output = None
        if not isinstance(layers, list) or not layers:
            self.ex.error("'layers' must be a non-empty list of layers", document.locate(("layers",)))
        else:
            try:
                output = self.ex.items.expand_items(layers, top, ("layers",), INPUT)
            except TooBig:
                self.ex.problems.add(
                    f"the spec expands to more than {MAX_NODES:,} layers; archspec refuses it",
                    document.locate(("layers",)))
            if isinstance(output, Parts):
                self.ex.error(f"the last item ('{output.local}') gives {len(output.paths)} parts; a spec's output "
                              "is one tensor: add an item reading one of them, or a merge of them",
                              document.locate(("layers", len(layers) - 1)))
        self.apply_freeze(data.get("freeze"), document)
        self.ex.problems.raise_if_any()
        assert isinstance(output, str)
        return Graph(
            name=self.ex.spec.name,
            input_shape=input_shape,
            nodes=self.ex.nodes,
            output=output,
            groups=self.ex.groups,
            params=params,
            doc=str(data.get("doc") or ""),
            source=str(data.get("source") or ""),
            metadata=dict(data["metadata"]) if isinstance(data.get("metadata"), dict) else {},
            file=self.ex.spec.file,
            warnings=list(self.ex.warnings),
        )

    def apply_freeze(self, patterns: Any, document: Document) -> None:
        """``freeze: [conv1, "layer1.*"]``: nodes whose path matches (or lies under a match) are frozen."""
        import fnmatch

        if patterns is None:
            return
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list):
            return  # the schema pass reports the type
        for i, pattern in enumerate(patterns):
            if not isinstance(pattern, str):
                continue
            hits = [n for n in self.ex.nodes if fnmatch.fnmatchcase(n.path, pattern)
                    or fnmatch.fnmatchcase(n.path, pattern + ".*")]
            if not hits:
                self.ex.error(f"freeze: '{pattern}' matches no layer" + did_you_mean(pattern, self.ex.groups or
                              [n.path for n in self.ex.nodes]), document.locate(("freeze", i)))
            for node in hits:
                node.trainable = False

    def resolve_params(self, declared: Any, document: Document) -> dict[str, Any]:
        if not isinstance(declared, dict):
            declared = {}
        unknown = set(self.ex.overrides) - set(declared)
        if unknown:
            name = sorted(unknown)[0]
            raise UsageError(
                f"--set {name}: the spec has no parameter '{name}'" + did_you_mean(name, declared)
                + (f"; its parameters are {', '.join(declared)}" if declared else "; it declares none"))
        params: dict[str, Any] = {}
        for name, value in declared.items():
            if name in self.ex.overrides:
                value = self.ex.overrides[name]
                default = declared[name]
                if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                        isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise UsageError(f"--set {name}: expected a number like the default {default!r}, found {value!r}")
            else:
                value = self.ex.evaluate(value, params, document, ("params", name))
            params[name] = value
        return params

    def resolve_input(self, raw: Any, params: dict, document: Document) -> tuple[int, ...]:
        where = document.locate(("input",))
        value = self.ex.evaluate(raw, params, document, ("input",))
        if value is FAILED:
            self.ex.problems.raise_if_any()
        if not isinstance(value, list) or not value or len(value) > 4 or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in value):
            raise ArchspecError(f"{INPUT_MESSAGE}; found {_found(raw)}", where)
        for i, d in enumerate(value):  # where the schema pass cannot see it: a $ expression
            if d <= 0:
                self.ex.error(f"input: expected an integer >= 1, found {d}", document.locate(("input", i)))
        self.ex.problems.raise_if_any()
        shape = tuple(value)
        self.ex.check_size(shape, where, INPUT)
        self.ex.problems.raise_if_any()
        meant = channels_last_guess(shape)
        if meant:
            self.ex.warnings.append(warning(
                f"input {list(shape)} is read as {shape[0]} channels of {shape[1]}×{shape[2]} (the order is C, H, W, "
                f"as in PyTorch, not Keras' H, W, C); did you mean {list(meant)}?", where))
        return shape
