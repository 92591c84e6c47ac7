"""From a flat list of source layers to spec items written as a person would write them.

The source's dotted names say where its namespaces are (``layer2.1.conv1`` sits in ``layer2.1``,
a copy of ``layer2``); the importer keeps them, so the spec's state_dict keys are the
source's. Each namespace becomes one of:

- a named ``repeat`` where its children are numbered copies of one structure (``layer2.0`` ...),
  arguments that differ between copies written as expressions of the index ``i``;
- a call of a **block**: namespaces with the same structure (compared by a Weisfeiler-Lehman
  hash of their local graphs, networkx's, then item by item) share one block, whose ``params``
  are the arguments that differ between them.

Inside a namespace, an ``add`` of a chain and its input (or of a ``downsample`` projection of
it) is written as a ``residual`` with a ``shortcut``; merged branches read from one input as a
``parallel``; runs of identical layers as an unnamed ``repeat``. Everything else is written
with ``from:``. Names a spec would give by itself (``conv1``, ``bn2``) are left out.
"""
from __future__ import annotations

import copy
import json
import keyword
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchspecError, Location, Problem, SpecError
from ..layers import ALIASES, REGISTRY, ShapeError, lookup
from .ir import INPUT, SourceLayer, SourceModel

NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*|[0-9]+)$")
ITEM_OPTIONS = ("name", "from")
STRUCTURES = ("repeat", "residual", "parallel")
PARAM_DEFAULTS = {"stride": 1, "dilation": 1, "groups": 1}  # block params written "stride: 1" when 1 is used


def valid_name(name: str, numeric: bool) -> bool:
    if not NAME_RE.match(name) or keyword.iskeyword(name) or name == INPUT:
        return False
    return numeric or not name.isdigit()


@dataclass
class Namespace:
    path: str
    items: list = field(default_factory=list)  # SourceLayer or Namespace, in execution order
    kind: str = ""  # the source's class name, when it has one

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def layers(self):
        for item in self.items:
            if isinstance(item, Namespace):
                yield from item.layers()
            else:
                yield item

    def has_tensors(self) -> bool:
        return any(layer.tensors for layer in self.layers())


def infer_shapes(model: SourceModel) -> dict[str, tuple]:
    """Every layer's output shape, by the catalogue's rules: the source must be consistent."""
    shapes: dict[str, tuple] = {INPUT: tuple(model.input_shape)}
    problems = []
    for layer in model.layers:
        entry = lookup(layer.type)
        args, errors = entry.coerce_args(layer.args)
        if errors:
            problems += [Problem(message, Location(model.source), layer.path) for _, message in errors]
            continue
        inputs = [shapes.get(i) for i in layer.inputs]
        if any(s is None for s in inputs):
            continue
        try:
            entry.check_inputs(inputs)
            shapes[layer.path] = tuple(entry.output_shape(args, inputs))
        except ShapeError as exc:
            problems.append(Problem(f"{exc} (with input {'×'.join(map(str, model.input_shape))}; "
                                    "give the right one with --input)", Location(model.source), layer.path))
    if problems:
        raise SpecError(problems)
    return shapes


def settle_batchnorm_ranks(model: SourceModel) -> None:
    """Readers write batchnorm2d; one that follows a flat (features,) value is batchnorm1d."""
    shapes = {INPUT: tuple(model.input_shape)}
    for layer in model.layers:
        if layer.type == "batchnorm2d" and len(shapes.get(layer.inputs[0], ())) != 3:
            layer.type = "batchnorm1d"
        entry = lookup(layer.type)
        args, _ = entry.coerce_args(layer.args)
        try:
            shapes[layer.path] = tuple(entry.output_shape(args, [shapes[i] for i in layer.inputs]))
        except (ShapeError, KeyError):
            return  # infer_shapes reports it


