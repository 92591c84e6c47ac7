"""The pictures a training run leaves behind: learning curves and the test confusion matrix.

The curves follow the usual Keras history plots: losses and accuracy per epoch,
learning in green and validation in red, plus the learning rate, because a schedule explains
most kinks in the curves. Both pictures are ``Scene``s, so the PNG and the SVG always agree and
need nothing but Pillow; the axes reuse the comparison chart's tick rules (``draw/chart.py``).
Files are written atomically: a run folder never holds half a picture.

Robust by design, as they are drawn after every epoch: one epoch, NaN or missing values (no
validation set, a diverged loss), all-equal values and 100 classes all give a readable picture.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..draw.chart import Axis, ticks, use_log
from ..draw.scene import Circle, Group, Line, Scene, Text, rect, text_width
from ..draw.style import GRID, INK, MUTED
from ..errors import UsageError

LEARNING, VALIDATION, RATE = "#008000", "#ff0000", "#1f77b4"  # matplotlib's 'g' and 'r', as in '-g', '-r'
PANEL_W, PANEL_H = 300.0, 210.0
LEFT, GAP, TOP, BOTTOM, RIGHT = 62.0, 74.0, 92.0, 52.0, 24.0
MARKERS_UP_TO = 30  # epochs: with few points, dots show where each epoch is


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[float]  # one per epoch, NaN where there is none


@dataclass(frozen=True)
class Panel:
    heading: str
    y_title: str
    series: tuple[Series, ...]
    legend_low: bool = False  # accuracy rises: its legend goes bottom right, out of the way
    unit_range: bool = False  # accuracy: the axis stays inside [0, 1] when the data do
    log_ok: bool = False  # a log axis when the values span decades (learning rates; losses stay linear, as Keras)


def _number(value) -> float:
    """A float from whatever a metrics row holds (None, '', a numeric string): NaN when there is none."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _finite(values) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _runs(xs: list[float], ys: list[float]) -> list[list[tuple[float, float]]]:
    """Consecutive finite points: a NaN breaks the line instead of being drawn as zero."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if math.isfinite(x) and math.isfinite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _domain(values: list[float], unit_range: bool = False) -> tuple[float, float]:
    """The data's range with a margin; a range around the value when all values are equal."""
    finite = _finite(values)
    if not finite:
        return (0.0, 1.0)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    if span < 1e-12 * max(1.0, abs(hi)):
        half = abs(hi) * 0.1 or 0.5
        lo, hi = lo - half, hi + half
    else:
        lo, hi = lo - 0.06 * span, hi + 0.06 * span
    if min(finite) >= 0 and lo < 0:  # losses, accuracies and rates are never negative
        lo = 0.0
    if unit_range and max(finite) <= 1 and hi > 1:
        hi = 1.0
    return lo, hi


def _tick_text(value: float, step: float) -> str:
    if value == 0:
        return "0"
    if step > 0 and 1e-4 <= abs(value) < 1e6:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        return f"{value:.{decimals}f}"
    return f"{value:.2g}"


def _epoch_ticks(lo: float, hi: float, length: float) -> list[float]:
    return [t for t in ticks(Axis(lo, hi, False, length)) if abs(t - round(t)) < 1e-9]


