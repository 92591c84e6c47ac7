"""Raster tile grids: many small images (filters, feature maps, image patches) in one labelled PNG.

What a filter or a feature map looks like depends on how its numbers become grey levels, so
each tile says how (``Tile.scale``) and is normalised on its own: a weak filter is as visible
as a strong one, which is what published pictures of learned filters do (Zeiler & Fergus, 2014). Tiny tiles (3×3
or 5×5 kernels) are enlarged by whole factors with nearest-neighbour sampling, so every weight
stays a crisp square; large ones are shrunk smoothly. The grid is drawn with matplotlib, like
every chart (``figure.py``): each tile is copied in as pixels (``figimage``, not vector shapes: a
64×64 map as 4096 rectangles would be absurd), the text is set in DejaVu Sans, the family of every
other picture, and the layout is archspec's own, in whole pixels.

Each PNG records its layout in text chunks (``archspec.tiles``, ``archspec.grid``), and the
returned ``Picture`` gives every tile's box, so tests and tools can check what was drawn.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UsageError
from .scene import text_width
from .style import INK, MUTED

SCALES = ("minmax", "auto", "abs", "signed", "unit")
GAP, LABEL, MARGIN = 6, 15, 14  # pixels between tiles, under each tile for its label, around the grid
MAX_WIDTH = 1800  # pixels: a grid wider than a screen is shrunk tile by tile
MIN_TEXT_WIDTH = 520  # pixels: a narrow grid still gets a readable line of subtitle
MAX_PIXELS = 40_000_000  # the picture is refused beyond this, before anything is allocated
BACKGROUND, FRAME, PADDING_GREY = "#ffffff", "#c8c8c8", 0.5
DPI = 72  # one point per pixel: font sizes and the layout count the same units


@dataclass
class Tile:
    """One image of a grid.

    pixels: (H, W) or (H, W, 3), any numbers. scale says how they become 0..255:
      minmax  the tile's own min -> black, max -> white (filters);
      auto    0 -> black, max -> white when nothing is negative (maps after a ReLU: a dead map
              stays black), else minmax;
      abs     |v| / max|v|: the strength of a response whatever its sign (edge maps);
      signed  blue for negative, white for 0, red for positive, scaled by max|v|;
      unit    already in [0, 1] (images, patches), clipped.
    abs and signed scale by the 99.5th percentile of |v|, so one hot pixel does not darken the rest.
    """

    pixels: Any
    label: str = ""
    scale: str = "minmax"


@dataclass
class Grid:
    tiles: list[Tile]
    columns: int
    title: str = ""
    subtitle: str = ""
    row_labels: Sequence[str] = ()  # one per row, at the left
    column_labels: Sequence[str] = ()  # one per column, above the first row
    tile_px: int | None = None  # the long side of each tile's box; default from the tiles' size


@dataclass(frozen=True)
class Picture:
    """What was written: where, and the grid's layout (boxes are (left, top, right, bottom) pixels)."""

    path: Path
    rows: int
    columns: int
    tiles: int
    boxes: tuple[tuple[int, int, int, int], ...] = field(repr=False)
    labels: tuple[str, ...] = field(repr=False)
    size: tuple[int, int] = (0, 0)


# ------------------------------------------------------------------ values -> colours