def namespace_tree(model: SourceModel, kinds: dict[str, str]) -> Namespace:
    root = Namespace("")
    for layer in model.layers:
        parts = layer.path.split(".")
        current = root
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            last = current.items[-1] if current.items else None
            if not (isinstance(last, Namespace) and last.path == prefix):
                last = Namespace(prefix, kind=kinds.get(prefix, ""))
                current.items.append(last)
            current = last
        current.items.append(layer)
    return root


# ---------------------------------------------------------------- names a spec would give


class Namer:
    """Predicts the spec's automatic names in one namespace (stem + counter, explicit names skipped)."""

    def __init__(self, reserved: set[str], keep: bool, numeric: bool):
        self.counters: Counter = Counter()
        self.taken: set[str] = set()
        self.reserved = reserved  # fixed names written later in this namespace
        self.keep = keep  # keep the source's names of layers without tensors
        self.numeric = numeric

    def _peek(self, stem: str) -> str:
        sep = "_" if stem[-1:].isdigit() else ""
        n = self.counters[stem]
        while True:
            n += 1
            if f"{stem}{sep}{n}" not in self.taken:
                return f"{stem}{sep}{n}"

    def assign(self, stem: str, desired: str | None, fixed: bool) -> tuple[str, str | None]:
        """(the local name, the name to write or None where the spec gives it by itself)."""
        auto = self._peek(stem)
        if desired == auto:
            self._consume(stem)
            return auto, None
        if desired and (fixed or self.keep) and valid_name(desired, self.numeric) and desired not in self.taken:
            self.taken.add(desired)
            return desired, desired
        if auto in self.reserved:  # a later fixed name: give this one another
            k = 2
            while f"{auto}_{k}" in self.reserved or f"{auto}_{k}" in self.taken:
                k += 1
            self.taken.add(f"{auto}_{k}")
            return f"{auto}_{k}", f"{auto}_{k}"
        self._consume(stem)
        return auto, None

    def _consume(self, stem: str) -> None:
        sep = "_" if stem[-1:].isdigit() else ""
        while True:
            self.counters[stem] += 1
            candidate = f"{stem}{sep}{self.counters[stem]}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return


# ---------------------------------------------------------------- local graphs of a namespace


@dataclass
class Local:
    """One item of a namespace before it is written: a layer, a child namespace, or a structure."""

    kind: str  # "layer", "ns", "residual", "parallel"
    inputs: list[int]  # indices of earlier items; -1 is the namespace's input
    source: Any = None  # SourceLayer or Namespace
    name: str | None = None  # desired local name
    fixed: bool = False
    main: list["Local"] = field(default_factory=list)  # residual main path
    shortcut: "Namespace | None" = None
    branches: list["Local"] = field(default_factory=list)
    merge: str = ""


