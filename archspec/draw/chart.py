"""``archspec compare``: a Canziani-style bubble chart of several specs, drawn with matplotlib.

Encoding (after Canziani, Paszke & Culurciello, "An Analysis of Deep Neural Network Models
for Practical Applications", 2016, figure 2):

- x: GMACs per image (multiply-accumulates at batch 1), on a log scale when the largest is
  more than ``LOG_RANGE`` (30) times the smallest, else linear;
- y: top-1 accuracy (the ``top1`` the specs' metadata report) when every spec has one; otherwise
  the number of parameters (log scale past the same 30× range), and the chart says so;
- bubble area ∝ parameters: radius = ``MAX_RADIUS`` · √(params / largest params) points, the
  largest bubble 30 points; a dot marks every centre, so even a tiny network's bubble is
  findable; two reference bubbles (powers of ten) in the legend give the scale;
- one colour per spec; each bubble carries its spec's name, nudged to the free spot nearest it
  (with a leader line when it had to move away).

The axes, ticks and their labels are matplotlib's (``figure.py``); archspec chooses only the
domain, so that every bubble lies inside the plot, and where the names go.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import UsageError
from ..render import short
from ..summary import Summary
from .scene import Text, text_box
from .style import GRID, INK, MUTED, darker, palette

LOG_RANGE = 30.0
MAX_RADIUS = 30.0  # points
# the figure, in points (1/72 inch): a fixed plot area, so a bubble's radius in points is known in data units
LEFT, TOP, PLOT_W, PLOT_H, BOTTOM, PANEL = 66.0, 62.0, 570.0, 360.0, 52.0, 170.0
LABEL_SIZE = 8.5


@dataclass(frozen=True)
class CompareRow:
    """One spec's figures on the chart."""

    name: str
    gmacs: float  # multiply-accumulates per image / 1e9
    params: int
    top1: float | None  # metadata.top1, in percent; None when the spec has none
    source: str = ""
    dataset: str = ""
    file: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _top1(metadata: dict) -> float | None:
    value = (metadata or {}).get("top1")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def compare_rows(summaries: list[Summary]) -> list[CompareRow]:
    """One row per summary: name, GMACs at batch 1, parameters, top-1 (or None), source."""
    rows = []
    for s in summaries:
        metadata = s.graph.metadata or {}
        rows.append(CompareRow(
            name=s.name, gmacs=s.totals.macs / s.batch / 1e9, params=s.totals.params, top1=_top1(metadata),
            source=s.source, dataset=str(metadata.get("dataset", "")), file=s.file))
    return rows


class Comparison(list):
    """The rows of a comparison (``CompareRow``s, a list as before) that shows its chart in Jupyter."""

    def picture(self, title: str | None = None):
        return chart_picture(list(self), title)

    def _repr_svg_(self) -> str:
        return self.picture().to_svg()


# ------------------------------------------------------------------ the domain


