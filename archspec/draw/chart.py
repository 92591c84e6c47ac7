"""``archspec compare``: a Canziani-style bubble chart of several specs.

Encoding (after Canziani, Paszke & Culurciello, "An Analysis of Deep Neural Network Models
for Practical Applications", 2016, figure 2):

- x: GMACs per image (multiply-accumulates at batch 1), on a log scale when the largest is
  more than ``LOG_RANGE`` (30) times the smallest, else linear;
- y: top-1 accuracy (``metadata.top1`` of the specs) when every spec has one; otherwise the
  number of parameters (log scale past the same 30× range), and the chart says so;
- bubble area ∝ parameters: radius = ``MAX_RADIUS`` · √(params / largest params), the largest
  bubble 40 units; a dot marks every centre, so even a tiny network's bubble is findable;
  two reference bubbles (powers of ten) give the scale;
- one colour per spec; each bubble carries its spec's name, nudged to the free spot nearest it
  (with a leader line when it had to move away).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import UsageError
from ..render import short
from ..summary import Summary
from .scene import Circle, Group, Line, Scene, Text, rect, text_box
from .style import GRID, INK, MUTED, darker, palette

LOG_RANGE = 30.0
MAX_RADIUS = 40.0
PLOT_W, PLOT_H = 760.0, 480.0
LEFT, TOP, BOTTOM, PANEL = 84.0, 78.0, 66.0, 230.0
LABEL_SIZE = 11.0


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
        from .picture import Picture

        return Picture(chart_scene(list(self), title))

    def _repr_svg_(self) -> str:
        return self.picture().to_svg()


# ------------------------------------------------------------------ axes


@dataclass
class Axis:
    lo: float  # domain, in axis units (log10 of the value on a log axis)
    hi: float
    log: bool
    length: float

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return (v - self.lo) / (self.hi - self.lo) * self.length


def use_log(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(values) and max(positive) / min(positive) > LOG_RANGE


def fit_axis(values: list[float], radii: list[float], length: float, log: bool, pad: float = 14.0) -> Axis:
    """A domain wide enough that every bubble (value ± radius) lies ``pad`` units inside the axis."""
    vs = [math.log10(v) if log else v for v in values]
    lo, hi = min(vs), max(vs)
    if hi - lo < 1e-9:  # one value (or all equal): a domain around it
        half = 0.5 if log else (abs(lo) * 0.5 if lo else 1.0)
        lo, hi = lo - half, hi + half
    for _ in range(60):
        scale = (hi - lo) / length  # axis units per scene unit
        new_lo = min(v - (r + pad) * scale for v, r in zip(vs, radii))
        new_hi = max(v + (r + pad) * scale for v, r in zip(vs, radii))
        if abs(new_lo - lo) < 1e-12 and abs(new_hi - hi) < 1e-12:
            break
        lo, hi = min(lo, new_lo), max(hi, new_hi)
    return Axis(lo, hi, log, length)


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def ticks(axis: Axis) -> list[float]:
    """Tick values (not positions) inside the domain."""
    if not axis.log:
        step = _nice_step(axis.hi - axis.lo)
        first = math.ceil(axis.lo / step - 1e-9)
        out = []
        k = first
        while k * step <= axis.hi + 1e-9:
            out.append(round(k * step, 10))
            k += 1
        return out
    lo, hi = axis.lo, axis.hi
    decades = range(math.floor(lo), math.ceil(hi) + 1)
    mantissas = (1, 2, 5) if hi - lo <= 3.2 else (1,)
    return [m * 10.0 ** d for d in decades for m in mantissas if lo - 1e-9 <= math.log10(m * 10.0 ** d) <= hi + 1e-9]


def _gmacs_text(v: float) -> str:
    if abs(v) < 1e-12:
        return "0"
    return f"{v:g}" if abs(v) >= 1e-4 else f"{v:.0e}"


def _params_text(v: float) -> str:
    return short(int(round(v)))


# ------------------------------------------------------------------ labels


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

    Cost: overlapping another label (heavily), covering another bubble's centre dot, leaving the
    plot, distance from the bubble and, lightly, lying over other bubbles. Returns each label
    and whether it sits away from its bubble (then it gets a leader line).
    """
    placed_boxes: list[tuple] = []
    order = sorted(range(len(points)), key=lambda i: points[i][2])  # small bubbles choose first
    result: dict[int, tuple[Text, bool]] = {}
    dots = [(x - 3, y - 3, x + 3, y + 3) for x, y, _, _ in points]
    for i in order:
        x, y, r, text = points[i]
        best: tuple[float, Text, tuple, bool] | None = None
        for ring, dist in enumerate((4.0 + min(r, 3.0), r + 4.0, r + 18.0, r + 34.0)):
            if ring == 1 and r < 6:
                continue
            for angle in (0, 180, 45, -45, 135, -135, 90, -90):
                a = math.radians(angle)
                px, py = x + dist * math.cos(a), y - dist * math.sin(a)
                if angle in (90, -90):
                    anchor = "middle"
                    ty = py - 3 if angle == 90 else py + LABEL_SIZE * 0.8
                else:
                    anchor = "start" if math.cos(a) > 0 else "end"
                    ty = py + LABEL_SIZE * 0.35 + (-4 if angle in (45, 135) else 6 if angle in (-45, -135) else 0)
                t = Text(px, ty, text, size=LABEL_SIZE, anchor=anchor)
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


