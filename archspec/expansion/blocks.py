"""Block calls: parameters bound and type-checked, the body expanded in the block's own namespace."""
from __future__ import annotations

from typing import Any

from ..graph import Group
from ..layers import did_you_mean
from ..loader import PathKey
from ..vocabulary import PARAM_TYPES
from .scope import FAILED, Scope
from .state import Expansion


class Blocks:
    def __init__(self, ex: Expansion):
        self.ex = ex

    def expand_call(self, name: str, raw: Any, scope: Scope, kp: PathKey, path: str,
                    inputs: list[Any], trainable: bool) -> Any:
        block = self.ex.spec.blocks[name]
        doc = scope.document
        where = doc.locate(kp)
        if name in scope.calls:
            chain = " -> ".join((*scope.calls[scope.calls.index(name):], name))
            self.ex.error(f"block '{name}' calls itself ({chain})", where, path)
            return FAILED
        definition = block.definition if isinstance(block.definition, dict) else {}
        declared = definition.get("params") or {}
        if not isinstance(declared, dict):
            declared = {}
        if raw is not None and not isinstance(raw, dict):
            self.ex.error(f"{name}: expected a mapping of block parameters, found {raw!r}", doc.locate(kp + (name,)),
                          path)
            return FAILED
        call_args = self.ex.evaluate(raw or {}, scope.params, doc, kp + (name,), path)
        if call_args is FAILED:
            return FAILED
        bound = self.bind_params(name, declared, call_args, block, doc, kp + (name,), where, path)
        if bound is None:
            return FAILED
        if len(inputs) != 1:
            self.ex.error(f"block '{name}' takes 1 input, found {len(inputs)}", where, path)
            return FAILED
        if inputs[0] is FAILED:
            return FAILED
        body = definition.get("body")
        body_kp = block.key_path + ("body",)
        if not isinstance(body, list) or not body:
            self.ex.error(f"block '{name}' has no body (a list of layers)", block.location, path)
            return FAILED
        inner = scope.child(path, inputs[0], params={**self.ex.spec_params, **bound}, lexical=False,
                            document=block.document, calls=scope.calls + (name,), trainable=trainable)
        self.ex.groups[path] = Group(path, "block", name, where)
        return self.ex.items.expand_items(body, inner, body_kp, inputs[0], collapse_into=path)

    def bind_params(self, name, declared, call_args, block, doc, args_kp, where, path) -> dict | None:
        bound, ok = {}, True
        for key in call_args:
            if key not in declared:
                self.ex.error(f"block '{name}' has no parameter '{key}'" + did_you_mean(key, declared)
                              + (f"; it takes {', '.join(declared)}" if declared else "; it takes none"),
                              doc.locate(args_kp + (key,), key=True), path)
                ok = False
        for key, decl in declared.items():
            type_name, default, required = _param_decl(decl)
            if key in call_args:
                value = call_args[key]
            elif not required:
                value = self.ex.evaluate(default, {**self.ex.spec_params, **bound}, block.document,
                                         block.key_path + ("params", key), path)
                if value is FAILED:
                    ok = False
                    continue
            else:
                self.ex.error(f"block '{name}' needs parameter '{key}' ({type_name})", where, path)
                ok = False
                continue
            allowed = PARAM_TYPES.get(type_name, (object,))
            if type_name in ("int", "float", "number") and isinstance(value, bool) or not isinstance(value, allowed):
                self.ex.error(f"block '{name}' parameter '{key}': expected {type_name}, found {value!r}",
                              doc.locate(args_kp + (key,)) if key in call_args else where, path)
                ok = False
                continue
            bound[key] = value
        return bound if ok else None


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
