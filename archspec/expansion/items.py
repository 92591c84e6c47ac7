"""Lists of items: each item's kind, options (name, from, if, trainable, init) and dispatch to the
unit that expands it; names, automatic names and ``from:`` wiring."""
from __future__ import annotations

from typing import Any

from ..graph import INPUT
from ..layers import did_you_mean, lookup
from ..layers.base import _found
from ..loader import PathKey
from ..vocabulary import (ITEM_MESSAGE, ITEM_NAME_MESSAGE, ITEM_OPTIONS, PART_SEPARATOR, RESIDUAL_MERGE, STRUCTURES,
                          item_name, unknown_kind_hint)
from .scope import FAILED, Parts, Scope
from .state import MAX_ITEMS, MAX_NESTING, MAX_NODES, Expansion, TooBig


class Items:
    def __init__(self, ex: Expansion):
        self.ex = ex

    def expand_items(self, items: list, scope: Scope, key_path: PathKey, start: Any,
                     collapse_into: str | None = None) -> Any:
        """Expand a list of items in one namespace; returns the last item's output path.

        ``collapse_into``: a namespace holding a single item gives it the namespace's own path
        (a block whose body is one repeat *is* that repeat), so paths stay short.
        """
        if self.ex.depth >= MAX_NESTING:
            self.ex.error(f"blocks, repeats, branches and residuals nest more than {MAX_NESTING} deep here; "
                          "archspec refuses it", scope.document.locate(key_path), scope.prefix)
            return FAILED
        self.ex.depth += 1
        try:
            current = start
            for index, item in enumerate(items):
                path = collapse_into if (collapse_into is not None and len(items) == 1) else None
                current = self.expand_item(item, scope, key_path + (index,), current, path)
            return current
        finally:
            self.ex.depth -= 1

    def expand_item(self, item: Any, scope: Scope, kp: PathKey, current: Any, path: str | None) -> Any:
        doc = scope.document
        where = doc.locate(kp)
        if isinstance(item, str):
            if item in STRUCTURES:  # `- parallel` alone: the structure has nothing to unroll
                needs = {"parallel": "parallel: [[...], [...]] (at least 2 branches)",
                         "residual": "residual: [...] (the main path)", "repeat": "repeat: N with body: [...]"}
                self.ex.error(f"'{item}' needs its parts: write {needs.get(item, item + ': ...')}", where)
                return FAILED
            kind, raw, options = item, None, {}
        elif isinstance(item, dict):
            kinds = [k for k in item if k not in ITEM_OPTIONS]
            if not kinds:
                self.ex.error("item names no layer type or block", where)
                return FAILED
            structural = [k for k in kinds if k in STRUCTURES]
            if structural:
                kind = structural[0]
                extra = [k for k in kinds if k != kind and k not in STRUCTURES[kind]]
            else:
                kind, extra = kinds[0], kinds[1:]
            if extra:
                allowed = sorted(set(ITEM_OPTIONS) | set(STRUCTURES.get(kind, ())))
                for key in extra:
                    self.ex.error(f"unexpected key '{key}' beside '{kind}'" + did_you_mean(key, allowed)
                                  + f"; an item has one layer or block key plus {', '.join(allowed)}",
                                  doc.locate(kp + (key,), key=True))
                return FAILED
            raw, options = item.get(kind), {k: item[k] for k in item if k in ITEM_OPTIONS}
        else:
            self.ex.error(f"{ITEM_MESSAGE}, found {_found(item)}", where)
            return FAILED
        if not isinstance(kind, str):
            self.ex.error("a layer type must be a name", where)
            return FAILED
        self.ex.item_count += 1
        if len(self.ex.nodes) > MAX_NODES or self.ex.item_count > MAX_ITEMS:
            raise TooBig()
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
            self.ex.error("trainable: expected true or false", doc.locate(kp + ("trainable",)))
            trainable = True
        if "init" in options:
            scheme = self.ex.parse_init(options["init"], doc, kp + ("init",))
            if scheme is None:
                return FAILED
            scope = scope.transparent(scope.input, scope.params, scope.trainable)
            scope.init = scheme

        if kind == "repeat" and "name" not in options and path is None:
            out = self.ex.structures.expand_repeat(item, scope, kp, None, inputs, trainable, local)
        elif kind in STRUCTURES:
            out = getattr(self.ex.structures, "expand_" + kind)(item, scope, kp, full, inputs, trainable, local)
        elif lookup(kind) is not None:
            out = self.ex.primitives.expand_layer(kind, raw, scope, kp, full, inputs, trainable)
        elif kind in self.ex.spec.blocks:
            out = self.ex.blocks.expand_call(kind, raw, scope, kp, full, inputs, trainable)
        else:
            self.ex.error(f"unknown layer type or block '{kind}'" + unknown_kind_hint(kind, self.ex.spec.blocks),
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
        keep = self.ex.evaluate(options["if"], scope.params, doc, kp + ("if",))
        if keep is FAILED:
            return FAILED
        if not isinstance(keep, bool):
            self.ex.error(f"if: expected true or false (or an expression giving one, like ${{se > 0}}), "
                          f"found {_found(keep)}", doc.locate(kp + ("if",)))
            return FAILED
        name = options.get("name")
        if not keep and isinstance(name, (str, int)) and not isinstance(name, bool):
            scope.removed.add(str(name))
        return keep

    def local_name(self, kind: str, options: dict, scope: Scope, kp: PathKey) -> str | None:
        doc = scope.document
        if "name" in options:
            name = self.ex.evaluate(options["name"], scope.params, doc, kp + ("name",), template=True)
            where = doc.locate(kp + ("name",))
            if name is FAILED:
                return None
            if item_name(name) is None:
                self.ex.error(f"name {name!r} {ITEM_NAME_MESSAGE}", where)
                return None
            name = item_name(name)
            if name == INPUT:
                self.ex.error("'input' is reserved for the input of a block or spec", where)
                return None
            first = self.ex.name_sites.get((id(scope.names), name))
            if first is not None and first[0] is not scope.names:
                first = None  # a namespace since freed, whose id was reused
            if name in scope.names and first is not None and first[1:3] == (doc.file, kp):
                self.ex.error(f"name '{name}' is used twice in the same block (inside an unnamed repeat, "
                              "every copy shares one namespace: name the repeat)", where)
                return None
            if name in scope.names:
                at = first[3] if first else "earlier"
                self.ex.error(f"name '{name}' is used twice in the same namespace (first at {at}); names are "
                              "unique within a spec, a block, a branch or a copy of a named repeat", where)
                return None
            self.ex.name_sites[(id(scope.names), name)] = (scope.names, doc.file, kp, where)
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
                self.ex.error(f"the item before this one ('{current.local}') gives {len(current.paths)} parts: "
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
                self.ex.error(f"from: expected a node name, found {name!r}", where, path)
                result.append(FAILED)
                continue
            target = scope.lookup(name)
            if isinstance(target, Parts):
                self.ex.error(f"from: '{name}' gives {len(target.paths)} parts; read one of them: "
                              + ", ".join(f"{name}{PART_SEPARATOR}{k}" for k in range(len(target.paths))), where, path)
                result.append(FAILED)
            elif target is None and scope.was_removed(name):
                self.ex.error(f"from: '{name}' is removed here (its if: is false)", where, path)
                result.append(FAILED)
            elif target is None:
                visible = self.visible_names(scope)
                self.ex.error(f"from: undefined name '{name}'" + did_you_mean(name, visible)
                              + (" (inputs must come from earlier items, so graphs cannot have cycles)"
                              if name in self.later_names(scope, kp) else ""), where, path)
                result.append(FAILED)
            else:
                result.append(target)
        return result

    def visible_names(self, scope: Scope) -> list[str]:
        names: list[str] = [INPUT]
        s: Scope | None = scope
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
        return {i["name"] for i in later if isinstance(i, dict) and isinstance(i.get("name"), str)}