class Writer:
    def __init__(self, model: SourceModel, kinds: dict[str, str], compress: bool, numeric_names: bool):
        self.model = model
        self.kinds = kinds
        self.compress = compress
        self.numeric = numeric_names
        self.shapes = infer_shapes(model)
        self.owner: dict[str, Namespace] = {}  # layer path -> innermost namespace
        self.value_ns: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for layer in model.layers:
            for source in layer.inputs:
                self.consumers[source].append(layer.path)
        self.consumers[model.output].append("<output>")
        self.blocks: dict[str, dict] = {}  # block name -> definition
        self.as_item: dict[str, dict] = {}  # namespace path -> the item calling it (no name)
        self.bodies: dict[str, list] = {}  # namespace path -> its items, written out
        self.problems: list[Problem] = []

    # -- the whole model
    def write(self) -> dict:
        root = namespace_tree(self.model, self.kinds)
        by_height: dict[int, list[Namespace]] = defaultdict(list)
        self._heights(root, by_height)
        for height in sorted(by_height):
            groups: dict[str, list[tuple[Namespace, list]]] = {}
            for ns in by_height[height]:
                if ns.path == "":
                    continue
                self._check_boundary(ns)
                body = self._body(ns, keep=False)
                self.bodies[ns.path] = body
                repeat = self._as_repeat(ns)
                if repeat is not None:
                    self.as_item[ns.path] = repeat
                    continue
                groups.setdefault(self._key(body), []).append((ns, body))
            for instances in groups.values():
                self._make_block(instances)
        if self.problems:
            raise SpecError(self.problems)
        layers = self._body(root, keep=True)
        used = self._used_blocks(layers)
        blocks = {name: {**d, "body": compact_tree(d["body"])} for name, d in self.blocks.items() if name in used}
        return {"blocks": blocks, "layers": compact_tree(layers)}

    def _used_blocks(self, layers: list) -> set[str]:
        used: set[str] = set()
        pending = [layers]
        while pending:
            for kind in _kinds(pending.pop()):
                if kind in self.blocks and kind not in used:
                    used.add(kind)
                    pending.append(self.blocks[kind]["body"])
        return used

    def _heights(self, ns: Namespace, out: dict) -> int:
        """Namespaces by height, children first; a flat projection (``downsample``) does not count, so
        blocks with and without one are compared in the same round and can share one definition."""
        heights = [(c, self._heights(c, out)) for c in ns.items if isinstance(c, Namespace)]
        height = 1 + max((h for c, h in heights if not (c.name.startswith("downsample") and h == 0)), default=-1)
        out[height].append(ns)
        return height

    def _where(self, ns: Namespace) -> str:
        return ns.path

    def _io(self, ns: Namespace) -> tuple[list[str], list[str]]:
        inside = {layer.path for layer in ns.layers()}
        reads, gives = [], []
        for layer in ns.layers():
            for source in layer.inputs:
                if source not in inside and source not in reads:
                    reads.append(source)
            if any(c not in inside for c in self.consumers.get(layer.path, [])):
                gives.append(layer.path)
        return reads, gives

    def _check_boundary(self, ns: Namespace) -> None:
        reads, gives = self._io(ns)
        if len(reads) != 1:
            self.problems.append(Problem(f"reads {len(reads)} values from outside ({', '.join(reads) or 'none'}); "
                                         "a spec's block takes one input", Location(self.model.source), ns.path))
        if len(gives) != 1:
            self.problems.append(Problem(f"gives {len(gives)} values to the layers after it "
                                         f"({', '.join(gives) or 'none'}); a spec's block gives one",
                                         Location(self.model.source), ns.path))

    # -- a namespace's items
    def _locals(self, ns: Namespace) -> list[Local]:
        index_of: dict[str, int] = {}
        locals_: list[Local] = []
        for k, item in enumerate(ns.items):
            if isinstance(item, Namespace):
                reads, gives = self._io(item)
                for layer in item.layers():
                    index_of[layer.path] = k
                sources = reads
                local = Local("ns", [], item, item.name, item.has_tensors())
                local.output = gives[0] if gives else None
            else:
                index_of[item.path] = k
                sources = item.inputs
                local = Local("layer", [], item, item.name if item.keep_name else None, item.fixed_name)
            local.inputs = [index_of.get(s, -1) for s in sources]
            locals_.append(local)
        # a value read from inside a child namespace must be its output
        return locals_

    def _body(self, ns: Namespace, keep: bool) -> list:
        items = self._locals(ns)
        self.input_shape = self.shapes[self._io(ns)[0][0]] if ns.path else tuple(self.model.input_shape)
        if self.compress:
            items = self._find_residuals(items)
            items = self._find_parallel(ns, items)
        return self._write_items(items, keep)

    def _uses(self, items: list[Local]) -> Counter:
        uses = Counter()
        for item in items:
            for i in item.inputs:
                uses[i] += 1
        return uses

    def _find_residuals(self, items: list[Local]) -> list[Local]:
        k = 0
        while k < len(items):
            add = items[k]
            if add.kind == "layer" and add.source.type == "add" and len(add.inputs) == 2:
                found = self._residual_at(items, k)
                if found is not None:
                    items, k = found
            k += 1
        return items

    def _residual_at(self, items: list[Local], k: int):
        uses = self._uses(items)
        for main_end, side in (items[k].inputs, items[k].inputs[::-1]):
            if main_end < 0:
                continue
            projection = (side >= 0 and items[side].kind == "ns" and items[side].name == "downsample"
                          and len(items[side].inputs) == 1)
            start = items[side].inputs[0] if projection else side
            chain, at = [], main_end
            while at > start:
                chain.append(at)
                if len(items[at].inputs) != 1:
                    break
                at = items[at].inputs[0]
            if at != start or not chain:
                continue
            chain.reverse()
            inside = set(chain) | ({side} if projection else set())
            if inside != set(range(start + 1, k)):
                continue
            if any(uses[i] != 1 for i in inside):  # an inner value used elsewhere
                continue
            main_shape = self._shape_of_local(items[main_end])
            in_shape = self._shape_of_local(items[start]) if start >= 0 else self.input_shape
            if projection == (main_shape == in_shape):  # the spec adds a projection only where the shape changes
                continue
            if projection and any(it.name and it.name.startswith("downsample") for it in items[:start + 1]):
                continue
            residual = Local("residual", [start], name=items[k].name, fixed=False,
                             main=[items[i] for i in chain],
                             shortcut=items[side].source if projection else None)
            for position, item in enumerate(residual.main):
                item.inputs = [-2] if position == 0 else [-3]  # reads the residual's input / the previous item
            return self._replace(items, start + 1, k, residual)
        return None

    def _replace(self, items: list[Local], first: int, last: int, new: Local):
        """Items first..last (inclusive) become ``new``; later references are renumbered."""
        removed = last - first

        def renumber(i: int) -> int:
            if i < first:
                return i
            return first if i == last else i - removed

        out = items[:first] + [new] + items[last + 1:]
        for item in out[first + 1:]:
            item.inputs = [renumber(i) for i in item.inputs]
        return out, first

    def _shape_of_local(self, item: Local):
        if item.kind == "layer":
            return self.shapes.get(item.source.path)
        if item.kind == "ns":
            return self.shapes.get(getattr(item, "output", None))
        if item.kind == "residual":
            return self._shape_of_local(item.main[-1])
        return None

    def _find_parallel(self, ns: Namespace, items: list[Local]) -> list[Local]:
        # only a namespace's sole structure keeps the branches' paths: ns.branch, not ns.parallel1.branch
        if len(items) < 3 or ns.path == "":
            return items
        merge = items[-1]
        branches = items[:-1]
        if merge.kind != "layer" or merge.source.type not in ("concat", "add") or merge.source.args.get("axis", 0):
            return items
        if sorted(merge.inputs) != list(range(len(branches))) or merge.inputs != list(range(len(branches))):
            return items
        if any(b.inputs != [-1] or not b.name for b in branches):
            return items
        return [Local("parallel", [-1], branches=branches, merge=merge.source.type)]

    # -- writing items
    def _stem(self, item: Local, written: dict) -> str:
        if item.kind == "layer":
            return lookup(item.source.type).stem
        if item.kind == "residual":
            return "add"
        key = next(k for k in written if k not in ITEM_OPTIONS)
        return key if key not in STRUCTURES else key

    def _write_items(self, items: list[Local], keep: bool) -> list:
        reserved = {it.name for it in items if it.fixed and it.name}
        for it in items:
            if it.kind == "residual":
                reserved |= {m.name for m in it.main if m.fixed and m.name}
        namer = Namer(reserved, keep, self.numeric)
        names: dict[int, str] = {}
        out: list = []
        single = len(items) == 1 and not keep  # a namespace's only item takes the namespace's path

        def ref(i: int, previous: int) -> str | None:
            return None if i == previous else (INPUT if i < 0 else names[i])

        for k, item in enumerate(items):
            written = self._item(item)
            if item.kind == "residual":
                local, write = namer.assign("add", None if not keep else item.name, False)
                if write and not single:
                    written["name"] = write
                names[k] = local
                main = []
                for position, member in enumerate(item.main):
                    inner = self._item(member)
                    m_local, m_write = namer.assign(self._stem(member, inner), member.name, member.fixed)
                    if m_write:
                        inner["name"] = m_write
                    main.append(inner)
                written["residual"] = main
                source = ref(item.inputs[0], k - 1)
                if source:
                    written["from"] = source
                out.append(written)
                continue
            local, write = namer.assign(self._stem(item, written), item.name, item.fixed)
            names[k] = local
            if write and not single:
                written["name"] = write
            sources = [ref(i, k - 1) if len(item.inputs) == 1 else (INPUT if i < 0 else names[i])
                       for i in item.inputs]
            if len(item.inputs) == 1 and sources[0]:
                written["from"] = sources[0]
            elif len(item.inputs) > 1:
                written["from"] = sources
            out.append(written)
        if self.compress:
            chained = self._chains(out)
            out = chained if len(chained) > 1 or len(out) == 1 else out  # a lone repeat would be collapsed
        return out

    def _item(self, item: Local) -> dict:
        if item.kind == "layer":
            return {item.source.type: dict(self._args(item.source))}
        if item.kind == "ns":
            if item.source.path not in self.as_item:
                raise ArchspecError(f"{item.source.path}: a namespace archspec cannot place (used before its "
                                    "structure is known)", Location(self.model.source))
            return copy.deepcopy(self.as_item[item.source.path])
        if item.kind == "residual":
            written: dict = {"residual": []}
            if item.shortcut is not None:
                written["shortcut"] = copy.deepcopy(self.bodies[item.shortcut.path])
            return written
        branches = []
        for j, branch in enumerate(item.branches, 1):
            body = [self._item(branch)]
            branches.append(body if branch.name == f"branch{j}" else {"name": branch.name, "body": body})
        return {"parallel": branches, "merge": item.merge} if item.merge != "concat" else {"parallel": branches}

    def _args(self, layer: SourceLayer) -> dict:
        """Every argument of the catalogue entry, defaults filled in (left out when written)."""
        entry = lookup(layer.type)
        out = {}
        for key, arg in entry.args.items():
            if key in layer.args:
                out[key] = layer.args[key]
            elif not arg.required:
                out[key] = arg.default
        return out

    def _chains(self, items: list) -> list:
        """Runs of identical, automatically named items become an unnamed repeat."""
        out, k = [], 0
        while k < len(items):
            best = (1, 1)  # (copies, length)
            for length in range(1, 5):
                unit = items[k:k + length]
                if len(unit) < length or any(not self._plain(u) for u in unit):
                    break
                copies = 1
                while items[k + copies * length:k + (copies + 1) * length] == unit:
                    copies += 1
                if copies > 1 and copies * length > best[0] * best[1]:
                    best = (copies, length)
            copies, length = best
            if copies > 1:
                out.append({"repeat": copies, "body": list(items[k:k + length])})
                k += copies * length
            else:
                out.append(items[k])
                k += 1
        return out

    @staticmethod
    def _plain(item: dict) -> bool:
        return not any(key in item for key in ("name", "from")) and not any(key in item for key in STRUCTURES)


    # -- numbered copies
    def _as_repeat(self, ns: Namespace) -> dict | None:
        children = ns.items
        if not children or [c.name for c in children] != [str(k) for k in range(len(children))]:
            return None
        # the copies must form a chain
        locals_ = self._locals(ns)
        if any(item.inputs != [k - 1] for k, item in enumerate(locals_)):
            return None
        if all(isinstance(c, Namespace) for c in children):
            calls = [self.as_item.get(c.path) for c in children]
            if any(c is None for c in calls):
                return None
            kinds = {next(iter(c)) for c in calls}
            if len(kinds) != 1 or next(iter(kinds)) in STRUCTURES:
                return None
            kind = kinds.pop()
            declared = self.blocks[kind].get("params", {})
            defaults = {n: d for n, d in declared.items() if not isinstance(d, str)}
            per_copy = [{n: {**defaults, **c[kind]}[n] for n in declared if n in {**defaults, **c[kind]}}
                        for c in calls]
        elif all(isinstance(c, SourceLayer) for c in children):
            kinds = {c.type for c in children}
            if len(kinds) != 1:
                return None
            kind = kinds.pop()
            per_copy = [self._args(c) for c in children]
        else:
            return None
        keys = {tuple(p) for p in per_copy}
        if len(keys) != 1:
            return None
        args, varying = {}, 0
        for key in per_copy[0]:
            expression = _index_expression([p[key] for p in per_copy])
            if expression is None:
                return None
            varying += isinstance(expression, str) and "${" in expression
            if key in defaults and _same(expression, defaults[key]):
                continue
            args[key] = expression
        if varying > 1 and len(children) < 3:
            return None  # two copies differing in several ways read better as two named items
        body = {kind: args}
        return {"repeat": len(children), "body": [body]}

    # -- blocks
    def _key(self, body: list) -> str:
        """The structure of a body, argument values left out (a residual's shortcut too: it is optional)."""
        return json.dumps(_skeleton(body), sort_keys=True)

    def _make_block(self, instances: list[tuple[Namespace, list]]) -> None:
        import networkx as nx

        # Weisfeiler-Lehman hashes of the local graphs split any group networkx tells apart
        by_hash: dict[str, list] = defaultdict(list)
        for ns, body in instances:
            by_hash[nx.weisfeiler_lehman_graph_hash(_local_graph(body), node_attr="label")].append((ns, body))
        for group in by_hash.values():
            self._one_block(group)

    def _one_block(self, group: list[tuple[Namespace, list]]) -> None:
        template = max(group, key=lambda g: len(json.dumps(g[1])))[1]
        slots = _slots(template)
        values = [dict(_slots(body)) for _, body in group]
        params: dict[str, dict] = {}  # name -> declaration
        vectors: list[tuple[str, list]] = []
        substitution: dict[tuple, str] = {}
        for where, _ in slots:
            column = [v.get(where, _MISSING) for v in values]
            present = [c for c in column if c is not _MISSING]
            expression = None
            if len(present) < len(column):  # absent somewhere (an optional shortcut): a param that agrees reads best
                expression = next((f"${n}" for n, vector in vectors
                                   if all(c is _MISSING or _same(c, v) for c, v in zip(column, vector))), None)
            if expression is None and all(_same(c, present[0]) for c in present):
                continue
            for name, vector in vectors if expression is None else ():
                if all(c is _MISSING or _same(c, v) for c, v in zip(column, vector)):
                    expression = f"${name}"
                    break
                factor = _factor(column, vector)
                if factor:
                    expression = f"${{{name} * {factor}}}"
                    break
            if expression is None:
                name = _param_name(where[-1], params)
                filled = [c if c is not _MISSING else present[0] for c in column]
                params[name] = _declaration(name, filled)
                vectors.append((name, filled))
                expression = f"${name}"
            substitution[where] = expression
        body = _substitute(copy.deepcopy(template), substitution)
        name = self._block_name(group[0][0])
        definition: dict = {}
        if params:
            definition["params"] = {n: d for n, d in params.items()}
        definition["body"] = body
        self.blocks[name] = definition
        for k, (ns, _) in enumerate(group):
            args = {}
            for pname, vector in vectors:
                default = params[pname] if not isinstance(params[pname], str) else None
                if default is not None and _same(vector[k], default):
                    continue
                args[pname] = vector[k]
            self.as_item[ns.path] = {name: args}

    def _block_name(self, ns: Namespace) -> str:
        base = _snake(ns.kind) if ns.kind and ns.kind not in ("Sequential", "Module", "GraphModule") else ""
        if not base:
            base = re.sub(r"[_\d]+$", "", ns.name) if not ns.name.isdigit() else ""
            if not base:
                parent = ns.path.rsplit(".", 2)[-2] if ns.path.count(".") >= 1 else "block"
                base = re.sub(r"[_\d]+$", "", parent) + "_block"
        base = re.sub(r"\W", "_", base).strip("_") or "block"
        if base[0].isdigit():
            base = "b_" + base
        if base in REGISTRY or base in ALIASES or base in STRUCTURES or keyword.iskeyword(base) or base == INPUT:
            base += "_block"
        name, k = base, 2
        while name in self.blocks:
            name, k = f"{base}{'_' if base[-1].isdigit() else ''}{k}", k + 1
        return name


