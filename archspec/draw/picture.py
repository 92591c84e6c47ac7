"""A drawn picture as an object: it shows itself in Jupyter and saves itself to a file.

``archspec.draw(spec)`` returns a ``Picture``. In a notebook it displays inline (``_repr_svg_``,
with ``_repr_png_`` for front ends that take no SVG); ``save(path)`` writes .svg or .png (and, for
the graph style, .dot, or .pdf through the system Graphviz). Nothing is drawn twice: the scene is
made once, and each format is written from it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from .scene import Scene

DEFAULT_SCALE = 2.0  # PNG pixels per CSS pixel: sharp on a projector and a high-density screen


def check_scale(scale) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.25 <= scale <= 8:
        raise UsageError(f"scale must be a number from 0.25 to 8, found {scale!r}")
    return float(scale)


class Picture:
    """A scene (and, for graphs, the DOT text it was laid out from), drawn at most once."""

    def __init__(self, scene: Scene | None = None, dot: str | None = None, formats: tuple[str, ...] = ("svg", "png"),
                 lazy_scene: Callable[[], Scene] | None = None,
                 write_other: Callable[[Path, str], Path] | None = None):
        if scene is None and lazy_scene is None:
            raise ValueError("a picture needs a scene or a way to make one")
        self._scene, self._lazy = scene, lazy_scene
        self.dot = dot
        self.formats = formats
        self._write_other = write_other  # formats not drawn from the scene (.dot, .pdf of a graph)
        self.path: Path | None = None  # where it was last saved

    @property
    def scene(self) -> Scene:
        if self._scene is None:
            assert self._lazy is not None, "__init__ refuses a picture with neither a scene nor a way to make one"
            self._scene = self._lazy()
        return self._scene

    def __repr__(self) -> str:
        where = f", saved to {str(self.path)!r}" if self.path else ""
        title = self._scene.title if self._scene is not None else "not drawn yet"
        return f"<Picture {title!r}{where}>"

    @property
    def width(self) -> float:
        return self.scene.width

    @property
    def height(self) -> float:
        return self.scene.height

    def to_svg(self) -> str:
        return self.scene.to_svg()

    def to_png(self, scale: float = DEFAULT_SCALE) -> bytes:
        return self.scene.to_png_bytes(check_scale(scale))

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_png_(self) -> bytes:
        return self.to_png(1.0)

    def save(self, path: str | os.PathLike, scale: float = DEFAULT_SCALE) -> Path:
        """Write the picture; the format is the file's suffix (``formats``). Atomic: a failed write
        leaves any older file whole."""
        path = Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in self.formats:
            raise UsageError(f"cannot write '{path}': choose a file ending in "
                             + ", ".join(f".{f}" for f in self.formats))
        if fmt not in ("svg", "png") and self._write_other is not None:
            self.path = self._write_other(path, fmt)
        else:
            self.path = self.scene.save(path, fmt, scale=check_scale(scale))
        return self.path
