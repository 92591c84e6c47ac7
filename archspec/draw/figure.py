"""matplotlib figures as archspec pictures: made without pyplot, written atomically, shown in Jupyter.

Charts with axes (the comparison chart, the tile grids of ``archspec inspect``, a training run's
curves) are drawn with matplotlib: its locators choose round tick steps and its formatters print
them exactly. matplotlib is imported here, lazily, by those pictures only: ``validate``,
``summary`` and ``draw`` never load it. Text is set in DejaVu Sans, the font matplotlib ships
(the family bundled for the diagrams), and an SVG carries its text as outlines
(``svg.fonttype: path``) with the words in comments beside them, so it looks the same on a machine
with no fonts installed and can still be searched. Pictures are reproducible: no date in the
metadata, a fixed salt for SVG ids.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write

CSS_DPI = 96  # an SVG's points are shown at 96 pixels per inch; a PNG at scale s has 96·s
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
STYLE = {"font.family": "DejaVu Sans", "svg.fonttype": "path", "svg.hashsalt": "archspec", "pdf.fonttype": 42}
METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}


def new_figure(width: float, height: float, dpi: float = 100, constrained: bool = True):
    """A matplotlib Figure of ``width`` × ``height`` inches, drawn without a display or pyplot's state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained" if constrained else None)
    FigureCanvasAgg(figure)
    return figure


def style():
    """The rc settings every archspec figure is drawn and saved under (a context manager)."""
    from matplotlib import rc_context

    return rc_context(STYLE)


def figure_bytes(figure, kind: str, dpi: float | None = None, metadata: dict | None = None) -> bytes:
    """The figure written as ``kind`` (png, svg or pdf) into memory."""
    out = io.BytesIO()
    with style():
        figure.savefig(out, format=kind, dpi=dpi or figure.dpi, metadata={**METADATA[kind], **(metadata or {})})
    return out.getvalue()


def save_figure(figure, path: str | os.PathLike, dpi: float | None = None, metadata: dict | None = None) -> Path:
    """Write the figure as its suffix says (.png, .svg, .pdf; anything else as PNG), atomically."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower(), "png")
    data = figure_bytes(figure, kind, dpi, metadata)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


class FigurePicture:
    """A matplotlib figure as a picture: inline SVG (and PNG) in Jupyter, ``save(path, scale)``.

    ``scale`` is PNG pixels per CSS pixel, as for the diagrams (``picture.Picture``).
    """

    formats = ("svg", "png")

    def __init__(self, figure, title: str = ""):
        self.figure = figure
        self.title = title
        self.path: Path | None = None

    def __repr__(self) -> str:
        where = f", saved to {str(self.path)!r}" if self.path else ""
        return f"<Picture {self.title!r}{where}>"

    @property
    def width(self) -> float:
        """In CSS pixels, like a scene's."""
        return self.figure.get_figwidth() * CSS_DPI

    @property
    def height(self) -> float:
        return self.figure.get_figheight() * CSS_DPI

    def to_svg(self) -> str:
        return figure_bytes(self.figure, "svg").decode("utf-8")

    def to_png(self, scale: float = 2.0) -> bytes:
        from .picture import check_scale

        return figure_bytes(self.figure, "png", dpi=CSS_DPI * check_scale(scale))

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_png_(self) -> bytes:
        return self.to_png(1.0)

    def save(self, path: str | os.PathLike, scale: float = 2.0) -> Path:
        from .picture import check_scale

        path = Path(path)
        if path.suffix.lower().lstrip(".") not in self.formats:
            raise UsageError(f"cannot write '{path}': choose a file ending in "
                             + ", ".join(f".{f}" for f in self.formats))
        self.path = save_figure(self.figure, path, dpi=CSS_DPI * check_scale(scale))
        return self.path
