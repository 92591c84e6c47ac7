"""Stage 5 (pictures): diagrams of a spec and comparison charts, from the analysed graph.

Three styles, each a pure function from a Summary to a picture description:

- ``graph``: a DOT graph (built with the graphviz package), laid out by the self-contained
  ``graphviz-pure`` engine (or the system ``dot``) and drawn by archspec (``graph.py``, ``layout.py``);
- ``boxes``: layered 3-D boxes, as in the VGG and LeNet papers' figures (``boxes.py``);
- ``compare``: a Canziani-style bubble chart of several specs (``chart.py``).

Each diagram is a ``Scene`` (``scene.py``): plain shapes written out as SVG text or, through
Pillow, as PNG, in the bundled DejaVu Sans. ``draw`` returns a ``Picture`` (``picture.py``), which
shows itself in Jupyter and saves itself to a file. Charts with axes (``compare``, the tile grids
of ``inspect``) are matplotlib figures (``figure.py``), imported only when a chart is drawn. None
of this imports torch.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

from ..errors import UsageError

STYLES = ("graph", "boxes")
FORMATS = {"graph": ("svg", "png", "pdf", "dot"), "boxes": ("svg", "png")}


def output_format(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise UsageError(f"cannot write '{path}': choose a file ending in " + ", ".join(f".{a}" for a in allowed))
    return suffix


def draw(source, output: str | os.PathLike | None = None, style: str = "graph", depth: int | None = None,
         rankdir: str = "TB", shapes: bool = True, legend: bool = True, fold: bool = True, compact: bool = True,
         wrap: int | str = "auto", scale: float = 2, rows: int | None = None, **params: Any):
    """Draw a spec; returns a ``Picture`` (shown inline in Jupyter; ``.save(path)``), written to
    ``output`` too when one is given (.svg, .png, .pdf or .dot for graphs; .svg or .png for boxes).
    ``rows``: the number of rows a boxes picture wraps into (None: the number that fits a slide best);
    a graph wraps with ``wrap``."""
    from .. import pipeline
    from .picture import check_scale

    if style not in STYLES:
        raise UsageError(f"unknown style '{style}'; choose one of {', '.join(STYLES)}")
    if output is not None:
        output_format(output, FORMATS[style])
    check_scale(scale)
    if rows is not None and style != "boxes":
        raise UsageError("rows (--rows) is for the boxes style; a graph wraps with wrap (--wrap)")
    summary = pipeline.summarize(source, **params)
    if style == "graph":
        from .graph import graph_picture

        picture = graph_picture(summary, depth=depth, rankdir=rankdir, shapes=shapes, legend=legend, fold=fold,
                                compact=compact, wrap=wrap)
    else:
        from .boxes import boxes_scene
        from .picture import Picture

        picture = Picture(boxes_scene(summary, depth=depth, legend=legend, rows=rows))
    if output is not None:
        picture.save(output, scale=scale)
    return picture


def compare(sources, output: str | os.PathLike | None = None, **params: Any):
    """Bubble chart of several specs (x GMACs, y top-1 or parameters, area ~ parameters).

    Returns a ``Comparison``: the rows (one per spec) the chart shows, as a list, which also shows
    the chart in Jupyter; writes the chart when ``output`` is given.
    """
    from .. import pipeline
    from .chart import Comparison, compare_rows

    if output is not None:
        output_format(output, ("svg", "png"))
    rows = Comparison(compare_rows([pipeline.summarize(s, **params) for s in sources]))
    if output is not None:
        rows.picture().save(output)
    return rows


class _CallableModule(types.ModuleType):
    """``archspec.draw`` is this package and, called, its ``draw``: ``archspec.draw(spec)`` works."""

    def __call__(self, *args, **kwargs):
        return draw(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
