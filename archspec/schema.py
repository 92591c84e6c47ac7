"""The JSON Schema of the spec language, generated from the layer catalogue, and the schema pass
of validation, which turns jsonschema's findings into one located message per problem.

``schemas/archspec.schema.json`` is this module's output, committed for editors
(yaml-language-server); a test fails when the two drift. Regenerate with ``archspec schema``.
"""
from __future__ import annotations

import json
from typing import Any

from . import validity
from .errors import Problem
from .vocabulary import (DEFAULT_MERGE, INPUT_MESSAGE, ITEM_MESSAGE, ITEM_NAME_MESSAGE, ITEM_NAME_RE,
                         ITEM_OPTIONS, NAME_MESSAGE, NAME_RE, NO_SHORTCUT, PARAM_TYPES, SHORTCUT_MESSAGE, STRUCTURES,
                         args_not_mapping, merges)
from .layers import ALIASES, REGISTRY, did_you_mean, lookup
from .layers.base import EXPRESSION_SCHEMA, ArgError
from .init import schema as init_schema
from .loader import Document
from .train.config import train_schema
from .validator import is_non_finite, validator

SCHEMA_ID = "https://archspec.dev/schemas/archspec.schema.json"
METADATA_KEYS = {
    "top1": {"type": "number", "description": "top-1 accuracy in percent, for archspec compare"},
    "top5": {"type": "number", "description": "top-5 accuracy in percent"},
    "dataset": {"type": "string"},
    "paper": {"type": "string"},
    "url": {"type": "string"},
}


def _int_or_expression(minimum: int) -> dict:
    return {"anyOf": [{"type": "integer", "minimum": minimum}, EXPRESSION_SCHEMA]}