def chart_scene(rows: list[CompareRow], title: str | None = None) -> Scene:
    """The bubble chart of ``rows`` (see the module's documentation)."""
    if not rows:
        raise UsageError("nothing to compare: give at least one spec")
    tops = [r.top1 for r in rows if r.top1 is not None]
    by_top1 = len(tops) == len(rows)
    xs = [r.gmacs for r in rows]
    ys = tops if by_top1 else [float(r.params) for r in rows]
    biggest = max(r.params for r in rows)
    k = MAX_RADIUS / math.sqrt(biggest) if biggest > 0 else 0.0
    radii = [k * math.sqrt(r.params) for r in rows]
    x_log = use_log(xs)
    y_log = (not by_top1) and use_log(ys)
    xaxis = fit_axis(xs, radii, PLOT_W, x_log)
    yaxis = fit_axis(ys, radii, PLOT_H, y_log)

    x0, y0 = LEFT, TOP  # top left of the plot
    width, height = LEFT + PLOT_W + PANEL, TOP + PLOT_H + BOTTOM

    def px(v):
        return x0 + xaxis(v)

    def py(v):
        return y0 + PLOT_H - yaxis(v)

    items: list = []
    # -- title
    heading = title or ("Top-1 accuracy against operations" if by_top1 else "Parameters against operations")
    datasets = sorted({r.dataset for r in rows if r.dataset})
    if by_top1:
        note = f"{_networks(rows)}; y: the top-1 accuracy each spec reports" + (
            f" ({', '.join(datasets)})" if datasets else "")
    else:
        missing = [r.name for r in rows if r.top1 is None]
        few = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        note = (f"{_networks(rows)}; y is the parameter count because {few} "
                f"{'reports' if len(missing) == 1 else 'report'} no top-1 accuracy")
    items.append(Text(x0, 30, heading, size=18, weight="bold", colour=INK))
    items.append(Text(x0, 50, note + "; bubble area ∝ parameters", size=11, colour=MUTED))

    # -- grid, ticks and axis titles
    axis_items: list = [rect(x0, y0, PLOT_W, PLOT_H, fill="#fbfbfb", stroke=None)]
    for v in ticks(xaxis):
        if v < 0:  # operations are never negative
            continue
        x = px(v)
        axis_items.append(Line(((x, y0), (x, y0 + PLOT_H)), stroke=GRID, width=0.8))
        axis_items.append(Line(((x, y0 + PLOT_H), (x, y0 + PLOT_H + 5)), stroke=MUTED, width=1))
        axis_items.append(Text(x, y0 + PLOT_H + 18, _gmacs_text(v), size=10, anchor="middle", colour=MUTED))
    for v in ticks(yaxis):
        if v < 0 or (by_top1 and v > 100):
            continue
        y = py(v)
        axis_items.append(Line(((x0, y), (x0 + PLOT_W, y)), stroke=GRID, width=0.8))
        axis_items.append(Line(((x0 - 5, y), (x0, y)), stroke=MUTED, width=1))
        text = f"{v:g}" if by_top1 else _params_text(v)
        axis_items.append(Text(x0 - 8, y + 3.5, text, size=10, anchor="end", colour=MUTED))
    axis_items.append(Line(((x0, y0), (x0, y0 + PLOT_H), (x0 + PLOT_W, y0 + PLOT_H)), stroke=INK, width=1.2))
    xtitle = "GMACs per image (multiply-accumulates, batch 1" + (", log scale)" if x_log else ")")
    axis_items.append(Text(x0 + PLOT_W / 2, y0 + PLOT_H + 42, xtitle, size=12, anchor="middle", colour=INK))
    if by_top1:
        ytitle = "Top-1 accuracy (%)" + (f", {datasets[0]}" if len(datasets) == 1 else "")
    else:
        ytitle = "Parameters" + (" (log scale)" if y_log else "")
    axis_items.append(Text(x0 - 56, y0 + PLOT_H / 2, ytitle, size=12, anchor="middle", colour=INK, rotate=-90))
    items.append(Group(tuple(axis_items), cls="axes", label=f"x: GMACs; y: {'top1' if by_top1 else 'params'}"))

    # -- bubbles, largest first so small ones stay on top
    centres = [(px(x), py(y)) for x, y in zip(xs, ys)]
    colours = [palette(i) for i in range(len(rows))]
    for i in sorted(range(len(rows)), key=lambda i: (-radii[i], i)):
        (cx, cy), c = centres[i], colours[i]
        items.append(Group((Circle((cx, cy), radii[i], fill=c, stroke=darker(c, 0.2), width=1.2, opacity=0.3),),
                           cls="bubble", label=f"{rows[i].name} r={radii[i]:.4f} params={rows[i].params}"))
    for i in range(len(rows)):
        (cx, cy), c = centres[i], colours[i]
        items.append(Circle((cx, cy), 2.4, fill=darker(c, 0.25)))

    # -- names
    bounds = (x0 + 6, y0 + 4, x0 + PLOT_W - 4, y0 + PLOT_H - 4)
    labels = place_labels([(cx, cy, r, row.name) for (cx, cy), r, row in zip(centres, radii, rows)], bounds)
    for i, (t, far) in enumerate(labels):
        c = darker(colours[i], 0.35)
        parts: list = []
        if far:
            box = text_box(t)
            lx = min(max(centres[i][0], box[0]), box[2])
            ly = min(max(centres[i][1], box[1]), box[3])
            parts.append(Line((centres[i], (lx, ly)), stroke=c, width=0.7))
        parts.append(Text(t.x, t.y, t.text, size=t.size, anchor=t.anchor, weight="bold", colour=c))
        items.append(Group(tuple(parts), cls="name", label=rows[i].name))

    # -- bubble scale: nested reference bubbles at powers of ten
    items.append(Group(tuple(_scale_panel(k, biggest, x0 + PLOT_W + 24, y0)), cls="scale"))
    return Scene(math.ceil(width), math.ceil(height), items, title=heading)


def _networks(rows) -> str:
    return f"{len(rows)} network{'s' if len(rows) != 1 else ''}"


def _scale_panel(k: float, biggest: int, x: float, y: float) -> list:
    out: list = [Text(x, y + 12, "Bubble area", size=11, weight="bold", colour=INK),
                 Text(x, y + 27, "∝ parameters", size=11, colour=INK)]
    if biggest <= 0:
        return out
    top = 10 ** math.floor(math.log10(biggest))
    refs = [top, top / 10] if top >= 10 else [top]
    base = y + 44 + 2 * MAX_RADIUS  # bubbles stand on one line
    cx = x + MAX_RADIUS
    for v in refs:
        r = k * math.sqrt(v)
        out.append(Circle((cx, base - r), r, fill="#dddddd", stroke="#888888", width=1, opacity=0.5))
        out.append(Line(((cx, base - 2 * r), (cx + MAX_RADIUS + 10, base - 2 * r)), stroke="#888888", width=0.6,
                        dash=(2, 2)))
        out.append(Text(cx + MAX_RADIUS + 14, base - 2 * r + 4, f"{short(int(v))} params", size=10, colour=INK))
    return out
