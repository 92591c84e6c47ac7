"""Graphviz as layout only: its JSON drawn as a Scene with the bundled font; titles kept clear of edges."""
from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.draw import layout
from archspec.draw.graph import dot_scene, find_engine, to_dot
from archspec.draw.scene import Group, Line, Polygon, Spline, Text, text_box, text_width

needs_engine = pytest.mark.skipif(find_engine() is None, reason="no Graphviz engine (pip install graphviz-pure)")

PARALLEL = """
archspec: 1
name: parallel
input: [3, 16, 16]
layers:
  - {conv2d: {out: 8, kernel: 3, padding: 1}, name: stem}
  - name: mix
    parallel:
      - [{conv2d: {out: 4, kernel: 1}}]
      - [{conv2d: {out: 4, kernel: 1}}, {conv2d: {out: 6, kernel: 3, padding: 1}}]
      - [{conv2d: {out: 4, kernel: 1}}, {conv2d: {out: 6, kernel: 5, padding: 2}}]
      - [{maxpool2d: {kernel: 3, stride: 1, padding: 1}}, {conv2d: {out: 4, kernel: 1}}]
    merge: concat
  - global_avgpool
"""


def groups(scene, cls):
    return [g for g in scene.items if isinstance(g, Group) and g.cls == cls]


def texts(group):
    return [t for t in group.items if isinstance(t, Text)]


