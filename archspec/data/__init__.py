"""Labelled images for training, from the sources listed in ``sources.SOURCES`` (one reader module each).

``from archspec.data import open_data`` imports torch; ``archspec.data.sources`` (the table, its help
and its docs) does not, so the CLI can describe ``--data`` without paying for torch.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it, imported on first use
_EXPORTS = {
    "open_data": "loading", "load_splits": "loading", "split": "loading", "Splits": "loading",
    "channel_stats": "loading",
    "LabelledImages": "labelled", "collate": "labelled", "BadImageWarning": "labelled",
    "ImageError": "labelled", "ImageLimitError": "labelled",
    "SOURCES": "sources", "Source": "sources", "Request": "sources",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archspec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
