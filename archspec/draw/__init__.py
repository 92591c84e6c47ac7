"""Stage 5 (pictures): diagrams of a spec and comparison charts, from the analysed graph.

Three styles, each a pure function from a Summary to a picture description, rendered to files:

- ``graph``: a DOT graph (built with the graphviz package) rendered by the system ``dot`` where
  there is one, else by the self-contained ``graphviz-pure`` engine (``graph.py``);
- ``boxes``: layered 3-D boxes, as LeNet and VGG figures draw them (``boxes.py``), drawn as a ``Scene``;
- ``compare``: a Canziani-style bubble chart of several specs (``chart.py``), also a ``Scene``.

A ``Scene`` (``scene.py``) is a list of plain shapes written out as SVG text or, through Pillow,
as PNG. None of this imports torch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UsageError

STYLES = ("graph", "boxes")


def output_format(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise UsageError(f"cannot write '{path}': choose a file ending in " + ", ".join(f".{a}" for a in allowed))
    return suffix


def draw(source, output: str | os.PathLike, style: str = "graph", depth: int | None = None, rankdir: str = "TB",
         shapes: bool = True, legend: bool = True, fold: bool = True, **params: Any) -> Path:
    """Draw a spec to ``output`` (.svg, .png, .pdf or .dot for graphs; .svg or .png for boxes)."""
    from .. import pipeline

    if style not in STYLES:
        raise UsageError(f"unknown style '{style}'; choose one of {', '.join(STYLES)}")
    summary = pipeline.summarize(source, **params)
    if style == "graph":
        from .graph import render_dot, to_dot

        fmt = output_format(output, ("svg", "png", "pdf", "dot"))
        dot = to_dot(summary, depth=depth, rankdir=rankdir, shapes=shapes, legend=legend, fold=fold)
        return render_dot(dot, output, fmt)
    from .boxes import boxes_scene

    fmt = output_format(output, ("svg", "png"))
    return boxes_scene(summary, depth=depth, legend=legend).save(output, fmt)


def compare(sources, output: str | os.PathLike | None = None, **params: Any):
    """Bubble chart of several specs (x GMACs, y top-1 or parameters, area ~ parameters).

    Returns the rows (one per spec) that the chart shows; writes the chart when ``output`` is given.
    """
    from .. import pipeline
    from .chart import chart_scene, compare_rows

    rows = compare_rows([pipeline.summarize(s, **params) for s in sources])
    if output is not None:
        chart_scene(rows).save(output, output_format(output, ("svg", "png")))
    return rows
