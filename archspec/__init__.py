"""archspec: convolutional networks described in YAML, validated, measured, drawn and compiled.

The analysis (``load``, ``validate``, ``expand``, ``summarize``) is pure Python and never
imports torch; ``build`` and ``train`` import it when they are called.

Every public name is imported when first used (PEP 562), so ``import archspec`` and the
``archspec`` command pay only for what they touch: ``archspec summary`` never loads the
trainer, the weights code or the pictures.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> the module that defines it (a module's own name for the callable subpackages)
_PUBLIC = {
    "build": "api", "check": "api", "expand": "api", "import_model": "api", "summarize": "api",
    "validate": "api",
    "ArchspecError": "errors", "LimitError": "errors", "Location": "errors", "Problem": "errors",
    "SpecError": "errors", "UsageError": "errors",
    "Graph": "graph", "Node": "graph",
    "infer": "infer",
    "Spec": "spec", "load": "spec", "loads": "spec",
    "Summary": "summary",
    "load_weights": "weights", "save_weights": "weights",  # torch is imported only when they are called
}
# subpackages that are themselves callable: archspec.train(spec, data=...), archspec.draw(spec)
_CALLABLE_MODULES = ("train", "draw")


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    elif name in _CALLABLE_MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'archspec' has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC) | set(_CALLABLE_MODULES))


if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports these
    from . import draw, train
    from .api import build, check, expand, import_model, summarize, validate
    from .errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError
    from .graph import Graph, Node
    from .infer import infer
    from .spec import Spec, load, loads
    from .summary import Summary
    from .weights import load_weights, save_weights

__all__ = [
    "ArchspecError", "Graph", "LimitError", "Location", "Node", "Problem", "Spec", "SpecError", "Summary",
    "UsageError", "build", "check", "draw", "expand", "import_model", "infer", "load", "load_weights", "loads",
    "save_weights", "summarize", "train", "validate", "__version__",
]
