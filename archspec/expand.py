"""Stage 2: Spec -> Graph. Blocks, repeats, parallel branches and residuals are unrolled into
primitive nodes, each keeping its dotted path and the place in the YAML it came from.

Shapes are inferred while unrolling, because the spec language depends on them: a residual's
projection shortcut exists only where the main path changes the shape. Every problem found is
collected (one per source location), so a user sees all of them at once.
"""
from __future__ import annotations

import keyword
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import expr
from .errors import ArchspecError, Collector, Location, UsageError
from .graph import INPUT, Graph, Group, Node
from .layers import ShapeError, did_you_mean, fmt_shape, lookup
from .layers.base import _found
from .loader import Document, PathKey
from .spec import Spec, load
from .vocabulary import (DEFAULT_MERGE, INPUT_MESSAGE, ITEM_MESSAGE, ITEM_NAME_MESSAGE, ITEM_NAME_RE, ITEM_OPTIONS,
                         NAME_RE, NO_SHORTCUT, PARAM_TYPES, PART_SEPARATOR, RESIDUAL_MERGE, SHORTCUT_MESSAGE, STRUCTURES,
                         args_not_mapping, merges, unknown_kind_hint)

MAX_NODES = 100_000
MAX_REPEAT = 10_000
MAX_DIM = 1 << 24  # 16M along one axis
MAX_SAMPLE_ELEMENTS = 1 << 34  # 16G elements in one sample's tensor
MAX_LAYER_PARAMS = 1 << 36
MAX_ITEMS = 2 * MAX_NODES  # items expanded, counting those that fail and so add no node
MAX_NESTING = 100  # blocks, repeats, branches and residuals inside each other

FAILED = object()  # stands for the output of an item that could not be expanded


@dataclass(frozen=True)
class Parts:
    """The outputs of an item that gives several tensors (a chunk): read one with from: name.0."""

    local: str  # the item's name in its namespace
    paths: tuple[str, ...]


class _TooBig(Exception):
    pass