_MISSING = object()


def _same(a, b) -> bool:
    def norm(x):
        if isinstance(x, (list, tuple)):
            x = [norm(v) for v in x]
            return x[0] if len(x) == 2 and x[0] == x[1] and not isinstance(x[0], list) else x
        return x
    return norm(a) == norm(b) and type(norm(a)) is type(norm(b)) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
        and not isinstance(b, bool) and a == b)


def _factor(column: list, vector: list) -> int | None:
    factor = None
    for c, v in zip(column, vector):
        if c is _MISSING:
            continue
        if isinstance(c, bool) or not isinstance(c, int) or isinstance(v, bool) or not isinstance(v, int) or v == 0:
            return None
        if c % v:
            return None
        if factor is None:
            factor = c // v
        elif factor != c // v:
            return None
    return factor if factor and factor > 1 else None


def _index_expression(values: list):
    """One value per copy as the repeat writes it: constant, the first apart, or a + b*i."""
    first = values[0]
    if all(_same(v, first) for v in values):
        return first
    if all(_same(v, values[1]) for v in values[1:]) and all(_plain_number(v) for v in values[:2]):
        return f"${{{_lit(first)} if i == 0 else {_lit(values[1])}}}"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        step = values[1] - values[0]
        if all(values[k] == first + step * k for k in range(len(values))):
            return f"${{{first} + {step} * i}}"
    return None