def build_schema() -> dict:
    """The whole spec-language schema (JSON Schema 2020-12)."""
    layer_defs = {f"layer.{name}": layer.schema() for name, layer in sorted(REGISTRY.items())}
    layer_props = {name: {"$ref": f"#/$defs/layer.{name}"} for name in sorted(REGISTRY)}
    layer_props.update({alias: {"$ref": f"#/$defs/layer.{target}"} for alias, target in sorted(ALIASES.items())})
    item_props = {
        "name": {"description": "this item's name in paths: an identifier, or a number as torchvision's "
                                "features.0 (a $ expression may compute it)",
                 "anyOf": [{"type": "string", "pattern": ITEM_NAME_RE.pattern}, {"type": "integer", "minimum": 0},
                           EXPRESSION_SCHEMA]},
        "from": {"description": "input(s): earlier names, 'input', or a part of a chunk (name.0)",
                 "anyOf": [{"type": ["string", "integer"]},
                           {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1}]},
        "if": {"description": "false (or an expression giving false) removes the item, as if not written",
               "anyOf": [{"type": "boolean"}, EXPRESSION_SCHEMA]},
        "trainable": {"type": "boolean", "description": "false freezes every parameter inside"},
        "init": init_schema(),
        "doc": {"type": "string"},
        "repeat": {"description": "copies of body, chained; body sees the copy's index as $i",
                   **_int_or_expression(0)},
        "body": {"$ref": "#/$defs/body"},
        "index": {"type": "string", "pattern": NAME_RE.pattern, "default": "i"},
        "copy_name": {"description": "each copy's name in a named repeat (default: its index): a $ expression "
                                     "or template of the index, as torchvision's block1-0 (\"block1-${i}\")",
                      "anyOf": [{"type": "string", "pattern": ITEM_NAME_RE.pattern}, EXPRESSION_SCHEMA]},
        "parallel": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/branch"},
                     "description": "branches reading the same input, merged"},
        "merge": {"enum": merges(), "default": DEFAULT_MERGE,
                  "description": "how the branches' outputs combine: a layer type of the merge family"},
        "residual": {"$ref": "#/$defs/body", "description": "main path; its output is added to the input"},
        "shortcut": {"anyOf": [{"$ref": "#/$defs/body"}, {"const": NO_SHORTCUT},
                               {"type": "object", "required": ["body"], "additionalProperties": False,
                                "properties": {"name": {"type": "string", "pattern": ITEM_NAME_RE.pattern},
                                               "body": {"$ref": "#/$defs/body"}}}],
                     "description": "projection used only where the main path changes the shape (its namespace "
                                    "is downsample, or name: with {name: proj, body: [...]}); "
                                    f"{NO_SHORTCUT}: no connection there (the identity where the shape is kept)"},
        **layer_props,
    }
    assert set(ITEM_OPTIONS) | set(STRUCTURES) | {k for v in STRUCTURES.values() for k in v} <= set(item_props)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "archspec: a convolutional network in YAML",
        "type": "object",
        "required": ["archspec"],
        "dependentRequired": {"layers": ["input"]},
        "additionalProperties": False,
        "properties": {
            "archspec": {"const": 1, "description": "spec language version"},
            "name": {"type": "string", "minLength": 1,
                     "description": "the network's name: the compiled class, the run folder"},
            "doc": {"type": "string"},
            "source": {"type": "string", "description": "where the architecture comes from"},
            "metadata": {"type": "object", "properties": METADATA_KEYS},
            "input": {"type": "array", "minItems": 1, "maxItems": 4, "items": _int_or_expression(1),
                      "description": "one sample's shape, e.g. [3, 224, 224] for C, H, W"},
            "params": {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern},
                       "additionalProperties": {"type": ["integer", "number", "string", "boolean"]},
                       "description": "defaults, overridable with --set name=value"},
            "init": init_schema(),
            "freeze": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                       "description": "freeze layers whose path matches a pattern (fnmatch; a block's name "
                                      "freezes everything inside)"},
            "imports": {"type": "array", "items": {"type": "string"},
                        "description": "block libraries, relative to this file"},
            "blocks": {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern},
                       "additionalProperties": {"$ref": "#/$defs/block"}},
            "layers": {"$ref": "#/$defs/body"},
            "train": train_schema(),
        },
        "$defs": {
            "body": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/item"}},
            "branch": {"anyOf": [
                {"type": "array", "items": {"$ref": "#/$defs/item"}},
                {"type": "object", "required": ["body"], "additionalProperties": False,
                 "properties": {"name": {"anyOf": [{"type": "string", "pattern": ITEM_NAME_RE.pattern},
                                                   {"type": "integer", "minimum": 0}]},
                                "body": {"type": "array", "items": {"$ref": "#/$defs/item"}}}},
                {"$ref": "#/$defs/item_object"},
            ]},
            "item": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/item_object"}]},
            "item_object": {
                "type": "object",
                "minProperties": 1,
                "properties": item_props,
                "dependentRequired": {"repeat": ["body"], "index": ["repeat"], "copy_name": ["repeat"],
                                      "merge": ["parallel"], "shortcut": ["residual"]},
            },
            "block": {
                "type": "object",
                "required": ["body"],
                "additionalProperties": False,
                "properties": {
                    "doc": {"type": "string"},
                    "params": {"type": "object", "propertyNames": {"pattern": NAME_RE.pattern},
                               "additionalProperties": {"anyOf": [
                                   {"type": ["integer", "number", "string", "boolean"]},
                                   {"type": "object", "required": ["type"], "additionalProperties": False,
                                    "properties": {"type": {"enum": sorted(PARAM_TYPES)}, "default": {},
                                                   "doc": {"type": "string"}}}]}},
                    "body": {"$ref": "#/$defs/body"},
                },
            },
            **layer_defs,
        },
    }


def schema_json() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=False) + "\n"


_VALIDATOR = None


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = validator(build_schema())
    return _VALIDATOR


_SCHEMA_TEXT: str | None = None


def _schema_text() -> str:
    global _SCHEMA_TEXT
    if _SCHEMA_TEXT is None:
        _SCHEMA_TEXT = json.dumps(build_schema(), sort_keys=True, separators=(",", ":"))
    return _SCHEMA_TEXT


def check_document(document: Document) -> list[Problem]:
    """Schema problems of one document, one located message each."""
    if document.data is None:
        return [Problem("the spec is empty", document.locate(()))]
    known_valid = validity.store()
    if known_valid is None:
        return _located(document, _validator())
    key = validity.digest(_schema_text(), document.data)
    if key is not None and key in known_valid:
        return []  # this very document passed this very schema before (archspec/validity.py)
    problems = _located(document, _validator())
    if key is not None and not problems:
        known_valid.add(key)
    return problems


def check_document_against(document: Document, schema: dict) -> list[Problem]:
    """Problems of a document under another schema (a training options file), located the same way."""
    return _located(document, validator(schema))


