"""The textbook picture of a CNN: feature maps as 3-D boxes, left to right (LeNet, VGG figures).

What is drawn
    The graph input, then every layer that makes a new tensor of a new kind: convolutions,
    pools, merges and fully connected layers. Layers that keep the shape (activations, batch
    norm, dropout) and flatten fold into the box before them and show as a narrow stripe of
    their family's colour at its right end. With ``depth=N`` (the ``--depth`` of ``archspec
    summary``: 0 keeps top-level names only) every block deeper than that is one box, its
    output, labelled with the block's name. Without ``depth``, the picture is drawn as deep as it
    still fits a slide (``slide.fits_slide``: on 1920 × 1080 its smallest text at 6 px or more):
    every layer, else blocks collapsed from the deepest paths up, down to depth 0; if none fits,
    the most legible. ResNet-152 shows each bottleneck block as a box; GoogLeNet and
    Inception-v3 every layer.

    The boxes follow the longest path from input to output (the "spine"). Every other path
    into a merge is drawn above it: a path with layers on it (an Inception branch, a ResNet
    projection) as its own row of boxes, wired from the map it leaves into the merge it joins,
    each box labelled with its kernel and size; an identity shortcut as a grey arc. Rows and
    arcs whose spans overlap go on separate levels, so an Inception module reads as four
    parallel stacks (three rows and the spine) into its concatenation. Glyphs say what made a
    map: a funnel on a pooling box, two bars on a concatenation, and for a merge whose
    catalogue entry declares a glyph that glyph in a circle: ⊕ for an addition (its output has
    the shape of its inputs), ⊗ for a product (a squeeze-and-excitation gate); a thin bar for a
    fully connected output.

    Slides: the picture grows left to right, and a long spine wraps into up to ``MAX_ROWS``
    rows, one under another, cut where no branch row or arc crosses (or just after the map they
    leave, which then starts the next row again); an arrow and "continued below" end a row, "from
    above" and an arrow begin the next. The number of rows is the one that makes the text largest
    on a 16:9 slide, one more row gaining at least 10 %: VGG-16 in two rows, its 10-unit labels
    at 12.7 px.

Scales (documented in the picture's caption too)
    A map C×H×W is a box seen in oblique (cabinet) projection: the front face is ``thickness``
    wide and ``height`` tall, the receding edge is ``depth`` long at 45° and drawn at half
    length. height ∝ √H and depth ∝ √W, normalised so that the largest map of the network is
    ``SPATIAL`` (180) units (never less than 8): halving the resolution shrinks a box by 1/√2,
    so 224 and 7 are both readable. thickness = 4 + 7·log₂C units (1 channel: 4, 3: 15, 64: 46,
    512: 67, 2048: 81), capped at 95: a 1-channel map is a visible sliver and 512 channels
    are clearly thicker than 64. A fully connected output of n features is a bar 10 units
    thick whose height is 20 + 40·log₁₀ n (10: 60, 1000: 140, 4096: 164), capped at 220.

Labels read name, type and size; sizes are C×H×W, as ``archspec summary`` prints them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import UsageError
from ..graph import INPUT, Graph
from ..layers import lookup, lookup_known
from ..render import count, giga, shape_text
from ..summary import Summary
from .scene import Circle, Curve, Group, Item, Line, Polygon, Scene, Text, moved, rect, text_width
from .scene import bounds as scene_bounds
from .slide import MIN_TEXT_PX, SLIDE_WIDTH, text_on_slide
from .style import FAMILY_LABELS, INK, MUTED, darker, family_colour, family_of, lighter

MAX_ROWS = 4  # the most rows a long spine wraps into
ROW_SPACING = 28.0  # between wrapped rows
WRAP_GAIN = 1.1  # a row more must make the text this much larger on a slide
CAPTION_SIZE = 10.0  # the scales' caption: the smallest text of the picture
SPATIAL = 180.0  # height of the largest map
MIN_SPATIAL = 8.0
DEPTH_RATIO = 0.5  # cabinet projection: receding edges at half length
COS45 = math.sqrt(0.5)
MAX_THICKNESS = 95.0
BAR_THICKNESS = 10.0
BAR_DEPTH = 10.0
MAX_BAR = 220.0
ADD_RADIUS = 9.0
GAP = 22.0  # between the front faces of neighbouring boxes
MARGIN = 30.0
LABEL_SIZE = 10.0
LINE = 12.0  # label line height
FOLDED = ("activation", "norm", "regularization")


def thickness(channels: int) -> float:
    """Front-face width of a map with ``channels`` channels: 4 + 7·log₂C, capped."""
    return min(MAX_THICKNESS, 4.0 + 7.0 * math.log2(max(1, channels)))


def bar_height(features: int) -> float:
    """Height of a fully connected output of ``features``: 20 + 40·log₁₀ n, capped."""
    return min(MAX_BAR, 20.0 + 40.0 * math.log10(max(1, features)))


def spatial(size: int, largest: int) -> float:
    """Height (or receding length before projection) of a spatial size: ∝ √size."""
    return max(MIN_SPATIAL, SPATIAL * math.sqrt(size / max(1, largest)))


# ------------------------------------------------------------------ selection


@dataclass
class Unit:
    """One drawn thing: a box, a bar, a merge's symbol (⊕, ⊗), or (off the spine) a layer folded into an arc."""

    key: str  # node path, block path, or "input"
    kind: str  # "box", "bar" or "symbol" (a merge with a glyph in the catalogue: add, mul)
    shape: tuple[int, ...]
    family: str
    name: str
    detail: str  # the type line of the label
    collapsed: bool = False
    nodes: list = field(default_factory=list)  # the graph nodes it stands for
    inputs: list[str] = field(default_factory=list)  # keys of the units it reads
    bands: list[str] = field(default_factory=list)  # folded families, in order of appearance


