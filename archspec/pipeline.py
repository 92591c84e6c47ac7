"""The pipeline as functions: load, check, expand, summarize, validate, build.

Internal modules call these; the public facade ``archspec.api`` re-exports them.
"""
from __future__ import annotations

import warnings
from typing import Any

from .errors import ArchspecError, Location, Problem, SpecError, SpecWarning, UsageError, file_order
from .expand import expand as _expand
from .graph import Graph
from .schema import check_document
from .spec import Spec, load
from .summary import Summary, summarize_graph



def check(spec: Spec) -> list[Problem]:
    """Schema problems of a loaded spec and every block library it imports."""
    problems: list[Problem] = []
    for document in spec.documents:
        problems.extend(check_document(document))
    return problems


# keys holding lists of items or definitions: a problem with one of them says nothing of the others
_CONTAINERS = {"layers", "body", "blocks", "residual", "shortcut", "parallel", "params", "imports"}


def _same_part(a: Location, b: Location) -> bool:
    """Whether two locations point into one part of one document (one path contains the other)."""
    shorter = min(len(a.key_path), len(b.key_path))
    if a.file != b.file or shorter == 0 or a.key_path[:shorter] != b.key_path[:shorter]:
        return False
    return a.key_path[shorter - 1] not in _CONTAINERS and not isinstance(a.key_path[shorter - 1], int)


def expand(source, params: dict[str, Any] | None = None) -> Graph:
    """Load, schema-check and unroll a spec into a Graph with shapes; raises SpecError."""
    spec = load(source)
    problems = check(spec)
    try:
        graph = _expand(spec, params or {})
    except UsageError:
        raise
    except ArchspecError as exc:
        # The schema pass and expansion can see the same mistake: keep the schema's message for
        # each part of the document it already reported on.
        reported = [p.location for p in problems if p.location]
        problems += [p for p in exc.problems
                     if not any(p.location == r or (p.location and _same_part(p.location, r)) for r in reported)]
    else:
        if problems:
            problems += graph.warnings  # beside the schema's errors, as beside expansion's
    if problems:
        problems.sort(key=file_order)
        raise SpecError(problems)
    for problem in graph.warnings:  # Python's warnings: every command and API caller sees them
        warnings.warn(SpecWarning(problem), stacklevel=2)
    return graph


def validate(source, params: dict[str, Any] | None = None) -> list[Problem]:
    """Every problem in a spec (YAML, schema, names, shapes), located; empty when it is valid.

    A valid spec's warnings are issued as ``SpecWarning``s; an invalid one's are among its problems
    (``problem.severity == "warning"``), in file order with the errors.
    """
    try:
        spec = load(source)
        if "layers" not in spec.data and "blocks" in spec.data:  # a block library: nothing to unroll alone
            return check(spec)
        expand(spec, params)
    except UsageError:
        raise  # a wrong argument (an unknown --set name), not a problem of the spec: exit code 2
    except ArchspecError as exc:
        return list(exc.problems)
    return []


def summarize(source, batch: int = 1, dtype: str = "float32", depth: int | None = None,
              optimizer: str = "adam", **params: Any) -> Summary:
    """Per-layer figures and totals of a spec, analytically; ``params`` override the spec's."""
    return summarize_graph(expand(source, params), batch=batch, dtype=dtype, depth=depth, optimizer=optimizer)


def build(source, seed: int | None = None, **params: Any):
    """A torch.fx.GraphModule computing the spec (imports torch); ``params`` override the spec's.

    ``seed`` makes the initial weights reproducible without touching torch's global RNG.
    """
    from .compiler import compile_graph

    return compile_graph(expand(source, params), seed=seed)
