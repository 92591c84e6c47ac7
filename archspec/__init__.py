"""archspec: convolutional networks described in YAML, validated, measured, drawn and compiled.

The analysis (``load``, ``validate``, ``expand``, ``summarize``) is pure Python and never
imports torch; ``build`` and ``train`` import it when they are called.

The analysis is imported with the package; the weights code, the trainer and the pictures are
imported when first used (PEP 562), so ``archspec summary`` does not pay for them.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# ``expand`` and ``infer`` are also the names of submodules: bound here, at import, the functions
# win over the modules (a lazily bound name would lose to a submodule imported earlier).
from .api import build, check, expand, import_model, summarize, validate
from .errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError
from .graph import Graph, Node
from .infer import infer
from .spec import Spec, load, loads
from .summary import Summary

__version__ = "0.1.0"

# imported when first used: public name -> the module that defines it
_LAZY = {"load_weights": "weights", "save_weights": "weights"}  # these import torch only when called
# subpackages that are themselves callable: archspec.train(spec, data=...), archspec.draw(spec)
_CALLABLE_MODULES = ("train", "draw")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _CALLABLE_MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'archspec' has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_CALLABLE_MODULES))


if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports these
    from . import draw, train
    from .weights import load_weights, save_weights

__all__ = [
    "ArchspecError", "Graph", "LimitError", "Location", "Node", "Problem", "Spec", "SpecError", "Summary",
    "UsageError", "build", "check", "draw", "expand", "import_model", "infer", "load", "load_weights", "loads",
    "save_weights", "summarize", "train", "validate", "__version__",
]