def _type_text(node) -> str:
    layer = lookup(node.type)
    if layer is None:
        return node.type
    return f"{layer.short_name or layer.name} {layer.label_params(node.args)}".strip()


def _kind(node_type: str, shape) -> str:
    if lookup_known(node_type).glyph:  # the merge drawn as its symbol in a circle
        return "symbol"
    return "bar" if len(shape) <= 1 else "box"


def collapse_key(path: str, depth: int | None) -> str:
    """The row a node belongs to at ``depth``, as in ``archspec summary --depth``."""
    parts = path.split(".")
    return path if depth is None or len(parts) <= depth + 1 else ".".join(parts[:depth + 1])


def select_units(graph: Graph, depth: int | None) -> dict[str, Unit]:
    """Every unit of the graph at ``depth``, in execution order, keyed by unit key."""
    units: dict[str, Unit] = {}
    inp = graph.input_shape
    units[INPUT] = Unit(INPUT, "bar" if len(inp) <= 1 else "box", inp, "input", "input", "input")
    unit_of = {INPUT: INPUT}
    for node in graph.nodes:
        key = collapse_key(node.path, depth)
        fam = family_of(node.type)
        sources = [unit_of[i] for i in node.inputs]
        # inside a block drawn as one box; a residual group's merge carries the group's own path
        # (features.1.0 is both the block and its add) and ends that box
        if key != node.path or (key in units and units[key].collapsed):
            unit = units.get(key)
            if unit is None:
                group = graph.groups.get(key)
                label = group.label if group and group.kind == "block" else (group.kind if group else "block")
                unit = units[key] = Unit(key, "box", node.shape, fam, key, label, collapsed=True)
            unit.nodes.append(node)
            unit.shape = node.shape
            unit.kind = "bar" if len(node.shape) <= 1 else "box"
            for s in sources:
                if s != key and s not in unit.inputs:
                    unit.inputs.append(s)
            unit_of[node.path] = key
            continue
        keeps_shape = len(node.inputs) == 1 and graph.shape_of(node.inputs[0]) == node.shape
        if len(sources) == 1 and (lookup_known(node.type).view or (fam in FOLDED and keeps_shape)):
            unit = units[sources[0]]
            unit.nodes.append(node)
            if fam in FOLDED and fam != unit.family and fam not in unit.bands:
                unit.bands.append(fam)
            unit_of[node.path] = unit.key
            continue
        units[node.path] = Unit(node.path, _kind(node.type, node.shape), node.shape, fam, node.path,
                                _type_text(node), nodes=[node], inputs=list(dict.fromkeys(sources)))
        unit_of[node.path] = node.path
    for unit in units.values():
        if unit.collapsed:
            _colour_block(unit)
    units["__output__"] = Unit("__output__", "box", (), "input", "", "", inputs=[unit_of[graph.output]])
    return units


def _colour_block(unit: Unit) -> None:
    """A collapsed block takes the colour of the family doing most of its work; the rest are stripes."""
    work: dict[str, int] = {}
    seen: list[str] = []
    for node in unit.nodes:
        fam = family_of(node.type)
        if fam not in seen:
            seen.append(fam)
        work[fam] = work.get(fam, 0) + (2 if fam in ("conv", "dense") else 1 if fam in ("pool", "merge") else 0)
    main = max(seen, key=lambda f: (work.get(f, 0), -seen.index(f)))
    unit.family = main
    unit.bands = [f for f in seen if f != main and f not in ("reshape",)]
    working = [node for node in unit.nodes if family_of(node.type) in ("conv", "dense", "pool")]
    if len(working) == 1:  # a conv with its norm and activation (Inception's basic_conv): name its kernel
        unit.detail = _type_text(working[0])
    else:
        n = len(unit.nodes)
        unit.detail = f"{unit.detail} · {n} layer{'s' if n != 1 else ''}"


def spine(units: dict[str, Unit]) -> list[str]:
    """The longest chain of units from the input to the output (ties: a merge's first input)."""
    length: dict[str, int] = {}
    best: dict[str, str | None] = {}
    for key, unit in units.items():
        if not unit.inputs:
            length[key], best[key] = (0, None) if key == INPUT else (-10**9, None)
            continue
        pred = max(unit.inputs, key=lambda k: (length.get(k, -10**9), -unit.inputs.index(k)))
        length[key], best[key] = length.get(pred, -10**9) + 1, pred
    chain, k = [], best["__output__"]
    while k is not None:
        chain.append(k)
        k = best[k]
    return chain[::-1]


@dataclass
class Skip:
    source: str  # a spine unit
    target: str  # a spine unit
    via: list[Unit]  # off-spine units on the way, in order (none: an identity shortcut)