def _plain_number(v) -> bool:
    return isinstance(v, (int, float, str)) and not isinstance(v, bool)


def _lit(v) -> str:
    return json.dumps(v) if isinstance(v, str) else repr(v)


def _param_name(arg: Any, params: dict) -> str:
    base = {"out": "c", "#count": "n"}.get(arg, arg if isinstance(arg, str) and arg.isidentifier() else "p")
    name, k = base, 2
    while name in params:
        name, k = f"{base}{k}", k + 1
    return name


def _declaration(name: str, values: list):
    base = re.sub(r"\d+$", "", name)
    if base in PARAM_DEFAULTS and any(_same(v, PARAM_DEFAULTS[base]) for v in values):
        return PARAM_DEFAULTS[base]
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    if all(isinstance(v, str) for v in values):
        return "str"
    return "any"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _item_kind(item) -> str:
    return item if isinstance(item, str) else next(k for k in item if k not in ITEM_OPTIONS)


def _arguments(items: list, prefix: tuple = ()):
    """(where, mapping, key) of every value that may differ between instances of a block: layer and
    call arguments (not index expressions) and repeat counts, nested structures included."""
    for k, item in enumerate(items):
        if isinstance(item, str):
            continue
        kind = _item_kind(item)
        here = prefix + (k, kind)
        value = item[kind]
        if kind == "residual":
            yield from _arguments(value, here)
            if "shortcut" in item:
                yield from _arguments(item["shortcut"], prefix + (k, "shortcut"))
        elif kind == "parallel":
            for j, branch in enumerate(value):
                yield from _arguments(branch["body"] if isinstance(branch, dict) else branch, here + (j,))
        elif kind == "repeat":
            yield here + ("#count",), item, kind
            yield from _arguments(item["body"], here + ("body",))
        elif isinstance(value, dict):
            for arg, v in value.items():
                if not (isinstance(v, str) and "$" in v):
                    yield here + (arg,), value, arg


