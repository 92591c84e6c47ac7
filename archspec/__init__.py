"""archspec: convolutional networks described in YAML, validated, measured, drawn and compiled.

The analysis (``load``, ``validate``, ``expand``, ``summarize``) is pure Python and never
imports torch; ``build`` and ``train`` import it when they are called.
"""
from .api import build, check, expand, import_model, summarize, validate
from .errors import ArchspecError, LimitError, Location, Problem, SpecError, UsageError
from .graph import Graph, Node
from .infer import infer
from .spec import Spec, load, loads
from .summary import Summary
from .weights import load_weights, save_weights  # torch is imported only when they are called
from . import train  # callable: archspec.train(spec, data=..., epochs=...); imports torch only when called

__version__ = "0.1.0"


def __getattr__(name: str):
    # archspec.draw (the pictures, callable: archspec.draw(spec)) is imported when first used
    if name == "draw":
        import importlib

        return importlib.import_module(".draw", __name__)
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")

__all__ = [
    "ArchspecError", "Graph", "LimitError", "Location", "Node", "Problem", "Spec", "SpecError", "Summary",
    "UsageError", "build", "check", "expand", "import_model", "infer", "load", "load_weights", "loads",
    "save_weights", "train",
    "summarize", "validate", "__version__",
]