def skips(units: dict[str, Unit], chain: list[str]) -> list[Skip]:
    """Connections between spine units other than neighbours, with the off-spine units they pass."""
    on = set(chain)
    pos = {k: i for i, k in enumerate(chain)}
    out = []
    for key in chain:
        unit = units[key]
        for src in unit.inputs:
            if src in on and pos[src] == pos[key] - 1:
                continue
            via: list[Unit] = []
            k = src
            while k not in on:
                via.append(units[k])
                if not units[k].inputs:
                    break
                # walk back along the longest input, stopping at the spine
                k = max(units[k].inputs, key=lambda s: (s in on, pos.get(s, -1)))
            if k in on:
                out.append(Skip(k, key, via[::-1]))
    return out


def boxes_units(summary: Summary, depth: int | None = None) -> tuple[dict[str, Unit], list[str], int | None]:
    """(units, spine, depth) of ``summary`` drawn at ``depth`` (None: every layer)."""
    units = select_units(summary.graph, depth)
    return units, spine(units), depth


def candidate_depths(summary: Summary) -> list[int | None]:
    """The depths tried, deepest first, when none is asked for: every layer, then each depth that
    collapses more (the deepest block paths first), down to 0 (top-level names only)."""
    deepest = max(len(n.path.split(".")) for n in summary.graph.nodes) - 2
    return [None, *range(deepest, -1, -1)]


def min_spine_width(n_units: int) -> float:
    """A lower bound on the width of a spine of ``n_units``: each takes a gap and a sliver at least."""
    return n_units * (GAP + thickness(1))


def could_fit(n_units: int) -> bool:
    """Whether a spine of ``n_units`` could fit a slide at all, even wrapped into MAX_ROWS rows (a
    longer one is not laid out to be measured): its caption, the smallest text, needs a picture no
    wider than SLIDE_WIDTH · CAPTION_SIZE / MIN_TEXT_PX."""
    return min_spine_width(n_units) / MAX_ROWS <= SLIDE_WIDTH * CAPTION_SIZE / MIN_TEXT_PX


# ------------------------------------------------------------------ geometry


@dataclass
class Placed:
    unit: Unit
    x: float  # left of the front face
    t: float  # front-face width
    h: float  # front-face height
    d: float  # projected receding offset (dx = dy = d)
    top: float  # y of the front face's top
    cx: float = 0.0  # anchor of arcs and labels
    arc_y: float = 0.0  # where an arc leaves or arrives

    @property
    def bottom(self) -> float:
        return self.top + self.h

    @property
    def right(self) -> float:
        return self.x + self.t + self.d

    @property
    def upper(self) -> float:
        return self.top - self.d


def _box_items(p: Placed) -> list:
    """A box: front face, top and side parallelograms, with the folded families as stripes at its right end."""
    x, y, t, h, d = p.x, p.top, p.t, p.h, p.d
    base = family_colour(p.unit.family)
    edge = darker(base, 0.45)
    items = [
        Polygon(((x + t, y), (x + t + d, y - d), (x + t + d, y + h - d), (x + t, y + h)),
                fill=darker(base, 0.18), stroke=edge, width=0.7),  # side
        Polygon(((x, y), (x + d, y - d), (x + t + d, y - d), (x + t, y)),
                fill=lighter(base, 0.35), stroke=edge, width=0.7),  # top
        rect(x, y, t, h, fill=base, stroke=edge, width=0.7),  # front
    ]
    bands = p.unit.bands
    if bands:
        bw = max(1.5, min(5.0, 0.12 * t))
        x1 = x + t - bw * len(bands)
        for fam in bands:
            c = family_colour(fam)
            items.append(rect(x1, y, bw, h, fill=c))
            items.append(Polygon(((x1, y), (x1 + d, y - d), (x1 + bw + d, y - d), (x1 + bw, y)), fill=lighter(c, 0.35)))
            x1 += bw
        items.append(Polygon(((x, y), (x + d, y - d), (x + t + d, y - d), (x + t, y)), stroke=edge, width=0.7))
        items.append(rect(x, y, t, h, stroke=edge, width=0.7))
    items.extend(_glyph(p.unit.family, x, y, t, h))
    return items


def _glyph(family: str, x: float, y: float, t: float, h: float) -> list:
    """The mark on a front face that says what made the map: a funnel for pooling, bars for a concatenation."""
    if min(t, h) < 12:
        return []
    cx, cy, r = x + t / 2, y + h / 2, min(t, h) * 0.22
    if family == "pool":
        return [Polygon(((cx - r, cy - r * 0.7), (cx + r, cy - r * 0.7), (cx, cy + r * 0.8)), fill="#ffffff",
                        stroke=None, opacity=0.85)]
    if family == "merge":
        return [rect(cx - r * 0.6, cy - r, r * 0.35, 2 * r, fill="#ffffff", stroke=None, opacity=0.85),
                rect(cx + r * 0.25, cy - r, r * 0.35, 2 * r, fill="#ffffff", stroke=None, opacity=0.85)]
    return []


def _label_lines(unit: Unit) -> list[tuple[str, str, str]]:
    """(text, weight, colour) lines under a unit."""
    size = str(unit.shape[0]) if len(unit.shape) == 1 else shape_text(unit.shape)
    if unit.key == INPUT:
        return [("input", "bold", INK), (size, "normal", INK)]
    return [(unit.name, "bold", INK), (unit.detail, "normal", MUTED), (size, "normal", INK)]


