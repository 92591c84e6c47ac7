"""The public Python API; the CLI is a thin shell over these functions."""
from __future__ import annotations

import os
from typing import Any

from .errors import ArchspecError, Problem, SpecError, UsageError
from .expand import expand as _expand
from .graph import Graph
from .schema import check_document
from .spec import Spec, load
from .summary import Summary, summarize_graph

Source = "str | os.PathLike | Spec"


def check(spec: Spec) -> list[Problem]:
    """Schema problems of a loaded spec and every block library it imports."""
    problems: list[Problem] = []
    for document in spec.documents:
        problems.extend(check_document(document))
    return problems


def expand(source, params: dict[str, Any] | None = None) -> Graph:
    """Load, schema-check and unroll a spec into a Graph with shapes; raises SpecError."""
    spec = load(source)
    problems = check(spec)
    try:
        graph = _expand(spec, params or {})
    except UsageError:
        raise
    except ArchspecError as exc:
        # The schema pass and expansion can see the same mistake: keep one message per place.
        reported = {p.location for p in problems}
        problems += [p for p in exc.problems if p.location not in reported]
    if problems:
        problems.sort(key=lambda p: (p.location.file, p.location.line, p.location.col) if p.location else ("", 0, 0))
        raise SpecError(problems)
    return graph


def validate(source, params: dict[str, Any] | None = None) -> list[Problem]:
    """Every problem in a spec (YAML, schema, names, shapes), located; empty when it is valid."""
    try:
        expand(source, params)
    except ArchspecError as exc:
        return list(exc.problems)
    return []


def summarize(source, batch: int = 1, dtype: str = "float32", depth: int | None = None,
              optimizer: str = "adam", **params: Any) -> Summary:
    """Per-layer figures and totals of a spec, analytically; ``params`` override the spec's."""
    return summarize_graph(expand(source, params), batch=batch, dtype=dtype, depth=depth, optimizer=optimizer)