def _located(document: Document, validator) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple] = set()
    for error in validator.iter_errors(document.data):
        for leaf in _leaves(error):
            for problem in _problems(document, leaf):
                key = (problem.location, problem.message)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
    problems.sort(key=lambda p: (p.location.line, p.location.col) if p.location else (0, 0))
    return problems


def _leaves(error) -> list:
    """The specific errors behind an anyOf/oneOf, ignoring the branch that allows $ expressions."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    instance = error.instance
    if isinstance(instance, str) and "$" in instance:
        return []  # an expression: checked once evaluated, during expansion
    if is_non_finite(instance):  # .nan or .inf where a number may go: say that, not the other branches
        return [next((s for s in error.context if s.validator == "type"), error)]
    branches: dict[int, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    # the branch written for this kind of value (a mapping for an object branch, ...) explains best
    def fits(subs) -> tuple[int, int]:
        # an enum of scalars refuses a mapping or list as surely as a type does (init: {xavir: ...})
        type_errors = sum(1 for s in subs if s.validator == "type" or (
            s.validator == "enum" and isinstance(s.instance, (dict, list))
            and not any(isinstance(o, (dict, list)) for o in s.validator_value)))
        return (type_errors, -max(len(s.absolute_path) for s in subs))

    best = min(branches.values(), key=fits)
    depth = len(error.absolute_path)

    def refuses_kind(s) -> bool:  # the value itself (not something inside it) has the wrong type or form
        return s.validator in ("type", "pattern") and len(s.absolute_path) == depth

    if all(refuses_kind(s) for s in best) or all(refuses_kind(s) for s in error.context):
        return [error]  # no branch fits the value's kind: one message for the whole choice
    out = []
    for sub in best:
        out.extend(_leaves(sub))
    return out


def _found(value: Any) -> str:
    from .layers.base import _found as found

    return found(value)


def _arg_message(document: Document, path: tuple) -> str | None:
    """For a layer argument, the catalogue's own message (the same wording expansion uses)."""
    for i in range(len(path) - 1):
        layer = lookup(path[i]) if isinstance(path[i], str) else None
        if layer is not None and isinstance(path[i + 1], str):
            arg = layer.args.get(path[i + 1])
            if arg is None:
                return None
            value = document.data
            for key in path[:i + 2]:
                value = value[key]
            try:
                arg.kind.coerce(value)
            except ArgError as exc:
                return f"{layer.name}.{path[i + 1]}: {exc}"
            return None
    return None


def _problems(document: Document, error) -> list[Problem]:
    """One problem per mistake: a mapping with three unknown keys gets three messages."""
    if error.validator == "additionalProperties":
        return _unknown_keys(document, error)
    return [_problem(document, error)]


def _unknown_keys(document: Document, error) -> list[Problem]:
    path = tuple(error.absolute_path)
    allowed = list(error.schema.get("properties", {}))
    extras = [k for k in error.instance if k not in allowed] or [""]
    context = f" in {path[-1]}" if path and isinstance(path[-1], str) else ""
    return [Problem(f"unknown key '{key}'{context}" + did_you_mean(key, allowed)
                    + (f"; expected one of {', '.join(allowed)}" if len(allowed) <= 14 else ""),
                    document.locate(path + (key,), key=True)) for key in extras]


def _named_shortcut_problem(document: Document, path: tuple, shortcut: dict) -> Problem | None:
    """A shortcut written {name: proj, body: [...]} with a key it does not take, where that key is."""
    extras = [k for k in shortcut if k not in ("name", "body")]
    if extras:
        return Problem(f"unknown key '{extras[0]}' in shortcut; expected name, body",
                       document.locate(path + (extras[0],), key=True))
    return None