def _place(unit: Unit, x: float, largest: int, centre: float = 0.0) -> Placed:
    """A unit's geometry with its front face's left edge at ``x``, centred on the line y = ``centre``."""
    if unit.kind == "symbol":
        p = Placed(unit, x, 2 * ADD_RADIUS, 2 * ADD_RADIUS, 0.0, centre - ADD_RADIUS)
        p.cx, p.arc_y = x + ADD_RADIUS, centre - ADD_RADIUS
        return p
    if unit.kind == "bar":
        n = math.prod(unit.shape) if unit.shape else 1
        h, d, t = bar_height(n), BAR_DEPTH * COS45, BAR_THICKNESS
    else:
        hh = unit.shape[1]
        ww = unit.shape[2] if len(unit.shape) > 2 else 1
        h, d, t = spatial(hh, largest), spatial(ww, largest) * DEPTH_RATIO * COS45, thickness(unit.shape[0])
    p = Placed(unit, x, t, h, d, centre - h / 2 + d / 2)
    p.cx, p.arc_y = p.x + p.d + p.t / 2, p.top - p.d  # the middle of the back top edge
    return p


@dataclass
class _Row:
    """A branch off the spine (a parallel branch, a projection shortcut) drawn as its own row of boxes."""

    skip: Skip
    boxes: list[Placed]  # placed from x = 0 on the centre line 0; moved into place later
    width: float
    height: float  # boxes and their labels


ROW_GAP = 14.0  # between boxes of a row
ROW_LABEL = 10.0
ARC_LEVEL = 18.0  # the height an identity arc takes


def _row(skip: Skip, largest: int) -> _Row:
    boxes, x = [], 0.0
    for unit in skip.via:
        p = _place(unit, x, largest)
        boxes.append(p)
        x = p.right + ROW_GAP
    tall = max(p.h + p.d for p in boxes)
    return _Row(skip, boxes, x - ROW_GAP, tall + 2 * (ROW_LABEL + 2) + 6)


def _place_spine(drawn: list[Unit], largest: int, room: dict[str, tuple[str, float]]) -> dict[str, Placed]:
    """The spine's units left to right on the line y = 0; ``room`` (target -> (source, width)) keeps
    space between a branch's ends for its row."""
    placed: dict[str, Placed] = {}
    x = 0.0
    previous = None
    for unit in drawn:
        if previous is not None:
            if unit.kind == "symbol":  # clear of the receding faces of the box before it
                x = max(x + GAP / 2, placed[previous.key].right + 8)
            else:
                x += GAP if not (previous.kind == "bar" and unit.kind == "bar") else GAP * 0.8
        if unit.key in room:
            source, width = room[unit.key]
            x = max(x, placed[source].right + width + 2 * GAP)
        p = _place(unit, x, largest)
        placed[unit.key] = p
        x += p.t + (p.d if unit.kind != "symbol" else 0) * 0.35
        previous = unit
    return placed


def _levels(spans: list[tuple[int, int]]) -> list[int]:
    """A level for each span (in order) such that spans on one level do not overlap."""
    taken: list[list[tuple[int, int]]] = []
    out = []
    for span in spans:
        for lv, used in enumerate(taken):
            if all(span[1] <= s or span[0] >= e for s, e in used):
                used.append(span)
                out.append(lv)
                break
        else:
            taken.append([span])
            out.append(len(taken) - 1)
    return out


def _stack_levels(spans: list[tuple[int, int]], levels: list[int], heights: list[float],
                  uppers: list[float]) -> list[float]:
    """The bottom y of each branch row or arc: just above the spine boxes it spans and above the
    rows and arcs on lower levels that it overlaps, so that a level is only as tall where it is
    drawn as what lies under it there (Inception-v3's small 8×8 modules do not take the height of
    its 35×35 ones)."""
    bottoms = [0.0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda i: levels[i]):
        first, last = spans[i]
        y = min(uppers[first:last + 1]) - 20
        for j in range(len(spans)):
            if levels[j] < levels[i] and spans[j][0] < last and first < spans[j][1]:
                y = min(y, bottoms[j] - heights[j] - 12)
        bottoms[i] = y
    return bottoms


def boxes_scene(summary: Summary, depth: int | None = None, legend: bool = True, rows: int | None = None) -> Scene:
    """The layered-boxes picture of ``summary`` (see the module's documentation): at ``depth`` and in
    ``rows`` rows when given, else as deep and in as few rows as fit a slide (``slide.fits_slide``)."""
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS):
        raise UsageError(f"rows must be an integer from 1 to {MAX_ROWS}, found {rows!r}")
    depths = [depth] if depth is not None else candidate_depths(summary)
    best: tuple[float, Scene] | None = None
    for i, d in enumerate(depths):
        units, chain = select_units(summary.graph, d), None
        chain = spine(units)
        last = i == len(depths) - 1
        if depth is None and not last and not could_fit(len(chain)):
            continue
        strip = _strip(units, chain)
        how = "" if d is None else "as asked" if depth is not None else "automatically: the deepest that fits a slide"
        scene = _fewest_rows(summary, strip, d, how, legend, rows)
        legible = text_on_slide(scene)
        if legible >= MIN_TEXT_PX or depth is not None:
            return scene
        if best is None or legible > best[0]:
            best = (legible, scene)
    assert best is not None, "depth 0 is always drawn"
    return best[1]


