"""The pictures a training run leaves behind: learning curves and the test confusion matrix, drawn with matplotlib.

The curves are the Keras history plot people know: loss and accuracy per epoch, training against
validation, plus the learning rate, because a schedule explains most kinks in the curves. The axes
are matplotlib's: its tick locators choose round steps and its formatters print them exactly, so a
tick at 0.25 reads "0.25" (hand-written axis code printed "0.2"). Colours are from the Okabe–Ito
palette (Okabe & Ito, 2008, "Color Universal Design"), told apart by people with any common
colour-vision deficiency, and the two series differ by line style and marker too. The subtitle
names the best epoch by the rule the trainer and the terminal use (``monitor.py``).

PNG, SVG or PDF by the file's suffix; written atomically: a run folder never holds half a picture.
Robust by design, as they are drawn while a run goes on (session.CurvesRedraw): one epoch, NaN or missing values (no
validation set, a diverged loss), all-equal values and 100 classes all give a readable picture.
matplotlib is used through its object API (no pyplot state), so drawing is safe in any thread and
needs no display.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import UsageError
from ..files import atomic_write
from .monitor import best_epoch as replay_best_epoch

TRAINING, VALIDATION, RATE = "#0072B2", "#D55E00", "#000000"  # Okabe–Ito blue, vermillion, black
MARKERS_UP_TO = 30  # epochs: with few points, markers show where each epoch is
COUNTS_UP_TO = 30  # classes; past this a cell is too small for its count
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
METRIC_WORDS = {"val_loss": "validation loss", "val_acc": "validation accuracy", "val_top5": "validation top-k",
                "train_loss": "training loss"}


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


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # draws without a display, and without pyplot's global state
    return figure


def _save(figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower(), "png")
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=kind, dpi=150))
    return path


# ------------------------------------------------------------------ learning curves


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.grid(True, color="#dddddd", linewidth=0.6)


def _plot(ax, epochs, values, label, colour, dashed=False) -> bool:
    if not _finite(values):
        return False
    ax.plot(epochs, values, label=label, color=colour, linestyle="--" if dashed else "-", linewidth=1.8,
            marker=("s" if dashed else "o") if len(epochs) <= MARKERS_UP_TO else None, markersize=4)
    return True


def _no_values(ax) -> None:
    ax.text(0.5, 0.5, "no values yet", transform=ax.transAxes, ha="center", va="center", color="#777777")


def curves_figure(rows: list[dict], title: str | None = None, best_epoch: int | None = None,
                  metric: str = "val_loss"):
    """The learning curves of ``rows`` (one dict per epoch): loss, accuracy and learning rate panels.

    ``best_epoch`` is the trainer's; without it the trainer's rule is replayed over ``rows``
    with ``metric``.
    """
    from matplotlib.ticker import PercentFormatter

    epochs = [_number(r.get("epoch", i + 1)) for i, r in enumerate(rows)]

    def column(key: str) -> list[float]:
        return [_number(r.get(key)) for r in rows]

    figure = _figure(13, 4.2)
    loss_ax, acc_ax, lr_ax = figure.subplots(1, 3)
    for ax, heading, ylabel, key, percent in ((loss_ax, "Loss", "loss", "loss", False),
                                               (acc_ax, "Accuracy", "accuracy", "acc", True)):
        ax.set_title(heading, loc="left", fontweight="bold")
        ax.set_ylabel(ylabel)
        _epoch_axis(ax)
        drawn = [_plot(ax, epochs, column(f"train_{key}"), "training", TRAINING),
                 _plot(ax, epochs, column(f"val_{key}"), "validation", VALIDATION, dashed=True)]
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if any(drawn):
            ax.legend(loc="lower right" if percent else "upper right", frameon=True)
        else:
            _no_values(ax)
    lr_ax.set_title("Learning rate", loc="left", fontweight="bold")
    lr_ax.set_ylabel("learning rate")
    _epoch_axis(lr_ax)
    rates = column("lr")
    if _plot(lr_ax, epochs, rates, "learning rate", RATE):
        positive = [v for v in _finite(rates) if v > 0]
        if positive and max(positive) / min(positive) >= 10:  # spans a decade: a log axis reads it
            lr_ax.set_yscale("log")
            lr_ax.set_ylabel("learning rate (log scale)")
    else:
        _no_values(lr_ax)

    best = best_epoch if best_epoch is not None else replay_best_epoch(rows, metric)
    if best is not None:
        for ax in (loss_ax, acc_ax):
            ax.axvline(best, color="#777777", linestyle=":", linewidth=1)
    figure.suptitle(title or "Training curves", x=0.01, ha="left", fontweight="bold", fontsize=14)
    figure.text(0.01, 0.90, _curves_note(rows, column, best, metric), ha="left", fontsize=9, color="#555555",
                transform=figure.transFigure)
    figure.get_layout_engine().set(rect=(0, 0, 1, 0.88))
    return figure


def _curves_note(rows, column, best: int | None, metric: str) -> str:
    n = len(rows)
    note = f"{n} epoch{'s' if n != 1 else ''}"
    if best is not None:
        row = next((r for r in rows if _number(r.get("epoch")) == best), None)
        watched = metric if row is not None and math.isfinite(_number(row.get(metric))) else "train_loss"
        value = _number(row.get(watched)) if row is not None else math.nan
        shown = f" {value:.4f}" if math.isfinite(value) else ""
        note += f"; best epoch {best} (by {METRIC_WORDS.get(watched, watched)}{shown}, dotted line)"
    loss = _finite(column("train_loss"))
    if loss:
        note += f"; last training loss {loss[-1]:.4g}"
    return note


def save_curves(rows: list[dict], path: str | os.PathLike, title: str | None = None, best_epoch: int | None = None,
                metric: str = "val_loss") -> Path:
    """Write the learning curves (losses, accuracy, learning rate per epoch) to ``path`` (.png, .svg, .pdf)."""
    return _save(curves_figure(rows, title, best_epoch, metric), path)


# ------------------------------------------------------------------ confusion matrix


def _check_matrix(matrix, classes) -> list[list[int]]:
    n = len(classes)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise UsageError(f"a confusion matrix needs {n}×{n} counts for {n} classes, "
                         f"found {len(matrix)} rows" + (f" of {sorted({len(r) for r in matrix})}" if matrix else ""))
    return [[int(v) for v in row] for row in matrix]


def _clip(label: str, limit: int = 18) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def confusion_figure(matrix: list[list[int]], classes: list[str], title: str = "Confusion matrix (test)"):
    """Rows are true classes, columns predicted; cells shaded by their share of the row (the class's recall
    on the diagonal), counts written in cells up to 30 classes, per-class accuracy at the right."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, MaxNLocator

    counts = _check_matrix(matrix, classes)
    n = len(classes)
    totals = [sum(row) for row in counts]
    shares = np.array([[v / t if t else 0.0 for v in row] for row, t in zip(counts, totals)])
    side = min(11.0, max(4.5, 0.32 * n + 2.5))
    figure = _figure(side + 1.6, side + 0.8)
    ax = figure.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    names = [_clip(str(c)) for c in classes]
    if n <= 40:
        ticks = list(range(n))
    else:  # label a readable subset; MaxNLocator picks round class indices
        ticks = [int(t) for t in MaxNLocator(nbins=20, integer=True).tick_values(0, n - 1) if 0 <= t < n]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([names[t] for t in ticks], rotation=90 if n > 8 or max(map(len, names)) > 4 else 0)
    ax.set_yticklabels([names[t] for t in ticks])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= COUNTS_UP_TO:
        size = max(5, min(10, 160 / n))
        for i, row in enumerate(counts):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=size,
                        color="white" if shares[i, j] > 0.5 else "#222222", gid="count")
    accuracy_axis = ax.secondary_yaxis("right")
    accuracy_axis.yaxis.set_major_locator(FixedLocator(ticks))
    accuracy_axis.set_yticklabels([f"{100 * counts[t][t] / totals[t]:.1f}%" if totals[t] else "–" for t in ticks])
    accuracy_axis.set_ylabel("accuracy of the class")
    figure.colorbar(image, ax=ax, shrink=0.6, pad=0.12, label="share of the true class")
    correct, everything = sum(counts[i][i] for i in range(n)), sum(totals)
    overall = f"accuracy {100 * correct / everything:.2f}% ({correct:,} of {everything:,})" if everything else \
        "no samples"
    ax.set_title(f"{title}\n{n} classes; {overall}", loc="left", fontsize=11)
    return figure


def save_confusion(matrix: list[list[int]], classes: list[str], path: str | os.PathLike,
                   title: str = "Confusion matrix (test)") -> Path:
    """Write the confusion matrix (rows true, columns predicted) with per-class accuracy to ``path``."""
    return _save(confusion_figure(matrix, classes, title), path)