@pytest.fixture(scope="module")
def parallel(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "p.yaml"
    path.write_text(textwrap.dedent(PARALLEL).lstrip(), encoding="utf-8")
    return archspec.summarize(path)


def test_xdot_operations_become_scene_items():
    pen = layout._Pen()
    at = lambda x, y: (x, 100 - y)  # noqa: E731
    ops = [{"op": "c", "color": "#112233"}, {"op": "C", "color": "#445566"},
           {"op": "S", "style": "setlinewidth(2)"},
           {"op": "B", "points": [[0, 0], [1, 1], [2, 1], [3, 0], [2, -1], [1, -1], [0, 0]]},
           {"op": "b", "points": [[0, 0], [1, 5], [2, 5], [3, 9]]},
           {"op": "p", "points": [[0, 0], [4, 0], [4, 4]]},
           {"op": "F", "size": 12, "face": "DejaVu Sans"}, {"op": "t", "fontchar": 1},
           {"op": "T", "pt": [10, 20], "align": "l", "width": 40, "text": "conv"},
           {"op": "C", "color": "#ffffff00"}, {"op": "P", "points": [[0, 0], [1, 0], [1, 1]]}]
    closed, open_, outline, label, clear = layout._items(ops, pen, at)
    assert isinstance(closed, Spline) and closed.fill == "#445566" and closed.stroke == "#112233"
    assert closed.width == pytest.approx(2 * layout.PX)
    assert isinstance(open_, Spline) and open_.fill is None  # an edge is never filled, whatever its letter
    assert isinstance(outline, Polygon) and outline.fill is None
    assert isinstance(label, Text) and label.weight == "bold" and label.anchor == "start"
    assert label.size == pytest.approx(12 * layout.PX) and (label.x, label.y) == (10, 80)
    assert isinstance(clear, Polygon) and clear.fill is None  # a transparent fill is no fill


@needs_engine
def test_text_takes_the_room_the_engine_made_for_it(parallel):
    data = layout.engine_json(*reversed(find_engine()), to_dot(parallel))
    measured = [(op, size, bold) for obj in data["objects"] for op, size, bold in _text_ops(obj.get("_ldraw_", []))]
    ascii_only = [(op, size, bold) for op, size, bold in measured if op["text"].isascii()]
    assert len(ascii_only) > 10
    for op, size, bold in ascii_only:  # the engine knows DejaVu Sans's widths
        assert op["width"] == pytest.approx(text_width(op["text"], size, "bold" if bold else "normal"), abs=0.05)
    # beyond ASCII it guesses; the drawn text is then made to fit the room it was given
    wide = [(op, size, bold) for op, size, bold in measured if not op["text"].isascii()]
    assert wide
    for op, size, bold in wide:
        (drawn,) = layout._items([{"op": "F", "size": size}, {"op": "t", "fontchar": int(bold)}, op], layout._Pen(),
                                 lambda x, y: (x, y))
        assert text_width(drawn.text, drawn.size / layout.PX, drawn.weight) <= op["width"] + 0.3


def _text_ops(ops):
    size, bold = 14.0, False
    for op in ops:
        if op["op"] == "F":
            size = op["size"]
        elif op["op"] == "t":
            bold = bool(op["fontchar"] & 1)
        elif op["op"] == "T":
            yield op, size, bold


@needs_engine
def test_every_node_is_a_group_with_its_name_as_id(parallel):
    scene = dot_scene(to_dot(parallel, compact=False))
    ids = {g.id for g in groups(scene, "node")}
    assert {f"node-{n.path}" for n in parallel.graph.nodes} | {"node-@input", "node-@legend"} == ids
    root = ET.fromstring(scene.to_svg())
    assert root.find(".//{http://www.w3.org/2000/svg}g[@id='node-stem']") is not None


@needs_engine
def test_no_edge_runs_through_a_cluster_title(parallel):
    scene = dot_scene(to_dot(parallel))
    lines = layout._edge_lines([i for g in groups(scene, "edge") for i in g.items])
    titles = [(i, g) for i, g in enumerate(scene.items) if isinstance(g, Group) and g.cls == "cluster-title"]
    assert len(titles) == 5  # the parallel group and its four branches
    free = 0
    for i, title in titles:
        boxes = [text_box(t) for t in texts(title)]
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        if not layout._crosses(box, lines):
            free += 1
            continue
        # where no place along the band is free, the title lies on white drawn over the edges
        ground = scene.items[i - 1]
        assert isinstance(ground, Polygon) and ground.fill == "#ffffff"
        xs, ys = [p[0] for p in ground.points], [p[1] for p in ground.points]
        assert min(xs) <= box[0] and max(xs) >= box[2] and min(ys) <= box[1] and max(ys) >= box[3]
    assert free >= 3
    mix = next(g for _, g in titles if texts(g)[0].text == "mix")
    assert texts(mix)[0].x > 100  # slid right, off the edges that enter the group on its left


def test_a_title_with_no_free_place_is_drawn_on_white_over_the_edges():
    title = [Text(10, 20, "a title", size=10)]
    wall = [[(x, 0), (x, 40)] for x in range(0, 100, 8)]  # edges every 8 units: no gap for the title
    placed, crossed = layout._place_title(title, (0, 100), wall)
    assert crossed and placed == title
    placed, crossed = layout._place_title(title, (0, 100), [[(15, 0), (15, 40)]])
    assert not crossed and not layout._crosses(text_box(placed[0]), [[(15, 0), (15, 40)]])
    assert all(isinstance(p, Text) for p in placed) and not any(isinstance(p, Line) for p in placed)


def test_an_underscore_in_a_node_name_is_kept_clear_of_the_line_under_it():
    name, kind, shape = (Text(50, 20, "Conv2d_2a_3x3", 14.7, weight="bold"), Text(50, 34.7, "conv2d 3×3", 14.7),
                         Text(50, 47, "32×147×147", 12.0))
    top, bottom = 4.0, 53.0
    moved = layout._clear_underscores([name, kind, shape], top, bottom)
    underscore_bottom = moved[0].y + layout.UNDERSCORE_DEPTH * name.size
    assert text_box(moved[1])[1] - underscore_bottom >= layout.LINE_CLEARANCE - 1e-9  # was touching
    assert moved[1].y - moved[2].y == kind.y - shape.y  # the lines under it move together
    assert text_box(moved[0])[1] >= top + layout.BORDER_CLEARANCE - 1e-9  # still inside the node
    assert text_box(moved[2])[3] <= bottom - layout.BORDER_CLEARANCE + 1e-9
    # no underscore, or no room: nothing moves out of the node
    plain = [Text(50, 20, "conv1", 14.7), kind]
    assert layout._clear_underscores(plain, top, bottom) == plain
    tight = layout._clear_underscores([name, kind], text_box(name)[1] - 1, text_box(kind)[3] + 1)
    assert [t.y for t in tight] == [name.y, kind.y]


@needs_engine
def test_a_drawn_node_name_with_underscores_clears_the_next_line_inside_its_node(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text("archspec: 1\nname: u\ninput: [3, 16, 16]\nlayers:\n"
                    "  - {conv2d: {out: 8, kernel: 3}, name: Conv2d_2a_3x3}\n  - global_avgpool\n", encoding="utf-8")
    summary = archspec.summarize(path)
    scene = dot_scene(to_dot(summary))
    (node,) = [g for g in groups(scene, "node") if "Conv2d_2a_3x3" in g.label]
    lines = sorted({t.y for t in texts(node)})
    first = [t for t in texts(node) if t.y == lines[0]]
    below = min(text_box(t)[1] for t in texts(node) if t.y == lines[1])
    assert below - (lines[0] + layout.UNDERSCORE_DEPTH * first[0].size) >= layout.LINE_CLEARANCE - 1e-9
    outline = [p for item in node.items if isinstance(item, (Polygon, Spline)) for p in item.points]
    assert min(p[1] for p in outline) <= min(text_box(t)[1] for t in texts(node))
    assert max(p[1] for p in outline) >= max(text_box(t)[3] for t in texts(node))