def _fewest_rows(summary: Summary, strip: "_Strip", depth: int | None, how: str, legend: bool,
                 rows: int | None) -> Scene:
    """The strip in ``rows`` rows, else in the number of rows that makes its text largest on a slide;
    one row more must gain at least WRAP_GAIN (a strip reads more easily than rows)."""
    best: tuple[float, Scene] | None = None
    tried: set[tuple[int, ...]] = set()
    for r in [rows] if rows is not None else range(1, MAX_ROWS + 1):
        cuts = tuple(_wrap_cuts(strip, r))
        if cuts in tried:
            continue
        tried.add(cuts)
        scene = _compose(summary, strip, list(cuts), depth, how, legend)
        legible = text_on_slide(scene)
        if best is None or legible > best[0] * WRAP_GAIN:
            best = (legible, scene)
    assert best is not None, "one row is always drawn"
    return best[1]


@dataclass
class _Strip:
    """The diagram in one long row before it is wrapped: every item with the spine positions it spans."""

    units: dict[str, Unit]
    chain: list[str]
    found: list[Skip]
    pieces: list[tuple[int, int, Item]]  # (first, last spine position, item), in drawing order
    left: list[float]  # each spine unit's left and right edges
    right: list[float]
    cuts: list[int]  # where the strip may be cut (before the unit at that position)
    repeated: set[int]  # cuts after a map that rows or arcs leave: the next row starts with that map again
    unit_items: list[Item]  # each spine unit's drawing


def _strip(units: dict[str, Unit], chain: list[str]) -> _Strip:
    """Boxes along the spine, branch rows and arcs above it, labels below, in one row at y = 0."""
    drawn = [units[k] for k in chain]
    largest = max([max(u.shape[1:]) for u in units.values() if len(u.shape) >= 2] + [1])
    pos = {k: i for i, k in enumerate(chain)}

    # -- branches: rows of boxes; identity shortcuts: arcs; each on a level above the spine
    found = skips(units, chain)
    found.sort(key=lambda a: (pos[a.target] - pos[a.source], pos[a.source]))
    rows = {id(a): _row(a, largest) for a in found if a.via}
    room: dict[str, tuple[str, float]] = {}
    for a in found:
        if a.via:
            width = max(rows[id(a)].width, room.get(a.target, ("", 0.0))[1])
            room[a.target] = (a.source, width)
    placed = _place_spine(drawn, largest, room)
    spans = [(pos[a.source], pos[a.target]) for a in found]
    levels = _levels(spans)
    bottoms = _stack_levels(spans, levels, [rows[id(a)].height if a.via else ARC_LEVEL for a in found],
                            [placed[k].upper for k in chain])

    # -- labels in rows under the lowest box: each goes to the first row where it fits
    label_top = max(p.bottom for p in placed.values()) + 14
    rows_right: list[float] = []
    labels = []
    for i, unit in enumerate(drawn):
        if unit.kind == "symbol":
            continue
        p = placed[unit.key]
        lines = _label_lines(unit)
        w = max(text_width(s, LABEL_SIZE, wt) for s, wt, _ in lines)
        cx = p.x + p.t / 2
        left = cx - w / 2
        for r, right in enumerate(rows_right):
            if right + 8 <= left:
                row = r
                break
        else:
            row = len(rows_right)
            rows_right.append(-1e9)
        rows_right[row] = cx + w / 2
        labels.append((i, unit, p, lines, cx, row))
    n_lines = max((len(lb[3]) for lb in labels), default=2)
    row_h = n_lines * LINE + 6

    pieces: list[tuple[int, int, Item]] = []
    unit_items: list[Item] = []
    # leader lines first, so boxes cover their ends
    for i, _unit, p, _lines, cx, row in labels:
        ly = label_top + row * row_h
        pieces.append((i, i, Line(((cx, p.bottom + 3), (cx, ly - 2)), stroke="#c8c8c8", width=0.6)))
    for i, key in enumerate(chain):
        p = placed[key]
        unit = p.unit
        cls = {"symbol": "merge", "bar": "bar"}.get(unit.kind, "box")
        unit_items.append(Group(tuple(_unit_items(p)), cls=cls, label=f"{unit.key} {shape_text(unit.shape)}"))
        pieces.append((i, i, unit_items[-1]))
    bottom_of = {id(a): bottom for a, bottom in zip(found, bottoms)}
    forks = _forks(found)
    for a, bottom in zip(found, bottoms):
        ps, pt = placed[a.source], placed[a.target]
        if not a.via:
            item = _arc(a, ps, pt, bottom - 4)
        else:
            parent, shared = forks.get(id(a), (None, 0))
            fork = (rows[id(parent)], bottom_of[id(parent)], shared) if parent is not None else None
            item = _branch_row(rows[id(a)], ps, pt, bottom, fork)
        pieces.append((pos[a.source], pos[a.target], item))
    for i, unit, _p, lines, cx, row in labels:
        ly = label_top + row * row_h
        texts = [Text(cx, ly + LINE * (j + 1) - 2, s, size=LABEL_SIZE, anchor="middle", weight=wt, colour=col)
                 for j, (s, wt, col) in enumerate(lines)]
        pieces.append((i, i, Group(tuple(texts), cls="label", label=unit.key)))
    # a row or arc may be cut just after the map it leaves (that map then starts the next row too:
    # consecutive Inception modules, each leaving the one before), nowhere else along its span
    crossed = {i for a in found for i in range(pos[a.source] + 2, pos[a.target] + 1)}
    repeated = {pos[a.source] + 1 for a in found}
    return _Strip(units, chain, found, pieces, [placed[k].x for k in chain], [placed[k].right for k in chain],
                  [i for i in range(1, len(chain)) if i not in crossed], repeated, unit_items)