def _slots(items: list) -> list[tuple[tuple, Any]]:
    return [(where, mapping[key]) for where, mapping, key in _arguments(items)]


def _substitute(items: list, substitution: dict) -> list:
    for where, mapping, key in list(_arguments(items)):
        if where in substitution:
            mapping[key] = substitution[where]
    return items


def _skeleton(items: list):
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
            continue
        kind = _item_kind(item)
        shape = {k: v for k, v in item.items() if k in ITEM_OPTIONS}
        value = item[kind]
        if kind == "residual":
            shape[kind] = _skeleton(value)
        elif kind == "parallel":
            shape[kind] = [_skeleton(b["body"]) if isinstance(b, dict) else _skeleton(b) for b in value]
            shape["names"] = [b.get("name") if isinstance(b, dict) else None for b in value]
            shape["merge"] = item.get("merge")
        elif kind == "repeat":
            shape[kind] = "?"
            shape["body"] = _skeleton(item["body"])
        elif isinstance(value, dict):
            shape[kind] = {k: (v if isinstance(v, str) and "$" in v else "?") for k, v in value.items()}
        else:
            shape[kind] = value
        out.append(shape)
    return out


def _local_graph(body: list):
    """A body's items as a networkx graph labelled by what each is (its arguments left out), for WL hashing.

    Items follow each other (edges in order) unless they say ``from``; nested structures hang
    below their item.
    """
    import networkx as nx

    g = nx.DiGraph()

    def add(items: list, parent: int | None) -> None:
        previous, names = parent, {}
        for item in _skeleton(items):
            node = g.number_of_nodes()
            kind = _item_kind(item) if not isinstance(item, str) else item
            label = kind if isinstance(item, str) else json.dumps(
                {k: v for k, v in item.items() if not isinstance(v, list) or k == "from"}, sort_keys=True, default=str)
            g.add_node(node, label=label)
            sources = item.get("from") if isinstance(item, dict) else None
            sources = [sources] if isinstance(sources, str) else sources
            for source in sources or [None]:
                origin = names.get(source, parent) if source else previous
                if origin is not None:
                    g.add_edge(origin, node)
            if isinstance(item, dict):
                names[item.get("name", "")] = node
                for nested in (item.get(kind) if kind in ("residual",) else None,):
                    if isinstance(nested, list):
                        add(nested, node)
            previous = node

    add(body, None)
    return g