def use_log(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(values) and max(positive) / min(positive) > LOG_RANGE


def fit_axis(values: list[float], radii: list[float], length: float, log: bool,
             pad: float = 10.0) -> tuple[float, float]:
    """(low, high) of an axis ``length`` points long on which every bubble (value ± radius points)
    lies ``pad`` points inside; values, not their logarithms, on a log axis too."""
    vs = [math.log10(v) if log else v for v in values]
    lo, hi = min(vs), max(vs)
    if hi - lo < 1e-9:  # one value (or all equal): a domain around it
        half = 0.5 if log else (abs(lo) * 0.5 if lo else 1.0)
        lo, hi = lo - half, hi + half
    for _ in range(60):
        scale = (hi - lo) / length  # axis units per point
        new_lo = min(v - (r + pad) * scale for v, r in zip(vs, radii))
        new_hi = max(v + (r + pad) * scale for v, r in zip(vs, radii))
        if abs(new_lo - lo) < 1e-12 and abs(new_hi - hi) < 1e-12:
            break
        lo, hi = min(lo, new_lo), max(hi, new_hi)
    return (10 ** lo, 10 ** hi) if log else (lo, hi)


def _fraction(value: float, domain: tuple[float, float], log: bool) -> float:
    if log:
        return (math.log10(value) - math.log10(domain[0])) / (math.log10(domain[1]) - math.log10(domain[0]))
    return (value - domain[0]) / (domain[1] - domain[0])


# ------------------------------------------------------------------ names


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _disc_overlap(box, cx, cy, r) -> float:
    """Rough area of a box inside a disc (corner sampling)."""
    inside = 0
    for fx in (0.1, 0.5, 0.9):
        for fy in (0.2, 0.8):
            x = box[0] + (box[2] - box[0]) * fx
            y = box[1] + (box[3] - box[1]) * fy
            inside += (x - cx) ** 2 + (y - cy) ** 2 < r * r
    return inside / 6 * (box[2] - box[0]) * (box[3] - box[1])


def place_labels(points: list[tuple[float, float, float, str]], bounds) -> list[tuple[Text, bool]]:
    """Greedy label placement: for each (x, y, radius, text), the cheapest of up to 32 spots around it.

    Coordinates are points, y downwards. Cost: overlapping another label (heavily), covering
    another bubble's centre dot, leaving the plot, distance from the bubble and, lightly, lying
    over other bubbles. Returns each label and whether it sits away from its bubble (then it
    gets a leader line). Widths are DejaVu Sans's, the font the chart is set in.
    """
    placed_boxes: list[tuple] = []
    order = sorted(range(len(points)), key=lambda i: points[i][2])  # small bubbles choose first
    result: dict[int, tuple[Text, bool]] = {}
    dots = [(x - 3, y - 3, x + 3, y + 3) for x, y, _, _ in points]
    for i in order:
        x, y, r, text = points[i]
        best: tuple[float, Text, tuple, bool] | None = None
        for ring, dist in enumerate((3.0 + min(r, 3.0), r + 3.0, r + 14.0, r + 26.0)):
            if ring == 1 and r < 5:
                continue
            for angle in (0, 180, 45, -45, 135, -135, 90, -90):
                a = math.radians(angle)
                px, py = x + dist * math.cos(a), y - dist * math.sin(a)
                if angle in (90, -90):
                    anchor = "middle"
                    ty = py - 2 if angle == 90 else py + LABEL_SIZE * 0.8
                else:
                    anchor = "start" if math.cos(a) > 0 else "end"
                    ty = py + LABEL_SIZE * 0.35 + (-3 if angle in (45, 135) else 5 if angle in (-45, -135) else 0)
                t = Text(px, ty, text, size=LABEL_SIZE, anchor=anchor, weight="bold")
                box = text_box(t)
                cost = dist * 0.6 + ring * 8
                if box[0] < bounds[0] or box[2] > bounds[2] or box[1] < bounds[1] or box[3] > bounds[3]:
                    cost += 1e6
                cost += sum(_overlap(box, b) for b in placed_boxes) * 50
                cost += sum(_overlap(box, d) for j, d in enumerate(dots) if j != i) * 60
                cost += sum(_disc_overlap(box, qx, qy, qr) for j, (qx, qy, qr, _) in enumerate(points) if j != i) * 0.03
                if best is None or cost < best[0]:
                    best = (cost, t, box, ring >= 2)
        assert best is not None, "the first ring is always tried, so some place was scored"
        _, t, box, far = best
        placed_boxes.append(box)
        result[i] = (t, far)
    return [result[i] for i in range(len(points))]


# ------------------------------------------------------------------ the chart


@dataclass(frozen=True)
class Encoding:
    """What the chart shows on each axis, decided from the rows."""

    by_top1: bool
    x_log: bool
    y_log: bool
    heading: str
    note: str
    xtitle: str
    ytitle: str


def _ys(rows: list[CompareRow], by_top1: bool) -> list[float]:
    return [float(r.top1 if by_top1 and r.top1 is not None else r.params) for r in rows]


def encoding(rows: list[CompareRow], title: str | None = None) -> Encoding:
    by_top1 = all(r.top1 is not None for r in rows)
    ys = _ys(rows, by_top1)
    x_log = use_log([r.gmacs for r in rows])
    y_log = (not by_top1) and use_log(ys)
    datasets = sorted({r.dataset for r in rows if r.dataset})
    networks = f"{len(rows)} network{'s' if len(rows) != 1 else ''}"
    if by_top1:
        heading = title or "Top-1 accuracy against operations"
        note = f"{networks}; y: the top-1 accuracy each spec reports" + (
            f" ({', '.join(datasets)})" if datasets else "")
        ytitle = "Top-1 accuracy (%)" + (f", {datasets[0]}" if len(datasets) == 1 else "")
    else:
        heading = title or "Parameters against operations"
        missing = [r.name for r in rows if r.top1 is None]
        few = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        note = (f"{networks}; y is the parameter count because {few} "
                f"{'reports' if len(missing) == 1 else 'report'} no top-1 accuracy")
        ytitle = "Parameters" + (" (log scale)" if y_log else "")
    xtitle = "GMACs per image (multiply-accumulates, batch 1" + (", log scale)" if x_log else ")")
    return Encoding(by_top1, x_log, y_log, heading, note + "; bubble area ∝ parameters", xtitle, ytitle)


def _formatter(text, log: bool, lo: float = -math.inf, hi: float = math.inf):
    """Tick labels written by ``text``, none outside [lo, hi] (no negative operations, no 110 %).

    On a log axis, matplotlib's LogFormatter still decides which ticks get a label (decades, and
    the 2s and 5s when few decades are shown); only the words are ours.
    """
    from matplotlib.ticker import Formatter, LogFormatter

    class Words(LogFormatter if log else Formatter):  # type: ignore[misc]
        def _num_to_string(self, x, vmin, vmax):
            return text(x)

        def __call__(self, x, pos=None):
            if not lo - 1e-9 <= x <= hi + 1e-9:
                return ""
            return super().__call__(x, pos) if log else text(x)

    return Words


def _gmacs_text(v: float) -> str:
    return "0" if abs(v) < 1e-12 else f"{v:g}"


def _params_text(v: float) -> str:
    return short(int(round(v)))


def chart_figure(rows: list[CompareRow], title: str | None = None):
    """The bubble chart of ``rows`` as a matplotlib Figure (see the module's documentation)."""
    from matplotlib.lines import Line2D

    from .figure import new_figure, style

    if not rows:
        raise UsageError("nothing to compare: give at least one spec")
    how = encoding(rows, title)
    xs = [r.gmacs for r in rows]
    ys = _ys(rows, how.by_top1)
    biggest = max(r.params for r in rows)
    k = MAX_RADIUS / math.sqrt(biggest) if biggest > 0 else 0.0
    radii = [k * math.sqrt(r.params) for r in rows]
    xdomain = fit_axis(xs, radii, PLOT_W, how.x_log)
    ydomain = fit_axis(ys, radii, PLOT_H, how.y_log)
    width, height = LEFT + PLOT_W + PANEL, TOP + PLOT_H + BOTTOM

    with style():
        figure = new_figure(width / 72, height / 72, constrained=False)
        ax = figure.add_axes((LEFT / width, BOTTOM / height, PLOT_W / width, PLOT_H / height))
        ax.set_facecolor("#fbfbfb")
        if how.x_log:
            ax.set_xscale("log")
        if how.y_log:
            ax.set_yscale("log")
        for axis, log, text, top in ((ax.xaxis, how.x_log, _gmacs_text, math.inf),
                                     (ax.yaxis, how.y_log, _gmacs_text if how.by_top1 else _params_text,
                                      100.0 if how.by_top1 else math.inf)):
            words = _formatter(text, log, 0.0, top)
            axis.set_major_formatter(words(labelOnlyBase=True) if log else words())
            if log:
                axis.set_minor_formatter(words(labelOnlyBase=False, minor_thresholds=(3.2, 1)))
        ax.set_xlim(*xdomain)
        ax.set_ylim(*ydomain)
        ax.grid(True, which="major", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(colors=MUTED, labelsize=8.5, labelcolor=MUTED)
        ax.tick_params(which="minor", colors=MUTED, labelsize=8, labelcolor=MUTED)
        ax.set_xlabel(how.xtitle, fontsize=10, color=INK)
        ax.set_ylabel(how.ytitle, fontsize=10, color=INK)
        figure.text(LEFT / width, 1 - 24 / height, how.heading, fontsize=14, fontweight="bold", color=INK)
        figure.text(LEFT / width, 1 - 40 / height, how.note, fontsize=8.5, color=MUTED)

        # bubbles, largest first so small ones stay on top; scatter's size is the diameter squared
        colours = [palette(i) for i in range(len(rows))]
        for i in sorted(range(len(rows)), key=lambda i: (-radii[i], i)):
            bubble = ax.scatter([xs[i]], [ys[i]], s=[(2 * radii[i]) ** 2], color=colours[i], alpha=0.3,
                                edgecolors=darker(colours[i], 0.2), linewidths=1.0, zorder=2)
            bubble.set_gid(f"bubble {i}")
        for i in range(len(rows)):
            ax.scatter([xs[i]], [ys[i]], s=[3.6 ** 2], color=darker(colours[i], 0.25), zorder=3, linewidths=0)

        # names, placed in points from the top left of the figure
        centres = [(LEFT + _fraction(x, xdomain, how.x_log) * PLOT_W,
                    TOP + (1 - _fraction(y, ydomain, how.y_log)) * PLOT_H) for x, y in zip(xs, ys)]
        bounds = (LEFT + 4, TOP + 3, LEFT + PLOT_W - 3, TOP + PLOT_H - 3)
        labels = place_labels([(cx, cy, r, row.name) for (cx, cy), r, row in zip(centres, radii, rows)], bounds)
        for i, (t, far) in enumerate(labels):
            c = darker(colours[i], 0.35)
            note = ax.annotate(t.text, (xs[i], ys[i]), xytext=(t.x - centres[i][0], centres[i][1] - t.y),
                               textcoords="offset points", ha={"start": "left", "end": "right"}.get(t.anchor, "center"),
                               va="baseline", fontsize=LABEL_SIZE, fontweight="bold", color=c, zorder=4,
                               arrowprops=dict(arrowstyle="-", color=c, linewidth=0.7, shrinkA=1, shrinkB=2)
                               if far else None)
            note.set_gid(f"name {i}")

        # the bubble scale: reference bubbles at powers of ten, at the chart's scale
        if biggest > 0:
            top_ref = 10 ** math.floor(math.log10(biggest))
            refs = [top_ref, top_ref / 10] if top_ref >= 10 else [top_ref]
            handles = [Line2D([], [], linestyle="", marker="o", markersize=2 * k * math.sqrt(v),
                              markerfacecolor="#dddddd", markeredgecolor="#888888", alpha=0.7) for v in refs]
            legend = ax.legend(handles, [f"{short(int(v))} params" for v in refs], title="Bubble area\n∝ parameters",
                               loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False, fontsize=8.5,
                               title_fontsize=9, labelspacing=2.2, handletextpad=1.6, borderpad=0.6,
                               alignment="left")
            legend.set_gid("scale")
    figure.archspec_title = how.heading
    return figure


def chart_picture(rows: list[CompareRow], title: str | None = None):
    """The chart as a picture: inline in Jupyter, ``.save(path)`` as SVG or PNG."""
    from .figure import FigurePicture

    figure = chart_figure(rows, title)
    return FigurePicture(figure, figure.archspec_title)
