"""The spec language's vocabulary in one place: item keys, structures, names, merges and the
messages both validation passes word alike.

Expansion (``expand.py``), the JSON Schema (``schema.py``) and block loading (``spec.py``) read
these tables instead of spelling the words themselves. Merges are not listed here: they are the
catalogue's "merge" family, so a new merge is one catalogue entry and nothing else.
"""
from __future__ import annotations

import difflib
import keyword
import re
from typing import Any

from .layers import REGISTRY, LayerType, lookup
from .layers.base import _found

# keys an item may carry beside its one layer, block or structure key
ITEM_OPTIONS = ("name", "from", "if", "trainable", "init", "doc")
# structural item key -> the keys that may accompany it
STRUCTURES = {
    "repeat": ("body", "index", "copy_name"),
    "parallel": ("merge",),
    "residual": ("shortcut",),
}
DEFAULT_MERGE = "concat"  # what ``parallel`` does without ``merge:``
RESIDUAL_MERGE = "add"
# ``shortcut: none``: the identity where the main path keeps the shape, no connection where it changes
NO_SHORTCUT = "none"

PARAM_TYPES = {
    "int": (int,),
    "float": (int, float),
    "number": (int, float),
    "bool": (bool,),
    "str": (str,),
    "any": (object,),
}
# parameters, blocks and repeat indices are names inside expressions: identifiers
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# an item's name may also be a number, as torchvision's Sequential children (features.0.0.weight)
# or hyphenated, as torchvision's RegNet stages (trunk_output.block1.block1-0.f.a.0.weight)
ITEM_NAME_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*|[0-9]+)$")
PART_SEPARATOR = "."  # the parts of a chunk are read as from: name.0, name.1

INPUT_MESSAGE = ("input must be a list of 1 to 4 positive integers, e.g. [3, 224, 224] for C, H, W "
                 "(the batch is not part of a spec)")
ITEM_MESSAGE = "expected a layer (a name, or a mapping like {conv2d: {out: 64, kernel: 3}})"
NAME_MESSAGE = "is not a valid name: use letters, digits and _, not starting with a digit"
SHORTCUT_MESSAGE = (f"shortcut must be a list of layers (the projection used where the shape changes; "
                    f"{{name: proj, body: [...]}} to name its namespace) or {NO_SHORTCUT} (no connection where "
                    f"it changes)")
ITEM_NAME_MESSAGE = ("is not a valid name: use letters, digits and _, not starting with a digit, "
                     "with single hyphens between them (as torchvision's block1-0), "
                     "or a number alone (as torchvision's features.0)")


def item_name(value: Any) -> str | None:
    """An item's, branch's, copy's or shortcut's name as a path segment (``0`` becomes ``"0"``), or
    None where ``value`` is no valid name (ITEM_NAME_MESSAGE says why)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)  # name: 0, as torchvision's Sequential children
    if not isinstance(value, str) or not ITEM_NAME_RE.match(value) or keyword.iskeyword(value):
        return None
    return value


def merges() -> list[str]:
    """The merge names ``parallel`` accepts: every catalogue entry of the "merge" family."""
    return sorted(name for name, layer in REGISTRY.items() if layer.family == "merge")


def reserved_words() -> set[str]:
    """Words a block may not be called: the structures (layer types are checked apart)."""
    return set(STRUCTURES)


def args_not_mapping(kind: str, raw: Any) -> str:
    """``conv2d: 16`` -> the message saying how to write it."""
    layer = lookup(kind)
    first = next(iter(layer.args), None) if layer else None
    needed = [k for k, arg in layer.args.items() if arg.required] if layer else []
    if raw is None and needed:  # `conv2d:` with nothing after it
        return f"{kind} needs arguments: {', '.join(needed)}, e.g. {{{kind}: {{{needed[0]}: ...}}}}"
    scalar = isinstance(raw, (int, float, str)) and not isinstance(raw, bool)
    return (f"{kind}: expected a mapping of arguments, found {_found(raw)}"
            + (f" (write {{{kind}: {{{first}: {raw!r}}}}})" if first and scalar else ""))


def _spelling(word: str) -> str:
    """A word as spelt loosely: Conv2D, conv_2d and conv-2d are one spelling."""
    return re.sub(r"[\s_\-]", "", word.lower())


def _what_it_computes(layer: LayerType) -> str:
    doc = layer.doc.strip()
    first = doc.split(". ")[0].rstrip(".")
    return first[:1].lower() + first[1:]


def unknown_kind_hint(kind: str, blocks) -> str:
    """The hint after "unknown layer type or block": a spelling of a known word is named as such;
    a layer type that is merely close is named with what it computes, because a near name is often a
    different function (relu for relu8, or relu for prelu) and must not read like a fix."""
    from .layers import all_type_names

    words = [*all_type_names(), *blocks, *STRUCTURES]
    same = [w for w in words if _spelling(w) == _spelling(kind)]
    if same:
        return f" (did you mean '{same[0]}'?)"
    close = difflib.get_close_matches(kind, sorted(words), n=1, cutoff=0.6)
    if not close:
        return "; docs/layers.md lists every layer type"
    nearest = close[0]
    layer = lookup(nearest)
    if layer is None:  # one of the spec's own blocks, or a structure: a misspelling
        return f" (did you mean '{nearest}'?)"
    return f" (did you mean '{nearest}', which computes {_what_it_computes(layer)}?)"