def _panel_items(panel: Panel, epochs: list[float], x0: float, y0: float) -> list:
    """One panel: frame, grid, ticks, the series and their legend, at (x0, y0) top left."""
    values = [v for s in panel.series for v in s.values]
    finite_epochs = _finite(epochs)
    e_lo, e_hi = (min(finite_epochs), max(finite_epochs)) if finite_epochs else (1.0, 1.0)
    if e_hi - e_lo < 1:
        e_lo, e_hi = e_lo - 0.5, e_hi + 0.5
    pad = (e_hi - e_lo) * 0.03
    xaxis = Axis(e_lo - pad, e_hi + pad, False, PANEL_W)
    finite = _finite(values)
    log = panel.log_ok and bool(finite) and min(finite) > 0 and use_log(finite)
    if log:
        lo, hi = math.log10(min(finite)), math.log10(max(finite))
        pad_y = (hi - lo) * 0.06
        yaxis = Axis(lo - pad_y, hi + pad_y, True, PANEL_H)
    else:
        yaxis = Axis(*_domain(values, panel.unit_range), False, PANEL_H)

    def px(e: float) -> float:
        return x0 + xaxis(e)

    def py(v: float) -> float:
        return y0 + PANEL_H - yaxis(v)

    frame: list = [Text(x0, y0 - 10, panel.heading, size=13, weight="bold", colour=INK),
                   rect(x0, y0, PANEL_W, PANEL_H, fill="#fbfbfb", stroke=None)]
    y_ticks = ticks(yaxis)
    step = (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 and not log else 0.0
    for v in y_ticks:
        y = py(v)
        frame.append(Line(((x0, y), (x0 + PANEL_W, y)), stroke=GRID, width=0.8))
        frame.append(Line(((x0 - 4, y), (x0, y)), stroke=MUTED, width=1))
        frame.append(Text(x0 - 7, y + 3.5, _tick_text(v, step), size=9.5, anchor="end", colour=MUTED))
    for e in _epoch_ticks(xaxis.lo, xaxis.hi, PANEL_W):
        x = px(e)
        frame.append(Line(((x, y0), (x, y0 + PANEL_H)), stroke=GRID, width=0.8))
        frame.append(Line(((x, y0 + PANEL_H), (x, y0 + PANEL_H + 4)), stroke=MUTED, width=1))
        frame.append(Text(x, y0 + PANEL_H + 16, f"{e:.0f}", size=9.5, anchor="middle", colour=MUTED))
    frame.append(Line(((x0, y0), (x0, y0 + PANEL_H), (x0 + PANEL_W, y0 + PANEL_H)), stroke=INK, width=1.1))
    frame.append(Text(x0 + PANEL_W / 2, y0 + PANEL_H + 36, "epoch", size=11, anchor="middle", colour=INK))
    frame.append(Text(x0 - 46, y0 + PANEL_H / 2, panel.y_title + (" (log scale)" if log else ""), size=11,
                      anchor="middle", colour=INK, rotate=-90))
    items: list = [Group(tuple(frame), cls="axes", label=panel.heading)]

    shown = []
    for s in panel.series:
        ys = [v if v > 0 or not log else math.nan for v in s.values]  # the log axis takes values
        runs = _runs(epochs, ys)
        if not runs:
            continue
        shown.append(s)
        parts: list = []
        for run in runs:
            points = tuple((px(e), py(v)) for e, v in run)
            if len(points) > 1:
                parts.append(Line(points, stroke=s.colour, width=1.8))
            if len(points) == 1 or len(epochs) <= MARKERS_UP_TO:
                parts.extend(Circle(p, 2.4 if len(points) > 1 else 3.2, fill=s.colour) for p in points)
        items.append(Group(tuple(parts), cls="series", label=s.label))
    if not shown:
        items.append(Text(x0 + PANEL_W / 2, y0 + PANEL_H / 2, "no values yet", size=11, anchor="middle",
                          colour=MUTED))
    elif len(panel.series) > 1:  # one series needs no legend: the heading names it
        items.append(_legend(shown, x0 + PANEL_W - 8, y0 + (PANEL_H - 12 - 16 * len(shown) if panel.legend_low
                                                              else 8)))
    return items


def _legend(series: list[Series], right: float, top: float) -> Group:
    width = 34 + max(text_width(s.label, 10) for s in series)
    left = right - width
    parts: list = [rect(left, top, width, 6 + 16 * len(series), fill="#ffffff", stroke="#cccccc", width=0.8,
                        opacity=0.9)]
    for i, s in enumerate(series):
        y = top + 12 + 16 * i
        parts.append(Line(((left + 6, y), (left + 24, y)), stroke=s.colour, width=1.8))
        parts.append(Text(left + 29, y + 3.5, s.label, size=10, colour=INK))
    return Group(tuple(parts), cls="legend")


def curves_scene(rows: list[dict], title: str | None = None) -> Scene:
    """The learning curves of ``rows`` (one dict per epoch) as a Scene of three panels."""
    epochs = [_number(r.get("epoch", i + 1)) for i, r in enumerate(rows)]

    def column(key: str) -> list[float]:
        return [_number(r.get(key)) for r in rows]

    panels = [
        Panel("Losses", "loss", (Series("learning", LEARNING, column("train_loss")),
                                 Series("validation", VALIDATION, column("val_loss")))),
        Panel("Accuracy", "accuracy", (Series("learning", LEARNING, column("train_acc")),
                                       Series("validation", VALIDATION, column("val_acc"))),
              legend_low=True, unit_range=True),
        Panel("Learning rate", "learning rate", (Series("learning rate", RATE, column("lr")),), log_ok=True),
    ]
    heading = title or "Training curves"
    items: list = [Text(LEFT, 30, heading, size=18, weight="bold", colour=INK),
                   Text(LEFT, 50, _curves_note(rows, epochs, column), size=11, colour=MUTED)]
    for i, panel in enumerate(panels):
        items.extend(_panel_items(panel, epochs, LEFT + i * (PANEL_W + GAP), TOP))
    width = LEFT + len(panels) * PANEL_W + (len(panels) - 1) * GAP + RIGHT
    return Scene(math.ceil(width), math.ceil(TOP + PANEL_H + BOTTOM), items, title=heading)


def _curves_note(rows, epochs, column) -> str:
    n = len(rows)
    note = f"{n} epoch{'s' if n != 1 else ''}"
    val_acc = column("val_acc")
    best = max((i for i, v in enumerate(val_acc) if math.isfinite(v)), key=lambda i: val_acc[i], default=None)
    if best is not None:
        note += f"; best validation accuracy {val_acc[best]:.4f} at epoch {epochs[best]:.0f}"
    loss = _finite(column("train_loss"))
    if loss:
        note += f"; last learning loss {loss[-1]:.4g}"
    return note


# ------------------------------------------------------------------ confusion matrix

BLUE_0, BLUE_1 = (247, 251, 255), (8, 48, 107)  # white to dark blue (ColorBrewer "Blues" ends)
CELL_MAX, CELL_MIN, PLOT = 44.0, 5.0, 560.0
COUNTS_UP_TO = 30  # classes; past this a cell is too small for its count


def _shade(t: float) -> str:
    t = min(1.0, max(0.0, t))
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(BLUE_0, BLUE_1))