@dataclass
class Scope:
    prefix: str  # dotted path of this namespace ("" at the top)
    params: dict[str, Any]
    input: str  # node path this namespace reads as "input"
    document: Document
    parent: "Scope | None" = None  # lexical parent for from: lookups (branches, repeat copies)
    names: dict[str, Any] = field(default_factory=dict)  # local name -> node path (or FAILED)
    counters: Counter = field(default_factory=Counter)
    calls: tuple[str, ...] = ()  # block call stack, to refuse recursion
    trainable: bool = True
    init: tuple | None = None  # the weight initialisation inherited by nodes inside
    removed: set = field(default_factory=set)  # names of items an if: removed, for from: messages

    def join(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def transparent(self, input: str, params: dict, trainable: bool) -> "Scope":
        """The same namespace (shared names and counters) with another input and parameters."""
        return Scope(self.prefix, params, input, self.document, self.parent, self.names, self.counters,
                     self.calls, trainable, self.init, self.removed)

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            if name == INPUT:
                return scope.input
            scope = scope.parent
        return None

    def was_removed(self, name: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.removed:
                return True
            scope = scope.parent
        return False

    def child(self, prefix: str, input: str, params: dict | None = None, lexical: bool = True,
              document: Document | None = None, calls: tuple[str, ...] | None = None,
              trainable: bool | None = None) -> "Scope":
        return Scope(prefix, self.params if params is None else params, input,
                     document or self.document, self if lexical else None,
                     calls=self.calls if calls is None else calls,
                     trainable=self.trainable if trainable is None else trainable, init=self.init)


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
    """Unroll a loaded spec into a Graph of primitive nodes with shapes; raises SpecError."""
    return _Expander(load(spec), params or {}).run()


class _Expander:
    def __init__(self, spec: Spec, overrides: dict[str, Any]):
        self.spec = spec
        self.overrides = overrides
        self.problems = Collector()
        self.nodes: list[Node] = []
        self.shapes: dict[str, Any] = {}
        self.groups: dict[str, Group] = {}
        self.spec_params: dict[str, Any] = {}
        self.items = 0  # items expanded so far, against MAX_ITEMS
        self.name_sites: dict[tuple, tuple] = {}  # (namespace id, name) -> (namespace, file, key path, where)
        self.depth = 0  # bodies being expanded inside each other, against MAX_NESTING

    # ------------------------------------------------------------ helpers

    def error(self, message: str, where: Location, node: str = "") -> None:
        self.problems.add(message, where, node)

    def evaluate(self, value: Any, params: dict, document: Document, key_path: PathKey, node: str = "") -> Any:
        """Evaluate ``$`` expressions anywhere inside a value; FAILED if one cannot be."""
        if isinstance(value, str) and expr.is_expression(value):
            try:
                return expr.evaluate(value, params)
            except expr.ExpressionError as exc:
                message = f"{exc} in {value!r}"
                if str(exc).startswith("undefined name"):
                    name = str(exc).split("'")[1]
                    message += did_you_mean(name, params) + (
                        f"; defined here: {', '.join(sorted(params))}" if params else "; no parameters are defined here")
                self.error(message, document.locate(key_path), node)
                return FAILED
        if isinstance(value, list):
            items = [self.evaluate(v, params, document, key_path + (i,), node) for i, v in enumerate(value)]
            return FAILED if any(v is FAILED for v in items) else items
        if isinstance(value, dict):
            items = {k: self.evaluate(v, params, document, key_path + (k,), node) for k, v in value.items()}
            return FAILED if any(v is FAILED for v in items.values()) else items
        return value

    # ------------------------------------------------------------ top level

    def run(self) -> Graph:
        data = self.spec.data
        document = self.spec.document
        if not isinstance(document.data, dict):
            raise ArchspecError("a spec is a YAML mapping with at least 'input' and 'layers'",
                                document.locate(()))
        if "layers" not in data and "blocks" in data:
            raise ArchspecError("this file defines blocks but no 'layers': it is a block library, checked "
                                "through a spec that imports it", document.locate(()))
        params = self.resolve_params(data.get("params") or {}, document)
        self.spec_params = params  # what blocks see besides their own parameters
        input_shape = self.resolve_input(data.get("input"), params, document)
        top = Scope("", params, INPUT, document)
        if "init" in data:
            top.init = self.parse_init(data["init"], document, ("init",))
        self.shapes[INPUT] = input_shape
        layers = data.get("layers")
        output = None
        if not isinstance(layers, list) or not layers:
            self.error("'layers' must be a non-empty list of layers", document.locate(("layers",)))
        else:
            try:
                output = self.expand_items(layers, top, ("layers",), INPUT)
            except _TooBig:
                self.problems.add(
                    f"the spec expands to more than {MAX_NODES:,} layers; archspec refuses it",
                    document.locate(("layers",)))
        if isinstance(output, Parts):
            self.error(f"the last item ('{output.local}') gives {len(output.paths)} parts; a spec's output is "
                       "one tensor: add an item reading one of them, or a merge of them",
                       document.locate(("layers", len(layers) - 1)))
        self.apply_freeze(data.get("freeze"), document)
        self.problems.raise_if_any()
        assert isinstance(output, str)
        return Graph(
            name=self.spec.name,
            input_shape=input_shape,
            nodes=self.nodes,
            output=output,
            groups=self.groups,
            params=params,
            doc=str(data.get("doc") or ""),
            source=str(data.get("source") or ""),
            metadata=dict(data.get("metadata") or {}),
            file=self.spec.file,
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
            hits = [n for n in self.nodes if fnmatch.fnmatchcase(n.path, pattern)
                    or fnmatch.fnmatchcase(n.path, pattern + ".*")]
            if not hits:
                self.error(f"freeze: '{pattern}' matches no layer" + did_you_mean(pattern, self.groups or
                           [n.path for n in self.nodes]), document.locate(("freeze", i)))
            for node in hits:
                node.trainable = False

    def resolve_params(self, declared: Any, document: Document) -> dict[str, Any]:
        if not isinstance(declared, dict):
            declared = {}
        unknown = set(self.overrides) - set(declared)
        if unknown:
            name = sorted(unknown)[0]
            raise UsageError(
                f"--set {name}: the spec has no parameter '{name}'" + did_you_mean(name, declared)
                + (f"; its parameters are {', '.join(declared)}" if declared else "; it declares none"))
        params: dict[str, Any] = {}
        for name, value in declared.items():
            if name in self.overrides:
                value = self.overrides[name]
                default = declared[name]
                if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                        isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise UsageError(f"--set {name}: expected a number like the default {default!r}, found {value!r}")
            else:
                value = self.evaluate(value, params, document, ("params", name))
            params[name] = value
        return params

    def resolve_input(self, raw: Any, params: dict, document: Document) -> tuple[int, ...]:
        where = document.locate(("input",))
        value = self.evaluate(raw, params, document, ("input",))
        if value is FAILED:
            self.problems.raise_if_any()
        if not isinstance(value, list) or not value or len(value) > 4 or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in value):
            raise ArchspecError(f"{INPUT_MESSAGE}; found {_found(raw)}", where)
        for i, d in enumerate(value):  # where the schema pass cannot see it: a $ expression
            if d <= 0:
                self.error(f"input: expected an integer >= 1, found {d}", document.locate(("input", i)))
        self.problems.raise_if_any()
        shape = tuple(value)
        self.check_size(shape, where, INPUT)
        self.problems.raise_if_any()
        return shape

    def check_size(self, shape: tuple[int, ...], where: Location, path: str) -> bool:
        if any(d <= 0 for d in shape):
            self.error(f"output size {fmt_shape(shape)} has a zero or negative dimension", where, path)
            return False
        if any(d > MAX_DIM for d in shape) or math.prod(shape) > MAX_SAMPLE_ELEMENTS:
            self.error(f"tensor of {fmt_shape(shape)} per sample is absurdly large; archspec refuses it",
                       where, path)
            return False
        return True

    # ------------------------------------------------------------ bodies and items

    def expand_items(self, items: list, scope: Scope, key_path: PathKey, start: Any,
                     collapse_into: str | None = None) -> Any:
        """Expand a list of items in one namespace; returns the last item's output path.

        ``collapse_into``: a namespace holding a single item gives it the namespace's own path
        (a block whose body is one repeat *is* that repeat), so paths stay short.
        """
        if self.depth >= MAX_NESTING:
            self.error(f"blocks, repeats, branches and residuals nest more than {MAX_NESTING} deep here; "
                       "archspec refuses it", scope.document.locate(key_path), scope.prefix)
            return FAILED
        self.depth += 1
        try:
            current = start
            for index, item in enumerate(items):
                path = collapse_into if (collapse_into is not None and len(items) == 1) else None
                current = self.expand_item(item, scope, key_path + (index,), current, path)
            return current
        finally:
            self.depth -= 1

    def expand_item(self, item: Any, scope: Scope, kp: PathKey, current: Any, path: str | None) -> Any:
        doc = scope.document
        where = doc.locate(kp)
        if isinstance(item, str):
            kind, raw, options = item, None, {}
        elif isinstance(item, dict):
            kinds = [k for k in item if k not in ITEM_OPTIONS]
            structural = [k for k in kinds if k in STRUCTURES]
            if structural:
                kind = structural[0]
                extra = [k for k in kinds if k != kind and k not in STRUCTURES[kind]]
            else:
                kind = kinds[0] if kinds else None
                extra = kinds[1:]
            if kind is None:
                self.error("item names no layer type or block", where)
                return FAILED
            if extra:
                allowed = sorted(set(ITEM_OPTIONS) | set(STRUCTURES.get(kind, ())))
                for key in extra:
                    self.error(f"unexpected key '{key}' beside '{kind}'" + did_you_mean(key, allowed)
                               + f"; an item has one layer or block key plus {', '.join(allowed)}",
                               doc.locate(kp + (key,), key=True))
                return FAILED
            raw, options = item.get(kind), {k: item[k] for k in item if k in ITEM_OPTIONS}
        else:
            self.error(f"{ITEM_MESSAGE}, found {_found(item)}", where)
            return FAILED
        if not isinstance(kind, str):
            self.error("a layer type must be a name", where)
            return FAILED
        self.items += 1
        if len(self.nodes) > MAX_NODES or self.items > MAX_ITEMS:
            raise _TooBig()
        if "if" in options:
            keep = self.condition(options, scope, kp)
            if keep is not True:
                return FAILED if keep is FAILED else current  # removed: as if it were not written

        local = self.local_name(kind, options, scope, kp)
        if local is None:
            return FAILED
        full = path if path is not None else scope.join(local)
        inputs = self.resolve_from(options.get("from"), scope, kp, current, full)
        trainable = options.get("trainable", scope.trainable)
        if not isinstance(trainable, bool):
            self.error("trainable: expected true or false", doc.locate(kp + ("trainable",)))
            trainable = True
        if "init" in options:
            scheme = self.parse_init(options["init"], doc, kp + ("init",))
            if scheme is None:
                return FAILED
            scope = scope.transparent(scope.input, scope.params, scope.trainable)
            scope.init = scheme

        if kind == "repeat" and "name" not in options and path is None:
            out = self.expand_repeat(item, scope, kp, None, inputs, trainable, local)
        elif kind in STRUCTURES:
            out = getattr(self, "expand_" + kind)(item, scope, kp, full, inputs, trainable, local)
        elif lookup(kind) is not None:
            out = self.expand_layer(kind, raw, scope, kp, full, inputs, trainable)
        elif kind in self.spec.blocks:
            out = self.expand_call(kind, raw, scope, kp, full, inputs, trainable)
        else:
            self.error(f"unknown layer type or block '{kind}'" + unknown_kind_hint(kind, self.spec.blocks),
                       doc.locate(kp + (kind,), key=True) if isinstance(item, dict) else where)
            out = FAILED
        scope.names[local] = out
        if isinstance(out, Parts):
            for k, part in enumerate(out.paths):
                scope.names[f"{local}{PART_SEPARATOR}{k}"] = part
        return out

    def condition(self, options: dict, scope: Scope, kp: PathKey) -> Any:
        """An item's ``if:``: True keeps it, False removes it (its name is remembered), FAILED."""
        doc = scope.document
        keep = self.evaluate(options["if"], scope.params, doc, kp + ("if",))
        if keep is FAILED:
            return FAILED
        if not isinstance(keep, bool):
            self.error(f"if: expected true or false (or an expression giving one, like ${{se > 0}}), "
                       f"found {_found(keep)}", doc.locate(kp + ("if",)))
            return FAILED
        name = options.get("name")
        if not keep and isinstance(name, (str, int)) and not isinstance(name, bool):
            scope.removed.add(str(name))
        return keep

    def local_name(self, kind: str, options: dict, scope: Scope, kp: PathKey) -> str | None:
        doc = scope.document
        if "name" in options:
            name = self.evaluate(options["name"], scope.params, doc, kp + ("name",))
            where = doc.locate(kp + ("name",))
            if name is FAILED:
                return None
            if isinstance(name, int) and not isinstance(name, bool) and name >= 0:
                name = str(name)  # name: 0, as torchvision's Sequential children
            if not isinstance(name, str) or not ITEM_NAME_RE.match(name) or keyword.iskeyword(name):
                self.error(f"name {name!r} {ITEM_NAME_MESSAGE}", where)
                return None
            if name == INPUT:
                self.error("'input' is reserved for the input of a block or spec", where)
                return None
            first = self.name_sites.get((id(scope.names), name))
            if first is not None and first[0] is not scope.names:
                first = None  # a namespace since freed, whose id was reused
            if name in scope.names and first is not None and first[1:3] == (doc.file, kp):
                self.error(f"name '{name}' is used twice in the same block (inside an unnamed repeat, "
                           "every copy shares one namespace: name the repeat)", where)
                return None
            if name in scope.names:
                at = first[3] if first else "earlier"
                self.error(f"name '{name}' is used twice in the same namespace (first at {at}); names are "
                           "unique within a spec, a block, a branch or a copy of a named repeat", where)
                return None
            self.name_sites[(id(scope.names), name)] = (scope.names, doc.file, kp, where)
            return name
        layer = lookup(kind)
        stem = layer.stem if layer else (RESIDUAL_MERGE if kind == "residual" else kind)
        sep = "_" if stem[-1:].isdigit() else ""  # block conv3 -> conv3_1, conv3_2 (stem '' for a key '')
        while True:  # conv1, conv2, ...: explicit names already taken are skipped
            scope.counters[stem] += 1
            candidate = f"{stem}{sep}{scope.counters[stem]}"
            if candidate not in scope.names:
                return candidate

    def resolve_from(self, raw: Any, scope: Scope, kp: PathKey, current: Any, path: str = "") -> list[Any]:
        if raw is None:
            if isinstance(current, Parts):
                self.error(f"the item before this one ('{current.local}') gives {len(current.paths)} parts: "
                           f"say which this item reads, e.g. from: {current.local}{PART_SEPARATOR}0",
                           scope.document.locate(kp), path)
                return [FAILED]
            return [current]
        names = raw if isinstance(raw, list) else [raw]
        result = []
        for i, name in enumerate(names):
            where = scope.document.locate(kp + ("from",) + ((i,) if isinstance(raw, list) else ()))
            if isinstance(name, int) and not isinstance(name, bool):
                name = str(name)  # from: 0, a numeric name
            if not isinstance(name, str):
                self.error(f"from: expected a node name, found {name!r}", where, path)
                result.append(FAILED)
                continue
            target = scope.lookup(name)
            if isinstance(target, Parts):
                self.error(f"from: '{name}' gives {len(target.paths)} parts; read one of them: "
                           + ", ".join(f"{name}{PART_SEPARATOR}{k}" for k in range(len(target.paths))), where, path)
                result.append(FAILED)
            elif target is None and scope.was_removed(name):
                self.error(f"from: '{name}' is removed here (its if: is false)", where, path)
                result.append(FAILED)
            elif target is None:
                visible = self.visible_names(scope)
                self.error(f"from: undefined name '{name}'" + did_you_mean(name, visible)
                           + (" (inputs must come from earlier items, so graphs cannot have cycles)"
                              if name in self.later_names(scope, kp) else ""), where, path)
                result.append(FAILED)
            else:
                result.append(target)
        return result

    def visible_names(self, scope: Scope) -> list[str]:
        names, s = [INPUT], scope
        while s is not None:
            names.extend(s.names)
            s = s.parent
        return names

    def later_names(self, scope: Scope, kp: PathKey) -> set[str]:
        """Names written after item ``kp`` in the same list (a forward reference)."""
        doc_items = scope.document.data
        try:
            for key in kp[:-1]:
                doc_items = doc_items[key]
        except (KeyError, IndexError, TypeError):
            return set()
        later = doc_items[kp[-1]:] if isinstance(doc_items, list) else []
        return {i.get("name") for i in later if isinstance(i, dict) and isinstance(i.get("name"), str)}

    # ------------------------------------------------------------ primitive layers

    def expand_layer(self, kind: str, raw: Any, scope: Scope, kp: PathKey, path: str,
                     inputs: list[Any], trainable: bool) -> Any:
        layer = lookup(kind)
        doc = scope.document
        where = doc.locate(kp)
        args_kp = kp + (kind,)
        if raw is not None and not isinstance(raw, dict):
            self.error(args_not_mapping(kind, raw), doc.locate(args_kp), path)
            return FAILED
        args = self.evaluate(raw or {}, scope.params, doc, args_kp, path)
        if args is FAILED:
            return FAILED
        coerced, problems = layer.coerce_args(args)
        for key, message in problems:
            # unknown keys are pointed at the key, wrong values at the value (as the schema pass does)
            at = doc.locate(args_kp + (key,), key=key not in layer.args) if key else doc.locate(args_kp)
            self.error(message, at, path)
        if problems:
            return FAILED
        if not layer.min_inputs <= len(inputs) <= layer.max_inputs:
            wanted = (str(layer.min_inputs) if layer.min_inputs == layer.max_inputs
                      else f"at least {layer.min_inputs}")
            self.error(f"{layer.name} takes {wanted} input{'s' if layer.min_inputs > 1 else ''}, "
                       f"found {len(inputs)}" + (": name them with from: [a, b]" if layer.min_inputs > 1 else ""),
                       where, path)
            return FAILED
        if any(i is FAILED for i in inputs):
            return FAILED
        in_shapes = [self.shapes[i] for i in inputs]
        if any(s is None for s in in_shapes):
            shape = None
        else:
            try:
                layer.check_inputs(in_shapes)
                shape = layer.output_shape(coerced, in_shapes)
            except ShapeError as exc:
                self.error(str(exc), where, path)
                shape = None
            if shape is not None and not self.check_size(shape, where, path):
                shape = None
            if shape is not None and layer.param_count(coerced, in_shapes, shape).total > MAX_LAYER_PARAMS:
                self.error("absurdly many parameters in one layer; archspec refuses it", where, path)
                shape = None
        parts = layer.outputs(coerced)
        if parts > 1 and shape is not None:  # one node per part, each at path.k, read with from: name.k
            paths = tuple(f"{path}{PART_SEPARATOR}{k}" for k in range(parts))
            for k, part in enumerate(paths):
                self.shapes[part] = shape
                if shape is not None:
                    self.nodes.append(Node(part, layer.name, {**coerced, "part": k}, list(inputs), shape, where,
                                           trainable, scope.init))
            return Parts(path.rsplit(".", 1)[-1], paths)
        self.shapes[path] = shape
        if shape is None:
            return path  # known to have failed; later layers skip their shape checks
        self.nodes.append(Node(path, layer.name, coerced, list(inputs), shape, where, trainable, scope.init))
        return path

    def parse_init(self, value: Any, document: Document, key_path: PathKey):
        from . import init

        try:
            return init.parse(value)
        except ValueError as exc:
            self.error(str(exc), document.locate(key_path))
            return None

    # ------------------------------------------------------------ blocks

    def expand_call(self, name: str, raw: Any, scope: Scope, kp: PathKey, path: str,
                    inputs: list[Any], trainable: bool) -> Any:
        block = self.spec.blocks[name]
        doc = scope.document
        where = doc.locate(kp)
        if name in scope.calls:
            chain = " -> ".join((*scope.calls[scope.calls.index(name):], name))
            self.error(f"block '{name}' calls itself ({chain})", where, path)
            return FAILED
        definition = block.definition if isinstance(block.definition, dict) else {}
        declared = definition.get("params") or {}
        if not isinstance(declared, dict):
            declared = {}
        if raw is not None and not isinstance(raw, dict):
            self.error(f"{name}: expected a mapping of block parameters, found {raw!r}", doc.locate(kp + (name,)), path)
            return FAILED
        call_args = self.evaluate(raw or {}, scope.params, doc, kp + (name,), path)
        if call_args is FAILED:
            return FAILED
        bound = self.bind_params(name, declared, call_args, block, doc, kp + (name,), where, path)
        if bound is None:
            return FAILED
        if len(inputs) != 1:
            self.error(f"block '{name}' takes 1 input, found {len(inputs)}", where, path)
            return FAILED
        if inputs[0] is FAILED:
            return FAILED
        body = definition.get("body")
        body_kp = block.key_path + ("body",)
        if not isinstance(body, list) or not body:
            self.error(f"block '{name}' has no body (a list of layers)", block.location, path)
            return FAILED
        inner = scope.child(path, inputs[0], params={**self.spec_params, **bound}, lexical=False,
                            document=block.document, calls=scope.calls + (name,), trainable=trainable)
        self.groups[path] = Group(path, "block", name, where)
        return self.expand_items(body, inner, body_kp, inputs[0], collapse_into=path)

    def bind_params(self, name, declared, call_args, block, doc, args_kp, where, path) -> dict | None:
        bound, ok = {}, True
        for key in call_args:
            if key not in declared:
                self.error(f"block '{name}' has no parameter '{key}'" + did_you_mean(key, declared)
                           + (f"; it takes {', '.join(declared)}" if declared else "; it takes none"),
                           doc.locate(args_kp + (key,), key=True), path)
                ok = False
        for key, decl in declared.items():
            type_name, default, required = _param_decl(decl)
            if key in call_args:
                value = call_args[key]
            elif not required:
                value = self.evaluate(default, {**self.spec_params, **bound}, block.document,
                                      block.key_path + ("params", key), path)
                if value is FAILED:
                    ok = False
                    continue
            else:
                self.error(f"block '{name}' needs parameter '{key}' ({type_name})", where, path)
                ok = False
                continue
            allowed = PARAM_TYPES.get(type_name, (object,))
            if type_name in ("int", "float", "number") and isinstance(value, bool) or not isinstance(value, allowed):
                self.error(f"block '{name}' parameter '{key}': expected {type_name}, found {value!r}",
                           doc.locate(args_kp + (key,)) if key in call_args else where, path)
                ok = False
                continue
            bound[key] = value
        return bound if ok else None

    # ------------------------------------------------------------ structures

    def expand_repeat(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        times = self.evaluate(item.get("repeat"), scope.params, doc, kp + ("repeat",), path)
        if times is FAILED:
            return FAILED
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            self.error(f"repeat: expected a count >= 0, found {times!r}", doc.locate(kp + ("repeat",)), path)
            return FAILED
        if times > MAX_REPEAT:
            self.error(f"repeat: {times:,} copies is more than the {MAX_REPEAT:,} archspec allows",
                       doc.locate(kp + ("repeat",)), path)
            return FAILED
        body = item.get("body")
        if not isinstance(body, list) or not body:
            self.error("repeat needs a body: a list of layers to repeat", doc.locate(kp), path)
            return FAILED
        index = item.get("index", "i")
        if not isinstance(index, str) or not NAME_RE.match(index):
            self.error(f"repeat index must be a name, found {index!r}", doc.locate(kp + ("index",)), path)
            return FAILED
        if len(inputs) != 1:
            self.error(f"repeat takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        current = inputs[0]
        if path is None:
            # An unnamed repeat is as if its body were written out `times` times in place.
            for k in range(times):
                if current is FAILED:
                    return FAILED
                inner = scope.transparent(current, {**scope.params, index: k}, trainable)
                current = self.expand_items(body, inner, kp + ("body",), current)
            return current
        # A named repeat is a namespace of numbered copies, as torchvision's layer1.0, layer1.1.
        # a block whose body is this one repeat keeps its block name as the label
        self.groups.setdefault(path, Group(path, "repeat", f"×{times}", doc.locate(kp)))
        for k in range(times):
            if current is FAILED:
                return FAILED
            copy = f"{path}.{k}"
            inner = scope.child(copy, current, params={**scope.params, index: k}, trainable=trainable)
            self.groups[copy] = Group(copy, "iteration", f"{k + 1} of {times}", doc.locate(kp))
            current = self.expand_items(body, inner, kp + ("body",), current, collapse_into=copy)
        return current

    def expand_parallel(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        branches = item.get("parallel")
        merge = item.get("merge", DEFAULT_MERGE)
        if merge not in merges():
            self.error(f"merge: expected {' or '.join(merges())}, found {merge!r}" + did_you_mean(merge, merges()),
                       doc.locate(kp + ("merge",)), path)
            return FAILED
        if not isinstance(branches, list) or len(branches) < 2:
            self.error("parallel needs a list of at least 2 branches, each a list of layers",
                       doc.locate(kp + ("parallel",)), path)
            return FAILED
        if len(branches) > lookup(merge).max_inputs:
            self.error(f"merge: {merge} takes at most {lookup(merge).max_inputs} branches, found {len(branches)}",
                       doc.locate(kp + ("merge",)), path)
            return FAILED
        if len(inputs) != 1 or inputs[0] is FAILED:
            if len(inputs) != 1:
                self.error(f"parallel takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        self.groups[path] = Group(path, "parallel", merge, doc.locate(kp))
        outputs = []
        for j, branch in enumerate(branches, 1):
            bkp = kp + ("parallel", j - 1)
            name = f"branch{j}"
            body, body_kp = branch, bkp
            if isinstance(branch, dict) and "body" in branch:
                name, body, body_kp = branch.get("name", name), branch["body"], bkp + ("body",)
                if isinstance(name, int) and not isinstance(name, bool) and name >= 0:
                    name = str(name)
                if not isinstance(name, str) or not ITEM_NAME_RE.match(name):
                    self.error(f"branch name {name!r} is not a valid name", doc.locate(bkp + ("name",)), path)
                    return FAILED
            elif isinstance(branch, dict):
                body, body_kp = [branch], None  # a single layer written without a list
            if not isinstance(body, list):
                self.error("each branch must be a list of layers", doc.locate(bkp), path)
                return FAILED
            branch_path = f"{path}.{name}"
            inner = scope.child(branch_path, inputs[0], trainable=trainable)
            if body:
                self.groups[branch_path] = Group(branch_path, "branch", name, doc.locate(bkp))
            if body_kp is None:  # the single layer sits at the branch's own key path
                outputs.append(self.expand_item(body[0], inner, bkp, inputs[0], branch_path))
            else:
                outputs.append(self.expand_items(body, inner, body_kp, inputs[0], collapse_into=branch_path))
        return self.merge_node(merge, f"{path}.{merge}", outputs, scope, kp, trainable)

    def merge_node(self, merge: str, path: str, outputs: list, scope: Scope, kp: PathKey, trainable: bool,
                   explain=None) -> Any:
        if any(o is FAILED for o in outputs):
            return FAILED
        shapes = [self.shapes[o] for o in outputs]
        where = scope.document.locate(kp)
        if any(s is None for s in shapes):
            self.shapes[path] = None
            return path
        layer = lookup(merge)
        args, _ = layer.coerce_args({})
        try:
            shape = layer.output_shape(args, shapes)
        except ShapeError as exc:
            self.error(explain(shapes) if explain else str(exc), where, path)
            self.shapes[path] = None
            return path
        self.shapes[path] = shape
        self.nodes.append(Node(path, layer.name, args, list(outputs), shape, where, trainable))
        return path

    def expand_residual(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        body, shortcut = item.get("residual"), item.get("shortcut")
        if not isinstance(body, list) or not body:
            self.error("residual needs its main path: a list of layers", doc.locate(kp + ("residual",)), path)
            return FAILED
        if shortcut is not None and shortcut != NO_SHORTCUT and (not isinstance(shortcut, list) or not shortcut):
            self.error(f"{SHORTCUT_MESSAGE}, found {_found(shortcut)}",
                       doc.locate(kp + ("shortcut",)), path)
            return FAILED
        if len(inputs) != 1 or inputs[0] is FAILED:
            if len(inputs) != 1:
                self.error(f"residual takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        source = inputs[0]
        # The main path lives in the enclosing namespace, so a ResNet block reads conv1, bn1, ...
        inner = scope.transparent(source, scope.params, trainable)
        main = self.expand_items(body, inner, kp + ("residual",), source)
        if main is FAILED:
            return FAILED
        main_shape, in_shape = self.shapes.get(main), self.shapes.get(source)
        side = source
        if main_shape != in_shape and shortcut == NO_SHORTCUT:
            return main  # the shape changes: no connection, as MobileNetV2's inverted residual
        if main_shape is not None and in_shape is not None and main_shape != in_shape and shortcut:
            name = "downsample"
            k = 1
            while name in scope.names:
                k += 1
                name = f"downsample{k}"
            scope.names[name] = None
            side_path = scope.join(name)
            self.groups[side_path] = Group(side_path, "shortcut", "projection", doc.locate(kp + ("shortcut",)))
            side_scope = scope.child(side_path, source, trainable=trainable)
            side = self.expand_items(shortcut, side_scope, kp + ("shortcut",), source)

        def explain(shapes):
            main_s, side_s = shapes
            hint = _projection_hint(main_s, side_s) if side == source else (
                "the shortcut's projection does not produce the main path's shape")
            return (f"inputs differ in shape: main is {fmt_shape(main_s)}, shortcut is {fmt_shape(side_s)} "
                    f"({hint})")

        return self.merge_node(RESIDUAL_MERGE, path, [main, side], scope, kp, trainable, explain)


def _projection_hint(main, side) -> str:
    if len(main) == 3 and len(side) == 3:
        stride = side[1] // main[1] if main[1] and side[1] % main[1] == 0 else None
        if stride and stride > 1:
            return (f"did you forget a shortcut: a projection with stride {stride}? Or shortcut: {NO_SHORTCUT}, "
                    "for a connection only where the shape is unchanged")
    return (f"did you forget a shortcut: a projection to the main path's shape? Or shortcut: {NO_SHORTCUT}, "
            "for a connection only where the shape is unchanged")


def _param_decl(decl: Any) -> tuple[str, Any, bool]:
    """A block parameter declaration -> (type name, default, required).

    ``c: int`` is a required integer; ``stride: 1`` an integer defaulting to 1;
    ``c: {type: int, default: 64, doc: ...}`` the long form.
    """
    if isinstance(decl, str) and decl in PARAM_TYPES:
        return decl, None, True
    if isinstance(decl, dict) and "type" in decl:
        return str(decl["type"]), decl.get("default"), "default" not in decl
    if isinstance(decl, bool):
        return "bool", decl, False
    if isinstance(decl, int):
        return "int", decl, False
    if isinstance(decl, float):
        return "number", decl, False
    if isinstance(decl, str):
        return "str", decl, False
    return "any", decl, False
