"""The structures: repeat (copies, numbered when named), parallel (branches and their merge) and
residual (the main path, the projection shortcut where the shape changes, or none)."""
from __future__ import annotations

from typing import Any

from ..graph import Group, Node
from ..layers import ShapeError, did_you_mean, fmt_shape, lookup_known
from ..layers.base import _found
from ..loader import PathKey
from ..vocabulary import (DEFAULT_MERGE, ITEM_NAME_MESSAGE, NAME_RE, NO_SHORTCUT, RESIDUAL_MERGE, SHORTCUT_MESSAGE,
                          item_name, merges)
from .scope import FAILED, Scope
from .state import MAX_REPEAT, Expansion


class Structures:
    def __init__(self, ex: Expansion):
        self.ex = ex

    def expand_repeat(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        times = self.ex.evaluate(item.get("repeat"), scope.params, doc, kp + ("repeat",), path)
        if times is FAILED:
            return FAILED
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            self.ex.error(f"repeat: expected a count >= 0, found {times!r}", doc.locate(kp + ("repeat",)), path)
            return FAILED
        if times > MAX_REPEAT:
            self.ex.error(f"repeat: {times:,} copies is more than the {MAX_REPEAT:,} archspec allows",
                          doc.locate(kp + ("repeat",)), path)
            return FAILED
        body = item.get("body")
        if not isinstance(body, list) or not body:
            self.ex.error("repeat needs a body: a list of layers to repeat", doc.locate(kp), path)
            return FAILED
        index = item.get("index", "i")
        if not isinstance(index, str) or not NAME_RE.match(index):
            self.ex.error(f"repeat index must be a name, found {index!r}", doc.locate(kp + ("index",)), path)
            return FAILED
        if len(inputs) != 1:
            self.ex.error(f"repeat takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        copy_name = item.get("copy_name")
        if copy_name is not None and path is None:
            self.ex.error("copy_name names the copies of a named repeat: give the repeat a name",
                          doc.locate(kp + ("copy_name",)))
            return FAILED
        current = inputs[0]
        if path is None:
            # An unnamed repeat is as if its body were written out `times` times in place.
            for k in range(times):
                if current is FAILED:
                    return FAILED
                inner = scope.transparent(current, {**scope.params, index: k}, trainable)
                current = self.ex.items.expand_items(body, inner, kp + ("body",), current)
            return current
        # A named repeat is a namespace of numbered copies, as torchvision's layer1.0, layer1.1.
        # a block whose body is this one repeat keeps its block name as the label
        self.ex.groups.setdefault(path, Group(path, "repeat", f"×{times}", doc.locate(kp)))
        copies: set[str] = set()
        for k in range(times):
            if current is FAILED:
                return FAILED
            params = {**scope.params, index: k}
            local = str(k) if copy_name is None else self.copy_name(copy_name, params, doc, kp, path, copies)
            if local is None:
                return FAILED
            copy = f"{path}.{local}"
            inner = scope.child(copy, current, params=params, trainable=trainable)
            self.ex.groups[copy] = Group(copy, "iteration", f"{k + 1} of {times}", doc.locate(kp))
            current = self.ex.items.expand_items(body, inner, kp + ("body",), current, collapse_into=copy)
        return current

    def copy_name(self, template, params: dict, doc, kp: PathKey, path: str, taken: set[str]) -> str | None:
        """One copy's name from the repeat's copy_name (an expression or template of the index)."""
        where = doc.locate(kp + ("copy_name",))
        value = self.ex.evaluate(template, params, doc, kp + ("copy_name",), path, template=True)
        if value is FAILED:
            return None
        name = item_name(value)
        if name is None:
            self.ex.error(f"copy_name {value!r} {ITEM_NAME_MESSAGE}", where, path)
        elif name in taken:
            self.ex.error(f"copy_name gives two copies the name {name!r}: make it depend on the index",
                          where, path)
            return None
        else:
            taken.add(name)
        return name

    def expand_parallel(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        branches = item.get("parallel")
        merge = item.get("merge", DEFAULT_MERGE)
        if merge not in merges():
            self.ex.error(f"merge: expected {' or '.join(merges())}, found {merge!r}" + did_you_mean(merge, merges()),
                          doc.locate(kp + ("merge",)), path)
            return FAILED
        if not isinstance(branches, list) or len(branches) < 2:
            self.ex.error("parallel needs a list of at least 2 branches, each a list of layers",
                          doc.locate(kp + ("parallel",)), path)
            return FAILED
        most = lookup_known(merge).max_inputs
        if len(branches) > most:
            self.ex.error(f"merge: {merge} takes at most {most} branches, found {len(branches)}",
                          doc.locate(kp + ("merge",)), path)
            return FAILED
        if len(inputs) != 1 or inputs[0] is FAILED:
            if len(inputs) != 1:
                self.ex.error(f"parallel takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        self.ex.groups[path] = Group(path, "parallel", merge, doc.locate(kp))
        outputs = []
        for j, branch in enumerate(branches, 1):
            bkp = kp + ("parallel", j - 1)
            name = f"branch{j}"
            body, body_kp = branch, bkp
            if isinstance(branch, dict) and "body" in branch:
                name, body, body_kp = branch.get("name", name), branch["body"], bkp + ("body",)
                checked = item_name(name)
                if checked is None:
                    self.ex.error(f"branch name {name!r} {ITEM_NAME_MESSAGE}", doc.locate(bkp + ("name",)), path)
                    return FAILED
                name = checked
            elif isinstance(branch, dict):
                body, body_kp = [branch], None  # a single layer written without a list
            if not isinstance(body, list):
                self.ex.error("each branch must be a list of layers", doc.locate(bkp), path)
                return FAILED
            branch_path = f"{path}.{name}"
            inner = scope.child(branch_path, inputs[0], trainable=trainable)
            if body:
                self.ex.groups[branch_path] = Group(branch_path, "branch", name, doc.locate(bkp))
            if body_kp is None:  # the single layer sits at the branch's own key path
                outputs.append(self.ex.items.expand_item(body[0], inner, bkp, inputs[0], branch_path))
            else:
                outputs.append(self.ex.items.expand_items(body, inner, body_kp, inputs[0], collapse_into=branch_path))
        return self.merge_node(merge, f"{path}.{merge}", outputs, scope, kp, trainable)

    def merge_node(self, merge: str, path: str, outputs: list, scope: Scope, kp: PathKey, trainable: bool,
                   explain=None) -> Any:
        if any(o is FAILED for o in outputs):
            return FAILED
        shapes = [self.ex.shapes[o] for o in outputs]
        where = scope.document.locate(kp)
        if any(s is None for s in shapes):
            self.ex.shapes[path] = None
            return path
        layer = lookup_known(merge)
        args, _ = layer.coerce_args({})
        try:
            shape = layer.output_shape(args, shapes)
        except ShapeError as exc:
            self.ex.error(explain(shapes) if explain else str(exc), where, path)
            self.ex.shapes[path] = None
            return path
        self.ex.shapes[path] = shape
        self.ex.nodes.append(Node(path, layer.name, args, list(outputs), shape, where, trainable))
        return path

    def expand_residual(self, item, scope, kp, path, inputs, trainable, local) -> Any:
        doc = scope.document
        body, shortcut = item.get("residual"), item.get("shortcut")
        side_name = "downsample"
        if isinstance(shortcut, dict) and "body" in shortcut:  # {name: proj, body: [...]}
            checked = item_name(shortcut.get("name", side_name))
            if checked is None:
                self.ex.error(f"shortcut name {shortcut.get('name')!r} {ITEM_NAME_MESSAGE}",
                              doc.locate(kp + ("shortcut", "name")), path)
                return FAILED
            side_name = checked
            shortcut, shortcut_kp = shortcut["body"], kp + ("shortcut", "body")
        else:
            shortcut_kp = kp + ("shortcut",)
        if not isinstance(body, list) or not body:
            self.ex.error("residual needs its main path: a list of layers", doc.locate(kp + ("residual",)), path)
            return FAILED
        if shortcut is not None and shortcut != NO_SHORTCUT and (not isinstance(shortcut, list) or not shortcut):
            self.ex.error(f"{SHORTCUT_MESSAGE}, found {_found(shortcut)}", doc.locate(shortcut_kp), path)
            return FAILED
        if len(inputs) != 1 or inputs[0] is FAILED:
            if len(inputs) != 1:
                self.ex.error(f"residual takes 1 input, found {len(inputs)}", doc.locate(kp), path)
            return FAILED
        source = inputs[0]
        # The main path lives in the enclosing namespace, so a ResNet block reads conv1, bn1, ...
        inner = scope.transparent(source, scope.params, trainable)
        main = self.ex.items.expand_items(body, inner, kp + ("residual",), source)
        if main is FAILED:
            return FAILED
        main_shape, in_shape = self.ex.shapes.get(main), self.ex.shapes.get(source)
        side = source
        if main_shape != in_shape and shortcut == NO_SHORTCUT:
            return main  # the shape changes: no connection, as MobileNetV2's inverted residual
        if main_shape is not None and in_shape is not None and main_shape != in_shape and shortcut:
            name, k = side_name, 1
            while name in scope.names:  # a second residual in the same namespace: downsample2, proj2
                k += 1
                name = f"{side_name}{k}"
            scope.names[name] = None
            side_path = scope.join(name)
            self.ex.groups[side_path] = Group(side_path, "shortcut", "projection", doc.locate(shortcut_kp))
            side_scope = scope.child(side_path, source, trainable=trainable)
            side = self.ex.items.expand_items(shortcut, side_scope, shortcut_kp, source)

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