def _clip(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def confusion_scene(matrix: list[list[int]], classes: list[str], title: str = "Confusion matrix (test)") -> Scene:
    """Rows are true classes, columns predicted; cells shaded by their share of the row."""
    n = len(classes)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise UsageError(f"a confusion matrix needs {n}×{n} counts for {n} classes, "
                         f"found {len(matrix)} rows" + (f" of {sorted({len(r) for r in matrix})}" if matrix else ""))
    counts = [[int(v) for v in row] for row in matrix]
    cell = max(CELL_MIN, min(CELL_MAX, PLOT / n))
    label_size = max(4.0, min(11.0, cell * 0.72))
    every = max(1, math.ceil(5.0 / cell))  # with tiny cells, label every k-th class only
    names = [_clip(str(c)) for c in classes]
    name_w = max(text_width(s, label_size) for s in names)
    left = 56 + name_w + 8
    top = 78.0
    side = cell * n
    rotate = n > 8 or name_w > cell - 4  # long or many names read upwards under the columns
    bottom = 20 + (name_w if rotate else label_size) + 36
    acc_w = 70.0
    width, height = left + side + 12 + acc_w + 16, top + side + bottom

    totals = [sum(row) for row in counts]
    correct = sum(counts[i][i] for i in range(n))
    everything = sum(totals)
    items: list = [Text(left, 30, title, size=18, weight="bold", colour=INK)]
    overall = f"accuracy {100 * correct / everything:.2f}% ({correct:,} of {everything:,})" if everything else "no samples"
    note = f"{n} classes; rows: true class, columns: predicted; shade: share of the row; {overall}"
    items.append(Text(left, 50, note, size=11, colour=MUTED))
    width = max(width, left + max(text_width(note, 11), text_width(title, 18, "bold")) + 16)

    cells: list = []
    texts: list = []
    count_size = min(11.0, cell * 0.36)
    for i, row in enumerate(counts):
        for j, v in enumerate(row):
            share = v / totals[i] if totals[i] else 0.0
            x, y = left + j * cell, top + i * cell
            cells.append(rect(x, y, cell, cell, fill=_shade(share), stroke="#ffffff" if n <= 60 else None,
                              width=0.5))
            if n <= COUNTS_UP_TO:
                texts.append(Text(x + cell / 2, y + cell / 2 + count_size * 0.36, f"{v}", size=count_size,
                                  anchor="middle", colour="#ffffff" if share > 0.5 else INK,
                                  weight="bold" if i == j else "normal"))
    items.append(Group(tuple(cells), cls="cells", label=f"{n}x{n}"))
    if texts:
        items.append(Group(tuple(texts), cls="counts"))
    items.append(rect(left, top, side, side, fill=None, stroke="#999999", width=0.8))

    labels: list = []
    for i, name in enumerate(names):
        if i % every:
            continue
        centre = i * cell + cell / 2
        labels.append(Text(left - 6, top + centre + label_size * 0.36, name, size=label_size, anchor="end", colour=INK))
        if rotate:
            labels.append(Text(left + centre + label_size * 0.36, top + side + 6, name, size=label_size, anchor="end",
                               colour=INK, rotate=-90))
        else:
            labels.append(Text(left + centre, top + side + 6 + label_size, name, size=label_size, anchor="middle",
                               colour=INK))
    labels.append(Text(left + side / 2, height - 14, "predicted class", size=12, anchor="middle", colour=INK))
    labels.append(Text(20, top + side / 2, "true class", size=12, anchor="middle", colour=INK, rotate=-90))
    items.append(Group(tuple(labels), cls="labels"))

    # per-class accuracy (recall) at the right of each row
    acc_x = left + side + 12
    accuracy: list = [Text(acc_x, top - 8, "accuracy", size=10, weight="bold", colour=INK)]
    for i in range(n):
        if i % every:
            continue
        text = f"{100 * counts[i][i] / totals[i]:.1f}%" if totals[i] else "–"
        accuracy.append(Text(acc_x, top + i * cell + cell / 2 + label_size * 0.36, text, size=label_size,
                             colour=INK))
    items.append(Group(tuple(accuracy), cls="accuracy"))
    return Scene(math.ceil(width), math.ceil(height), items, title=title)


# ------------------------------------------------------------------ files


def _save(scene: Scene, path: str | os.PathLike) -> Path:
    """PNG, or SVG when the name ends in .svg; atomically (Scene.save writes through atomic_write)."""
    path = Path(path)
    return scene.save(path, "svg" if path.suffix.lower() == ".svg" else "png")


def save_curves(rows: list[dict], path: str | os.PathLike, title: str | None = None) -> Path:
    """Write the learning curves (losses, accuracy, learning rate per epoch) to ``path``."""
    return _save(curves_scene(rows, title), path)


def save_confusion(matrix: list[list[int]], classes: list[str], path: str | os.PathLike,
                   title: str = "Confusion matrix (test)") -> Path:
    """Write the confusion matrix (rows true, columns predicted) with per-class accuracy to ``path``."""
    return _save(confusion_scene(matrix, classes, title), path)