def _robust_max(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 0.0
    top = float(np.percentile(finite, 99.5)) if finite.size > 200 else float(finite.max())
    return top or float(finite.max())


def to_rgb(pixels: Any, scale: str = "minmax") -> np.ndarray:
    """A tile's values as an (H, W, 3) uint8 image (see ``Tile`` for the scales)."""
    if scale not in SCALES:
        raise ValueError(f"unknown tile scale {scale!r}; choose one of {', '.join(SCALES)}")
    a = np.asarray(pixels, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"a tile is (H, W) or (H, W, 3), found shape {a.shape}")
    a = np.where(np.isfinite(a), a, 0.0)  # NaN and inf show as 0, not as garbage
    if scale == "unit":
        unit = np.clip(a, 0.0, 1.0)
    elif scale == "signed":
        top = _robust_max(a)
        v = np.clip(a / top, -1.0, 1.0) if top > 0 else np.zeros_like(a)
        if v.ndim == 3:
            v = v.mean(axis=2)
        neg, pos = np.clip(-v, 0, 1), np.clip(v, 0, 1)
        # white at 0, towards red (0.8, 0.1, 0.1) for positive and blue (0.1, 0.25, 0.8) for negative
        rgb = np.stack([1 - 0.9 * neg - 0.2 * pos, 1 - 0.75 * neg - 0.9 * pos, 1 - 0.2 * neg - 0.9 * pos], axis=-1)
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    elif scale == "abs":
        top = _robust_max(a)
        unit = np.clip(np.abs(a) / top, 0, 1) if top > 0 else np.zeros_like(a)
    else:
        lo, hi = float(a.min()), float(a.max())
        if scale == "auto" and lo >= 0:
            lo = 0.0
        if hi - lo > 1e-12 * max(1.0, abs(hi), abs(lo)):
            unit = (a - lo) / (hi - lo)
        else:  # a flat tile: black when it is all zero (a dead unit), else mid-grey
            unit = np.full_like(a, 0.0 if scale == "auto" and hi == 0 else 0.5)
    if unit.ndim == 2:
        unit = np.repeat(unit[:, :, None], 3, axis=2)
    return (unit * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------ layout and drawing


def _fit(h: int, w: int, box_w: int, box_h: int) -> tuple[int, int, bool]:
    """(width, height, nearest) of a tile drawn in a box: whole-number enlargement, or a smooth shrink."""
    if h <= box_h and w <= box_w:
        factor = max(1, min(box_w // w, box_h // h))
        return w * factor, h * factor, True
    ratio = min(box_w / w, box_h / h)
    return max(1, round(w * ratio)), max(1, round(h * ratio)), False


def _box(tiles: list[Tile], columns: int, tile_px: int | None) -> tuple[int, int]:
    """Width and height of every tile's box: the largest tile's aspect, long side ``tile_px``."""
    shapes = [np.shape(t.pixels)[:2] for t in tiles] or [(1, 1)]
    h = max(s[0] for s in shapes)
    w = max(s[1] for s in shapes)
    if tile_px is None:
        side = max(h, w)
        tile_px = 72 if side <= 12 else min(256, side * math.ceil(96 / side))
    tile_px = max(16, min(tile_px, (MAX_WIDTH - 2 * MARGIN) // max(1, columns) - GAP))
    long = max(h, w)
    return max(8, round(tile_px * w / long)), max(8, round(tile_px * h / long))


def _fitted(text: str, size: int, width: float, weight: str = "normal") -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if text_width(text, size, weight) <= width:
        return text
    while text and text_width(text + "…", size, weight) > width:
        text = text[:-1]
    return text + "…"


def _wrap(text: str, size: int, width: float) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` pixels."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return [_fitted(line, size, width) for line in lines]


def render(grid: Grid):
    """The grid as a matplotlib figure (one point per pixel), and each tile's box (left, top, right, bottom).

    The layout is in whole pixels: tiles are placed with ``figimage``, which copies pixels
    without resampling, so an enlarged 3×3 kernel stays nine crisp squares.
    """
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import IdentityTransform

    from .figure import new_figure, style

    tiles = grid.tiles
    columns = max(1, min(grid.columns, len(tiles) or 1))
    rows = max(1, math.ceil(len(tiles) / columns))
    box_w, box_h = _box(tiles, columns, grid.tile_px)
    row_w = 0
    if grid.row_labels:
        row_w = int(max(text_width(r, 12) for r in grid.row_labels)) + 12
    label_h = LABEL if any(t.label for t in tiles) else 0
    width = MARGIN * 2 + row_w + columns * box_w + (columns - 1) * GAP
    if grid.title:
        width = max(width, MARGIN * 2 + math.ceil(text_width(grid.title, 17, "bold")))
    width = max(width, min(MIN_TEXT_WIDTH, MARGIN * 2 + math.ceil(text_width(grid.subtitle, 12))))
    subtitle = _wrap(grid.subtitle, 12, width - 2 * MARGIN) if grid.subtitle else []
    head = MARGIN + (32 if grid.title else 0) + 16 * len(subtitle) + (6 if subtitle else 0)
    head += LABEL if grid.column_labels else 0
    height = head + rows * (box_h + label_h) + (rows - 1) * GAP + MARGIN
    if width * height > MAX_PIXELS:
        raise UsageError(f"a grid of {len(tiles)} tiles would be {width}×{height} pixels: show fewer tiles")
    with style():
        figure = new_figure(width / DPI, height / DPI, dpi=DPI, constrained=False)
        figure.patch.set_facecolor(BACKGROUND)

        def text(x, y, words, size, colour=INK, ha="left", va="top", weight="normal"):
            # figure pixels from the top left, as the layout counts them
            figure.text(x, height - y, words, fontsize=size, color=colour, ha=ha, va=va, fontweight=weight,
                        transform=IdentityTransform())

        y = MARGIN
        if grid.title:
            text(MARGIN, y, grid.title, 17, weight="bold")
            y += 26
        for line in subtitle:
            text(MARGIN, y, line, 12, MUTED)
            y += 16
        for c, label in enumerate(grid.column_labels[:columns]):
            centre = MARGIN + row_w + c * (box_w + GAP) + box_w // 2
            text(centre, head - 3, _fitted(label, 11, box_w + GAP - 2), 11, ha="center", va="bottom")
        boxes = []
        for i, tile in enumerate(tiles):
            r, c = divmod(i, columns)
            left = MARGIN + row_w + c * (box_w + GAP)
            top = head + r * (box_h + label_h + GAP)
            rgb = to_rgb(tile.pixels, tile.scale)
            w, h, nearest = _fit(rgb.shape[0], rgb.shape[1], box_w, box_h)
            x0, y0 = left + (box_w - w) // 2, top + (box_h - h) // 2
            figure.figimage(_resized(rgb, w, h, nearest), xo=x0, yo=height - y0 - h, origin="upper", resize=False)
            figure.patches.append(Rectangle((x0 - 1.5, height - y0 - h - 0.5), w + 2, h + 2, fill=False,
                                            edgecolor=FRAME, linewidth=1, transform=IdentityTransform(),
                                            antialiased=False))
            boxes.append((x0, y0, x0 + w, y0 + h))
            if tile.label:
                text(left + box_w // 2, top + box_h + 3, _fitted(tile.label, 11, box_w + GAP - 2), 11, ha="center")
        for r, label in enumerate(grid.row_labels[:rows]):
            top = head + r * (box_h + label_h + GAP)
            text(MARGIN, top + box_h // 2, label, 12, va="center")
    return figure, boxes, rows, columns


def _resized(rgb: np.ndarray, w: int, h: int, nearest: bool) -> np.ndarray:
    """The tile at w×h pixels: whole-number enlargement by repeating pixels, else a smooth (Lanczos) shrink."""
    if (h, w) == rgb.shape[:2]:
        return rgb
    if nearest:
        return np.repeat(np.repeat(rgb, h // rgb.shape[0], axis=0), w // rgb.shape[1], axis=1)
    from PIL import Image

    return np.asarray(Image.fromarray(rgb, "RGB").resize((w, h), Image.Resampling.LANCZOS))


def check_output(path: str | os.PathLike) -> Path:
    """The output path, refused at once (before any work) unless it ends in .png."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"cannot write '{path}': these pictures are written as .png")
    return path


def save_grid(grid: Grid, path: str | os.PathLike) -> Picture:
    """Write the grid as a PNG (atomically), its layout in the file's text chunks; returns the layout."""
    from .figure import save_figure

    path = check_output(path)
    figure, boxes, rows, columns = render(grid)
    info = {"archspec.tiles": str(len(grid.tiles)), "archspec.grid": f"{rows}x{columns}"}
    if grid.title:
        info["Title"] = grid.title
    save_figure(figure, path, dpi=DPI, metadata=info)
    size = (round(figure.get_figwidth() * DPI), round(figure.get_figheight() * DPI))
    return Picture(path, rows, columns, len(grid.tiles), tuple(boxes), tuple(t.label for t in grid.tiles), size)