def _wrap_cuts(strip: _Strip, rows: int) -> list[int]:
    """Where to cut the strip into ``rows`` rows of about equal length (fewer where it cannot be cut)."""
    start, end = strip.left[0], strip.right[-1]
    cuts: list[int] = []
    for k in range(1, rows):
        target = start + (end - start) * k / rows
        best = min((i for i in strip.cuts if not cuts or i > cuts[-1]), key=lambda i: abs(strip.left[i] - target),
                   default=None)
        if best is not None:
            cuts.append(best)
    return cuts


def _continuation(strip: _Strip, at: int, start: bool) -> Group:
    """The marker where a row ends ("continued below", after its last box) or begins (before its first)."""
    if start:
        x = strip.left[at - 1 if at in strip.repeated else at]
        items = [Text(x - 48, 4, "from above", size=LABEL_SIZE, anchor="end", colour=MUTED),
                 *_arrow(x - 44, x - 6)]
    else:
        x = strip.right[at - 1]
        items = [*_arrow(x + 8, x + 44), Text(x + 48, 4, "continued below", size=LABEL_SIZE, colour=MUTED)]
    return Group(tuple(items), cls="continued", label="from above" if start else "continued below")


def _arrow(x0: float, x1: float) -> list:
    return [Line(((x0, 0.0), (x1 - 6, 0.0)), stroke=MUTED, width=1.4),
            Polygon(((x1, 0.0), (x1 - 7, -3.5), (x1 - 7, 3.5)), fill=MUTED)]


def _compose(summary: Summary, strip: _Strip, cuts: list[int], depth: int | None, how: str, legend: bool) -> Scene:
    """The picture: title, the strip cut at ``cuts`` into rows one under another, legend, caption."""
    units = strip.units
    t = summary.totals
    title = summary.name
    sub = (f"{count(t.params)} parameters · {giga(t.macs // summary.batch)}MACs per image · "
           f"input {shape_text(summary.input)}")
    layers = len(summary.graph.nodes)
    shown = sum(1 for u in units.values() if u.key not in (INPUT, "__output__") and u.kind != "symbol")
    sub2 = f"{shown} box{'es' if shown != 1 else ''} for {layers} layer{'s' if layers != 1 else ''}"
    if depth is not None:
        sub2 += f", blocks collapsed to depth {depth} ({how})"
    if cuts:
        sub2 += f", in {len(cuts) + 1} rows"
    items: list = [
        Text(MARGIN, MARGIN + 18, title, size=20, weight="bold", colour=INK),
        Text(MARGIN, MARGIN + 40, sub, size=12, colour=INK),
        Text(MARGIN, MARGIN + 57, sub2, size=11, colour=MUTED),
    ]
    caption = ("box: height ∝ √H, depth ∝ √W, thickness = 4 + 7·log₂C;  bar: height = 20 + 40·log₁₀ features;  "
               "sizes C×H×W")
    width = max(text_width(sub, 12), text_width(sub2, 11), text_width(caption, CAPTION_SIZE)) + 2 * MARGIN
    y = MARGIN + 70.0 + 8
    bounds_of = [0, *cuts, len(strip.chain)]
    for r, (a, b) in enumerate(zip(bounds_of, bounds_of[1:])):
        row = [item for first, last, item in strip.pieces if a <= first and last < b]
        if r > 0:
            if a in strip.repeated:  # the map the row's first branches leave, drawn again
                row.append(strip.unit_items[a - 1])
                row.extend(item for first, last, item in strip.pieces if first == a - 1 and a <= last < b)
            row.append(_continuation(strip, a, start=True))
        if b < len(strip.chain):
            row.append(_continuation(strip, b, start=False))
        left, top, right, bottom = scene_bounds(row)
        items.extend(moved(item, MARGIN - left, y - top) for item in row)
        width = max(width, right - left + 2 * MARGIN)
        y += bottom - top + ROW_SPACING
    y += 10 - ROW_SPACING
    if legend:
        present = []
        for unit in units.values():
            if unit.key == "__output__":
                continue
            for fam in (unit.family, *unit.bands):
                if fam not in present:
                    present.append(fam)
        legend_items, y, lw = _legend(present, strip.found, units, MARGIN, y, width - 2 * MARGIN)
        items.append(Group(tuple(legend_items), cls="legend"))
        width = max(width, lw + 2 * MARGIN)
    items.append(Text(MARGIN, y + 14, caption, size=CAPTION_SIZE, colour=MUTED))
    height = y + 14 + MARGIN
    return Scene(math.ceil(width), math.ceil(height), items, title=f"{summary.name}: layered boxes")


