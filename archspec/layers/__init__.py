"""The layer catalogue: one entry per layer type, one small file per idea.

Importing this package registers every entry. A new layer type is one new class with
``@register`` in one of these files (or a new file imported below), and nothing else.
"""
from . import activation, conv, dense, merge, norm, pool, reshape  # noqa: F401  (registers the entries)
from .base import (ALIASES, FAMILIES, REGISTRY, Field, LayerType, ParamCount, Saved, Shape,
                   ShapeError, all_type_names, did_you_mean, fmt_shape, lookup, lookup_known)

__all__ = ["ALIASES", "FAMILIES", "REGISTRY", "Field", "LayerType", "ParamCount", "Saved", "Shape",
           "ShapeError", "all_type_names", "did_you_mean", "fmt_shape", "lookup", "lookup_known"]