def _problem(document: Document, error) -> Problem:
    path = tuple(error.absolute_path)
    where = document.locate(path)
    v = error.validator
    # an item's name and a residual's shortcut: the expansion pass's wording, whichever branch refused
    if len(path) > 1 and path[-1] == "name" and isinstance(path[-2], int) and not isinstance(error.instance, dict):
        return Problem(f"name {error.instance!r} {ITEM_NAME_MESSAGE}", where)
    if path and path[-1] == "shortcut" and isinstance(error.instance, dict) and "body" in error.instance:
        extra_key = _named_shortcut_problem(document, path, error.instance)
        if extra_key:
            return extra_key
    elif path and path[-1] == "shortcut" and not isinstance(error.instance, list):
        return Problem(f"{SHORTCUT_MESSAGE}, found {_found(error.instance)}", where)
    if v == "additionalProperties":
        return _unknown_keys(document, error)[0]
    key = f"{path[-1]}: " if path and isinstance(path[-1], str) else (
        f"{path[-2]}: " if len(path) > 1 and isinstance(path[-2], str) else "")
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        layer = lookup(path[-1]) if path and isinstance(path[-1], str) else None
        if layer is not None and missing in layer.args:  # the catalogue's wording, as expansion says it
            return Problem(f"{layer.name} needs '{missing}' ({layer.args[missing].doc})", where)
        if path == () and missing == "archspec":
            return Problem("missing required key 'archspec': start the spec with archspec: 1 "
                           "(the version of the spec language)", where)
        return Problem(f"missing required key '{missing}'", where)
    if v == "dependentRequired":
        return Problem(error.message.replace("is a dependency of", "is needed beside"), where)
    message = _arg_message(document, path)
    if message:
        return Problem(message, where)
    found = _found(error.instance)
    if v == "type" and path == ():
        # not the value itself: a file that is not a spec (/etc/passwd) must not be echoed
        kind = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                list: "a list"}.get(type(error.instance), "something else")
        return Problem(f"a spec is a YAML mapping (archspec: 1, input: [...], layers: [...]), found {kind}", where)
    if v == "type" and is_non_finite(error.instance):
        return Problem(f"{key}{error.message}", where)  # .nan, .inf: the validator's own wording
    if v == "type":
        if len(path) > 1 and isinstance(path[-1], str) and isinstance(path[-2], int) and lookup(path[-1]):
            return Problem(args_not_mapping(path[-1], error.instance), where)  # conv2d: 16
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        if "number" in wanted:  # an integer is a number
            wanted = [w for w in wanted if w != "integer"]
        expected = " or ".join(_TYPE_WORDS.get(w, str(w)) for w in wanted)
        return Problem(f"expected {expected}, found {found}", where)
    if v in ("enum", "const"):
        options = error.validator_value if v == "enum" else [error.validator_value]
        what = " (the version of the spec language)" if path == ("archspec",) else ""
        return Problem(f"{key}expected {' or '.join(map(str, options))}{what}, found {found}"
                       + did_you_mean(error.instance, [str(o) for o in options]), where)
    if v in ("anyOf", "oneOf"):
        choices = error.validator_value
        if {"$ref": "#/$defs/item_object"} in choices:
            return Problem(f"{ITEM_MESSAGE}, found {found}", where)
        words = ["a $ expression" if c == EXPRESSION_SCHEMA else _TYPE_WORDS.get(c.get("type"))
                 if isinstance(c.get("type"), str) else None for c in choices]
        named = [w for w in words if w]
        if len(named) == len(words):
            return Problem(f"{key}expected {' or '.join(dict.fromkeys(named))}, found {found}", where)
        return Problem(f"{key}unexpected value {found}", where)
    if v == "minLength" and error.validator_value == 1:
        return Problem(f"{key}expected a non-empty string", where)
    if v in ("minItems", "maxItems"):
        n = error.validator_value
        if path == ("input",):
            return Problem(f"{INPUT_MESSAGE}; found {found}", where)
        if path and path[-1] == "parallel" and v == "minItems":
            return Problem(f"parallel needs at least {n} branches, found {len(error.instance)}", where)
        bound = "at least" if v == "minItems" else "at most"
        return Problem(f"{key}expected {bound} {n} item{'s' if n != 1 else ''}, found {len(error.instance)}", where)
    if v == "minProperties" and path and isinstance(path[-1], int):
        return Problem(f"{ITEM_MESSAGE}, found an empty mapping", where)
    if v in ("minimum", "maximum"):
        kind = "an integer" if isinstance(error.instance, int) else "a number"
        sign = ">=" if v == "minimum" else "<="
        return Problem(f"{key}expected {kind} {sign} {error.validator_value}, found {error.instance}", where)
    if v == "pattern" and path and path[-1] == "name":
        return Problem(f"name {error.instance!r} {ITEM_NAME_MESSAGE}", where)
    if v in ("pattern", "propertyNames"):
        return Problem(f"{_short(repr(error.instance))} {NAME_MESSAGE}", where)
    return Problem(error.message, where)


_TYPE_WORDS = {"array": "a list", "object": "a mapping", "integer": "an integer", "string": "a string",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