def _kinds(items: list):
    """Every item key in a list of items, nested ones included."""
    for item in items:
        kind = _item_kind(item)
        yield kind
        if isinstance(item, str):
            continue
        if kind in ("residual",):
            yield from _kinds(item[kind])
        if "shortcut" in item:
            yield from _kinds(item["shortcut"])
        if kind == "repeat":
            yield from _kinds(item["body"])
        if kind == "parallel":
            for branch in item[kind]:
                yield from _kinds(branch["body"] if isinstance(branch, dict) else branch)


def compact_tree(items: list) -> list:
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
            continue
        item = dict(item)
        kind = _item_kind(item)
        if kind == "residual":
            item[kind] = compact_tree(item[kind])
        if "shortcut" in item:
            item["shortcut"] = compact_tree(item["shortcut"])
        if kind == "repeat":
            item["body"] = compact_tree(item["body"])
        if kind == "parallel":
            item[kind] = [{**b, "body": compact_tree(b["body"])} if isinstance(b, dict) else compact_tree(b)
                          for b in item[kind]]
        out.append(_compact(item))
    return out


def _compact(item: dict):
    """Default arguments left out; an item with nothing else is its bare name."""
    item = dict(item)
    kind = next(k for k in item if k not in ITEM_OPTIONS)
    entry = lookup(kind) if kind not in STRUCTURES else None
    if entry is not None and isinstance(item[kind], dict):
        args = {}
        for key, value in item[kind].items():
            arg = entry.args.get(key)
            if arg is not None and not arg.required and _same(value, arg.default):
                continue
            args[key] = value
        item[kind] = args
    if len(item) == 1 and isinstance(item[kind], dict) and not item[kind] and kind not in STRUCTURES:
        return kind
    return item
