"""The public Python API: the functions ``import archspec`` offers, and the CLI's commands call.

Internal modules import the pipeline from ``archspec.pipeline``, never this facade.
"""
from __future__ import annotations

from .pipeline import build, check, expand, summarize, validate

__all__ = ["build", "check", "expand", "summarize", "validate"]
