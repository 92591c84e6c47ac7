"""A training options file (``--config``): read and checked like a spec, every problem located.

It sits above both ``train.config`` (the options) and ``schema`` (the located checker), which
itself includes the options' schema in the spec language's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..loader import read_document
from ..schema import check_document_against
from .config import train_schema


def read_options_file(path: str | Path) -> dict[str, Any]:
    """A training YAML file's options, with every problem located (SpecError)."""
    document = read_document(Path(path))
    if document.data is None:
        return {}
    problems = check_document_against(document, train_schema())
    if problems:
        raise SpecError(problems)
    return dict(document.data)