def _row_boxes(row: _Row, ps: Placed, bottom: float) -> tuple[list[Placed], float]:
    """A row's boxes where they are drawn (after its source, standing on ``bottom``), and the y of its wire."""
    tall = max(p.h + p.d for p in row.boxes)
    centre = bottom - tall / 2  # the labels go above, in the row's height
    x0 = ps.right + GAP
    placed = []
    for p in row.boxes:
        q = Placed(p.unit, x0 + p.x, p.t, p.h, p.d, centre - p.h / 2 + p.d / 2)
        q.cx = q.x + q.d + q.t / 2
        placed.append(q)
    return placed, centre + min(q.d for q in placed) / 2


def _forks(found: list[Skip]) -> dict[int, tuple[Skip, int]]:
    """Branches that begin with the same layers as an earlier one (Inception-v3's 8×8 modules: one
    1×1 convolution feeding a 1×3 and a 3×1): id -> (that branch, how many layers they share).
    The shared layers are drawn once, in the earlier branch's row; the later row forks from there."""
    out: dict[int, tuple[Skip, int]] = {}
    for i, b in enumerate(found):
        parent = next((a for a in found[:i] if a.via and b.via and a.source == b.source
                       and a.via[0].key == b.via[0].key), None)
        if parent is None:
            continue
        shared = 0
        while shared < min(len(parent.via), len(b.via) - 1) and parent.via[shared].key == b.via[shared].key:
            shared += 1
        out[id(b)] = (parent, shared)
    return out


def _branch_row(row: _Row, ps: Placed, pt: Placed, bottom: float,
                fork: tuple[_Row, float, int] | None = None) -> Group:
    """A branch's boxes in a row above the spine, wired from its source and into its merge; with
    ``fork`` (the row it shares its first layers with, that row's bottom, how many it shares), the
    row draws only its own layers, wired from the last shared box in the other row."""
    a = row.skip
    colour = darker(family_colour(a.via[0].family), 0.15)
    items: list = []
    placed, line_y = _row_boxes(row, ps, bottom)
    # leave a map a little right of its middle and join a merge a little left of it, so the rows
    # of one module do not run into those of the next
    out_x, in_x = ps.cx + 3, pt.cx - 3
    if fork is None:
        wire = [(out_x, ps.arc_y), (out_x, line_y), (placed[0].x, line_y)]
    else:
        other, other_bottom, shared = fork
        other_placed, other_y = _row_boxes(other, ps, other_bottom)
        placed = placed[shared:]
        branch_x = (other_placed[shared - 1].right + placed[0].x) / 2  # in the gap after the last shared box
        wire = [(branch_x, other_y), (branch_x, line_y), (placed[0].x, line_y)]
    items.append(Line(tuple(wire), stroke=colour, width=1.2))
    for q, nxt in zip(placed, placed[1:]):
        items.append(Line(((q.x + q.t, line_y), (nxt.x, line_y)), stroke=colour, width=1.2))
    last = placed[-1]
    end = pt.arc_y - 1
    wire = [(last.x + last.t, line_y), (in_x, line_y), (in_x, end - 6)]
    items.append(Line(tuple(wire), stroke=colour, width=1.2))
    items.append(Polygon(((in_x, end), (in_x - 3.5, end - 7), (in_x + 3.5, end - 7)), fill=colour))
    for q in placed:
        items.append(Group(tuple(_unit_items(q)), cls="branch-box", label=f"{q.unit.key} {shape_text(q.unit.shape)}"))
        size = str(q.unit.shape[0]) if len(q.unit.shape) == 1 else shape_text(q.unit.shape)
        cx = q.x + q.t / 2
        top = q.upper - 4
        items.append(Text(cx, top - ROW_LABEL - 2, q.unit.detail, size=ROW_LABEL, anchor="middle", colour=MUTED))
        items.append(Text(cx, top, size, size=ROW_LABEL, anchor="middle", colour=INK))
    via = ",".join(u.key for u in a.via)
    return Group(tuple(items), cls="skip", label=f"{a.source} -> {a.target} via {via}")


def _unit_items(p: Placed) -> list:
    unit = p.unit
    if unit.kind == "symbol":
        return _symbol_items(_glyph_of(unit), p.x + ADD_RADIUS, p.top + ADD_RADIUS)
    return _box_items(p)


def _glyph_words(glyph: str) -> str:
    """The legend's words for a glyph, from the catalogue entry that declares it."""
    from ..layers import REGISTRY

    return next((t.glyph_words for t in REGISTRY.values() if t.glyph == glyph and t.glyph_words), glyph)


def _glyph_of(unit: Unit) -> str:
    return lookup_known(unit.nodes[0].type).glyph if unit.nodes else "+"


