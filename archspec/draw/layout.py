"""Graphviz as a layout engine only: DOT in, positions out, drawn as a ``Scene``.

The engine (``graphviz-pure``, installed with archspec, or the system ``dot``) is asked for its
layout as JSON (``-Tjson``): every node, cluster and edge with its drawing operations (xdot:
polygons, Bézier chains, ellipses, text with its font, size and measured width). ``layout_scene``
turns those operations into scene items, so the graph style is written by the same code as the
boxes style: the SVG carries the bundled DejaVu Sans, the PNG is drawn with it at any scale.
The DOT names "DejaVu Sans", whose advance widths the engines know, so the space Graphviz makes
for a label is the space the text takes.

Two things are done after the layout, because Graphviz does not do them:

- a cluster's title sits in a band along the cluster's top edge, and edges into the cluster
  cross that band; the title is slid along the band (left, right, middle) to a place no edge
  crosses, and only where there is none is it drawn on a white ground over the edges;
- each node is a group with the node's name as its id, so a page can find it.
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace

from ..errors import ArchspecError
from .scene import Circle, Group, Line, Polygon, Scene, Spline, Text, rect, text_box, text_width

PX = 4 / 3  # scene units (CSS pixels at 96 dpi) per Graphviz point
NODE_PAD = 4.0  # points kept clear between a node's text and its border
UNDERSCORE_DEPTH = 0.3  # em: how far below the baseline DejaVu Sans's underscore reaches
LINE_CLEARANCE = 1.5  # scene units wanted between an underscore and the line under it
BORDER_CLEARANCE = 1.5  # scene units kept between a label moved to clear them and the node's border
ENGINE_TIMEOUT_S = 300
_NAMED = {"black": "#000000", "white": "#ffffff", "none": None, "transparent": None}


def engine_json(command: str, kind: str, dot_text: str) -> dict:
    """The layout of ``dot_text`` as the engine's JSON (with xdot drawing operations)."""
    try:
        done = subprocess.run([command, "-Tjson"], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=ENGINE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ArchspecError(f"{kind} did not finish the layout in {ENGINE_TIMEOUT_S} s") from None
    except OSError as exc:
        raise ArchspecError(f"could not run {kind} ({command}): {exc}") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise ArchspecError(f"{kind} failed to lay the graph out: {err}")
    return json.loads(done.stdout.decode("utf-8"))


def _colour(value: str | None) -> tuple[str | None, float]:
    """(#rrggbb or None, opacity) of an xdot colour."""
    if value is None:
        return None, 1.0
    value = value.strip().lower()
    if value in _NAMED:
        return _NAMED[value], 1.0
    if value.startswith("#") and len(value) == 9:
        alpha = int(value[7:9], 16) / 255
        return (value[:7], alpha) if alpha > 0 else (None, 1.0)
    if value.startswith("#") and len(value) == 7:
        return value, 1.0
    return "#000000", 1.0


class _Pen:
    """The drawing state xdot operations change as they go."""

    def __init__(self) -> None:
        self.stroke: str | None = "#000000"
        self.fill: str | None = None
        self.opacity = 1.0
        self.width = 1.0
        self.dash: tuple[float, float] | None = None
        self.invisible = False
        self.size = 14.0
        self.bold = False


def _items(ops: list[dict] | None, pen: _Pen, at, box: tuple[float, float] | None = None) -> list:
    """Scene items of xdot operations; ``at`` maps Graphviz points (y up) to scene units; ``box`` is
    the (left, right) of the node whose label they draw, in points."""
    out: list = []
    lines: dict[float, int] = {}  # how many pieces of text each baseline holds
    for op in ops or ():
        if op["op"] == "T":
            lines[op["pt"][1]] = lines.get(op["pt"][1], 0) + 1
    for op in ops or ():
        kind = op["op"]
        if kind == "c":
            pen.stroke = _colour(op.get("color"))[0]
        elif kind == "C":
            pen.fill, pen.opacity = _colour(op.get("color"))
        elif kind == "S":
            style = op.get("style", "")
            if style.startswith("setlinewidth("):
                pen.width = float(style[len("setlinewidth("):-1])
            elif style == "dashed":
                pen.dash = (5.0, 2.0)
            elif style == "dotted":
                pen.dash = (1.0, 2.5)
            elif style == "solid":
                pen.dash = None
            elif style == "bold":
                pen.width = 2.0
            elif style == "invis":
                pen.invisible = True
        elif kind == "F":
            pen.size = float(op.get("size", 14.0))
        elif kind == "t":
            pen.bold = bool(int(op.get("fontchar", 0)) & 1)
        elif pen.invisible:
            continue
        elif kind in ("P", "p", "L"):
            points = tuple(at(x, y) for x, y in op["points"])
            if kind == "L":
                out.append(Line(points, stroke=pen.stroke or "#000000", width=pen.width * PX, dash=_dash(pen)))
            else:
                out.append(Polygon(points, fill=pen.fill if kind == "P" else None, stroke=pen.stroke,
                                   width=pen.width * PX, opacity=pen.opacity if kind == "P" else 1.0))
        elif kind in ("B", "b"):
            # engines differ on which letter is the filled one: a closed outline with a fill is filled
            points = tuple(at(x, y) for x, y in op["points"])
            closed = len(points) > 3 and math.dist(points[0], points[-1]) < 1e-6
            out.append(Spline(points, fill=pen.fill if closed else None, stroke=pen.stroke,
                              width=pen.width * PX, dash=_dash(pen), opacity=pen.opacity))
        elif kind in ("E", "e"):
            (cx, cy), (rx, ry) = op["rect"][:2] if len(op["rect"]) == 2 else (op["rect"][:2], op["rect"][2:])
            centre = at(cx, cy)
            fill = pen.fill if kind == "E" else None
            if abs(rx - ry) < 1e-6:
                out.append(Circle(centre, rx * PX, fill=fill, stroke=pen.stroke, width=pen.width * PX))
            else:
                pts = tuple((centre[0] + rx * PX * math.cos(a), centre[1] + ry * PX * math.sin(a))
                            for a in (2 * math.pi * i / 48 for i in range(48)))
                out.append(Polygon(pts, fill=fill, stroke=pen.stroke, width=pen.width * PX))
        elif kind == "T":
            x, y = at(*op["pt"])
            anchor = {"l": "start", "c": "middle", "r": "end"}.get(op.get("align", "c"), "middle")
            text, weight = op.get("text", ""), "bold" if pen.bold else "normal"
            size = pen.size
            # the engines guess the width of characters beyond ASCII (×, →): never overflow their room.
            # A line alone in a node (a shape "48×35×35") may keep its size if, centred where the
            # engine centred it, it still clears the node's border: it is narrower than the node
            room, needed = float(op.get("width", 0) or 0), text_width(text, size, weight)
            if room > 0 and needed > room + 0.25:
                left = float(op["pt"][0]) - {"l": 0.0, "c": room / 2, "r": room}.get(op.get("align", "c"), room / 2)
                mid = left + room / 2
                if (box is not None and lines[op["pt"][1]] == 1 and mid - needed / 2 >= box[0] + NODE_PAD
                        and mid + needed / 2 <= box[1] - NODE_PAD):
                    x, anchor = at(mid, op["pt"][1])[0], "middle"
                else:
                    size *= room / needed
            out.append(Text(x, y, text, size=size * PX, anchor=anchor, weight=weight,
                            colour=pen.stroke or "#000000"))
    return out


def _dash(pen: _Pen):
    return (pen.dash[0] * PX, pen.dash[1] * PX) if pen.dash else None


def _bounds(text: Text) -> tuple[float, float, float, float]:
    return text_box(text)


def _crosses(box, lines: list[list[tuple[float, float]]]) -> bool:
    """Whether any polyline passes through the box (left, top, right, bottom)."""
    left, top, right, bottom = box
    for pts in lines:
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if max(x0, x1) < left or min(x0, x1) > right or max(y0, y1) < top or min(y0, y1) > bottom:
                continue
            # clip the segment to the box's rows and see whether it is inside the columns there
            for t in (i / 8 for i in range(9)):
                x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
                if left <= x <= right and top <= y <= bottom:
                    return True
    return False


def _edge_lines(edge_items) -> list[list[tuple[float, float]]]:
    lines = []
    for item in edge_items:
        if isinstance(item, Spline):
            lines.append(item.flat(8))
        elif isinstance(item, Line):
            lines.append(list(item.points))
    return lines


def _place_title(texts: list[Text], band: tuple[float, float], lines) -> tuple[list, bool]:
    """The cluster title moved along its band (x from band[0] to band[1]) to where no edge crosses it."""
    boxes = [_bounds(t) for t in texts]
    left = min(b[0] for b in boxes)
    right = max(b[2] for b in boxes)
    top = min(b[1] for b in boxes) - 1
    bottom = max(b[3] for b in boxes) + 1
    width = right - left
    pad = 3.0
    candidates = [left, band[1] - pad - width, (band[0] + band[1] - width) / 2]
    # and every gap between the edges that cross the band
    xs = sorted(x for pts in lines for (x, y) in pts if top <= y <= bottom)
    for a, b in zip([band[0]] + xs, xs + [band[1]]):
        if b - a > width + 2 * pad:
            candidates.append(a + pad)
    for x in candidates:
        if x < band[0] - 0.5 or x + width > band[1] + 0.5:
            continue
        if not _crosses((x - 1, top, x + width + 1, bottom), lines):
            dx = x - left
            return [Text(t.x + dx, t.y, t.text, t.size, t.anchor, t.weight, t.colour) for t in texts], False
    return texts, True


def _clear_underscores(label: list, top: float, bottom: float) -> list:
    """A node's label lines spread apart where an underscore touches the line under it.

    The engines space a label's lines by exactly the font size, and an underscore in the first
    line (a name such as "Conv2d_2a_3x3") reaches into the letters of the next. The first line is
    moved up and the rest down, within the room the node already has between its text and its
    border: the node keeps its size, and so the picture its fit on a slide.
    """
    texts = [t for t in label if isinstance(t, Text)]
    baselines = sorted({t.y for t in texts})
    first = [t for t in texts if t.y == baselines[0]] if len(baselines) > 1 else []
    if not any("_" in t.text for t in first):
        return label
    under = min(text_box(t)[1] for t in texts if t.y == baselines[1])
    need = baselines[0] + UNDERSCORE_DEPTH * max(t.size for t in first) + LINE_CLEARANCE - under
    room_above = max(0.0, min(text_box(t)[1] for t in first) - top - BORDER_CLEARANCE)
    room_below = max(0.0, bottom - BORDER_CLEARANCE - max(text_box(t)[3] for t in texts if t.y == baselines[-1]))
    if need <= 0:
        return label
    up = min(room_above, max(need / 2, need - room_below))
    down = min(room_below, need - up)
    return [replace(t, y=t.y - up if t.y == baselines[0] else t.y + down) if isinstance(t, Text) else t
            for t in label]


def layout_scene(data: dict, title: str = "") -> Scene:
    """The scene of an engine's JSON layout (see the module's documentation)."""
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    margin = 4.0

    def at(x: float, y: float) -> tuple[float, float]:
        return (x - x0) * PX + margin, (y1 - y) * PX + margin

    pen = _Pen()
    graph_items = _items(data.get("_ldraw_"), pen, at)
    objects = data.get("objects", [])
    n_sub = int(data.get("_subgraph_cnt", 0))
    clusters, nodes = objects[:n_sub], objects[n_sub:]
    outlines: list = []
    titles: list[tuple[list[Text], tuple[float, float]]] = []
    for cluster in clusters:
        if not str(cluster.get("name", "")).startswith("cluster"):
            continue
        outlines.extend(_items(cluster.get("_draw_"), _Pen(), at))
        texts = [t for t in _items(cluster.get("_ldraw_"), _Pen(), at) if isinstance(t, Text)]
        if texts:
            bx0, _, bx1, _ = (float(v) for v in cluster["bb"].split(","))
            titles.append((texts, (at(bx0, 0)[0], at(bx1, 0)[0])))
    edge_groups: list = []
    lines: list = []
    for edge in data.get("edges", []):
        items: list = []
        pen = _Pen()
        for key in ("_draw_", "_hdraw_", "_tdraw_", "_ldraw_", "_hldraw_", "_tldraw_"):
            items.extend(_items(edge.get(key), pen, at))
        lines.extend(_edge_lines(items))
        if items:
            edge_groups.append(Group(tuple(items), cls="edge"))
    title_items: list = []
    for texts, band in titles:
        placed, crossed = _place_title(texts, band, lines)
        if crossed:  # no free place: the title on a white ground, over the edges
            boxes = [_bounds(t) for t in placed]
            left, top = min(b[0] for b in boxes) - 2, min(b[1] for b in boxes) - 1
            right, bottom = max(b[2] for b in boxes) + 2, max(b[3] for b in boxes) + 1
            title_items.append(rect(left, top, right - left, bottom - top, fill="#ffffff", stroke=None, opacity=0.9))
        title_items.append(Group(tuple(placed), cls="cluster-title"))
    node_groups = []
    for node in nodes:
        pen = _Pen()
        box = None
        if node.get("pos") and node.get("width"):
            centre, half = float(str(node["pos"]).split(",")[0]), float(node["width"]) * 72 / 2
            box = (centre - half, centre + half)
        label = _items(node.get("_ldraw_"), pen, at, box)
        if node.get("pos") and node.get("height"):
            middle, half_height = float(str(node["pos"]).split(",")[1]), float(node["height"]) * 72 / 2
            label = _clear_underscores(label, at(0, middle + half_height)[1], at(0, middle - half_height)[1])
        items = _items(node.get("_draw_"), pen, at) + label
        if items:
            name = str(node.get("name", ""))
            node_groups.append(Group(tuple(items), cls="node", label=str(node.get("tooltip", name)),
                                     id=f"node-{name}"))
    width = (x1 - x0) * PX + 2 * margin
    height = (y1 - y0) * PX + 2 * margin
    all_items = [Group(tuple(graph_items), cls="title")] + outlines + edge_groups + title_items + node_groups
    return Scene(math.ceil(width), math.ceil(height), all_items, title=title)