def _symbol_items(glyph: str, cx: float, cy: float) -> list:
    """A merge's catalogue glyph in a circle: ⊕ for add, ⊗ for mul, any other as its character."""
    base = family_colour("merge")
    r, ink = ADD_RADIUS, darker(base, 0.4)
    items: list = [Circle((cx, cy), r, fill=lighter(base, 0.55), stroke=darker(base, 0.3), width=1.2)]
    arm = r * 0.55
    if glyph in ("+", "×"):
        c = arm if glyph == "+" else arm * 0.72  # the cross: the plus turned by 45°, its arms as long
        if glyph == "+":
            strokes = (((cx - c, cy), (cx + c, cy)), ((cx, cy - c), (cx, cy + c)))
        else:
            strokes = (((cx - c, cy - c), (cx + c, cy + c)), ((cx - c, cy + c), (cx + c, cy - c)))
        items += [Line(ends, stroke=ink, width=1.4) for ends in strokes]
    else:
        items.append(Text(cx, cy + r * 0.4, glyph, size=r * 1.1, anchor="middle", weight="bold", colour=ink))
    return items


def _arc(a: Skip, ps: Placed, pt: Placed, peak: float) -> Group:
    """An identity shortcut: a grey arc over the boxes from the map it leaves to the merge it joins."""
    colour = "#777777"
    x0, y0 = ps.cx, ps.arc_y
    x1, y1 = pt.cx, pt.arc_y - 1
    items: list = [Line(tuple(_bridge(x0, y0, x1, y1 - 5, peak)), stroke=colour, width=1.3),
                   Polygon(((x1, y1), (x1 - 3.5, y1 - 7), (x1 + 3.5, y1 - 7)), fill=colour)]
    return Group(tuple(items), cls="skip", label=f"{a.source} -> {a.target}")


def _bridge(x0: float, y0: float, x1: float, y1: float, peak: float) -> list[tuple[float, float]]:
    """An arc over the boxes: up from (x0, y0), across at ``peak`` with round shoulders, down to (x1, y1).

    Straight sides keep it clear of the boxes it passes (a single Bézier would cut their corners).
    """
    r = max(2.0, min(36.0, (x1 - x0) / 2, y0 - peak, y1 - peak))
    k = 0.5523 * r  # cubic approximation of a quarter circle
    left = Curve((x0, peak + r), (x0, peak + r - k), (x0 + r - k, peak), (x0 + r, peak)).points(12)
    right = Curve((x1 - r, peak), (x1 - r + k, peak), (x1, peak + r - k), (x1, peak + r)).points(12)
    return [(x0, y0)] + left + right + [(x1, y1)]


def _legend(families: list[str], arcs: list[Skip], units: dict[str, Unit], x0: float, y: float,
            width: float) -> tuple[list, float, float]:
    """Swatches of the families drawn, and the kinds of arcs; returns (items, bottom y, width used)."""
    entries: list[tuple[str, str, str]] = []  # (kind, family or colour, label)
    for fam in ("input", "conv", "pool", "norm", "activation", "regularization", "dense", "merge", "reshape"):
        if fam in families:
            entries.append(("swatch", fam, FAMILY_LABELS[fam]))
    if any(not a.via for a in arcs):
        entries.append(("identity", "#777777", "identity shortcut"))
    if any(a.via for a in arcs):
        entries.append(("path", darker(family_colour(next(a for a in arcs if a.via).via[0].family), 0.15),
                        "branch: its boxes in a row above"))
    glyphs = {u.family for u in units.values() if u.kind == "box"} & {"pool", "merge"}
    for fam, label in (("pool", "pooling (its mark)"), ("merge", "concatenation (its mark)")):
        if fam in glyphs:
            entries.append(("glyph", fam, label))
    for glyph in dict.fromkeys(_glyph_of(u) for u in units.values() if u.kind == "symbol"):
        entries.append(("symbol", glyph, _glyph_words(glyph)))
    items: list = [Text(x0, y + 12, "Legend", size=10, weight="bold", colour=INK)]
    x = x0 + text_width("Legend", 10, "bold") + 12
    used = x
    for kind, what, label in entries:
        w = 22 + text_width(label, 10) + 16
        if x + w > x0 + max(width, 400) and x > x0 + 80:
            x = x0 + text_width("Legend", 10, "bold") + 12
            y += 18
        if kind == "glyph":
            c = family_colour(what)
            items.append(Group((rect(x, y + 1, 15, 15, fill=c, stroke=darker(c, 0.45), width=0.7),
                                *_glyph(what, x, y + 1, 15, 15), Text(x + 20, y + 12, label, size=10, colour=INK)),
                               cls="legend-entry", label=f"glyph {what}"))
        elif kind == "symbol":
            items.append(Group((*_symbol_items(what, x + ADD_RADIUS, y - 1 + ADD_RADIUS),
                                Text(x + 22, y + 12, label, size=10, colour=INK)),
                               cls="legend-entry", label=f"symbol {what}"))
        elif kind == "swatch":
            c = family_colour(what)
            items.append(Group((rect(x, y + 3, 14, 11, fill=c, stroke=darker(c, 0.45), width=0.7),
                                Text(x + 20, y + 12, label, size=10, colour=INK)), cls="legend-entry", label=what))
        else:
            items.append(Group((Line(((x, y + 9), (x + 16, y + 9)), stroke=what, width=1.3,
                                     dash=(5, 3) if kind == "path" else None),
                                Text(x + 20, y + 12, label, size=10, colour=INK)), cls="legend-entry", label=kind))
        x += w
        used = max(used, x)
    return items, y + 20, used - x0
