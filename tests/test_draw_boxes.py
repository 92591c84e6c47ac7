"""The layered-boxes picture: which nodes become boxes, bars, merges and arcs; labels; collapsing; legend."""
from __future__ import annotations

import re

import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.draw import boxes
from archspec.draw.boxes import bar_height, boxes_scene, boxes_units, thickness
from archspec.draw.slide import MIN_TEXT_PX, fits_slide, text_on_slide
from archspec.errors import UsageError

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def summaries():
    cache = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = archspec.summarize(name, **kw)
        return cache[key]

    return get


def parsed(scene):
    return ET.fromstring(scene.to_svg())


def groups(root, cls):
    """(title, [texts]) of every <g class=cls>."""
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == cls:
            title = g.find(f"{SVG}title")
            out.append((title.text if title is not None else "", [t.text for t in g.iter(f"{SVG}text")]))
    return out


def keys(root, cls):
    return [title.split(" ")[0] for title, _ in groups(root, cls)]


def all_text(root):
    return [t.text for t in root.iter(f"{SVG}text")]


def test_lenet5_boxes_bars_and_labels(summaries):
    root = parsed(boxes_scene(summaries("lenet5")))
    assert keys(root, "box") == ["input", "c1", "s2", "c3", "s4"]  # tanh and flatten fold into the box before
    assert keys(root, "bar") == ["c5", "f6", "output"]
    assert keys(root, "merge") == [] and groups(root, "skip") == []
    labels = {title: texts for title, texts in groups(root, "label")}
    assert labels["c1"] == ["c1", "conv 5×5", "6×28×28"]
    assert labels["s4"] == ["s4", "avgpool 2×2 /2", "16×5×5"]
    assert labels["c5"] == ["c5", "fc", "120"] and labels["output"][-1] == "10"
    assert labels["input"] == ["input", "1×32×32"]
    text = all_text(root)
    assert "lenet5" in text and any("61,706 parameters" in t for t in text)


def test_one_box_per_conv_and_pool_output_in_vgg16(summaries):
    s = summaries("vgg16")
    root = parsed(boxes_scene(s))
    convs_and_pools = [n.path for n in s.graph.nodes if n.type in ("conv2d", "maxpool2d", "adaptive_avgpool2d")]
    assert keys(root, "box") == ["input"] + convs_and_pools
    assert keys(root, "bar") == ["fc1", "fc2", "fc3"]
    sizes = [texts[-1] for _, texts in groups(root, "label")]
    assert sizes[:3] == ["3×224×224", "64×224×224", "64×224×224"] and sizes[-4:] == ["512×7×7", "4096", "4096", "1000"]


def test_resnet18_merges_and_skip_arcs(summaries):
    root = parsed(boxes_scene(summaries("resnet18"), rows=1))  # one row: every map drawn once
    adds = keys(root, "merge")
    assert len(adds) == 8 and adds[0] == "layer1.0.add1"
    skips = [title for title, _ in groups(root, "skip")]
    assert len(skips) == 8
    identity = [t for t in skips if " via " not in t]
    projections = [t for t in skips if " via " in t]
    assert len(identity) == 5 and len(projections) == 3
    assert "maxpool -> layer1.0.add1" in identity
    assert "layer1.1.add1 -> layer2.0.add1 via layer2.0.downsample.0" in projections
    # the projection is a box in its own row above the main line, labelled with its kernel and size
    assert "layer2.0.downsample.0" not in keys(root, "box")
    assert "layer2.0.downsample.0" in keys(root, "branch-box")
    assert any(["conv 1×1 /2", "128×28×28"] == texts for _, texts in groups(root, "skip"))
    assert len(keys(root, "box")) == 1 + 1 + 1 + 16 + 1  # input, conv1, maxpool, 16 block convs, avgpool


def test_a_concat_from_an_earlier_node_is_an_arc(spec_file):
    path = spec_file("""
        archspec: 1
        name: densish
        input: [3, 16, 16]
        layers:
          - {conv2d: {out: 8, kernel: 3, padding: 1}, name: a}
          - relu
          - {conv2d: {out: 8, kernel: 3, padding: 1}, name: b}
          - {concat: {}, from: [a, b], name: cat}
          - flatten
          - {linear: {out: 10}, name: fc}
    """)
    root = parsed(boxes_scene(archspec.summarize(path)))
    assert keys(root, "box") == ["input", "a", "b", "cat"]  # a concat changes the channels: a box
    assert [t for t, _ in groups(root, "skip")] == ["a -> cat"]


def test_depth_collapses_blocks_into_one_box_each(summaries):
    units, chain, depth = boxes_units(summaries("resnet18"), depth=0)
    assert depth == 0
    assert chain == ["input", "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    root = parsed(boxes_scene(summaries("resnet18"), depth=0))
    labels = {title: texts for title, texts in groups(root, "label")}
    assert labels["layer2"] == ["layer2", "basic_stage · 16 layers", "128×28×28"]
    assert groups(root, "skip") == [] and keys(root, "merge") == []
    assert any("collapsed to depth 0 (as asked)" in t for t in all_text(root))
    # depth 1: one box per residual block
    _, chain1, _ = boxes_units(summaries("resnet18"), depth=1)
    assert [k for k in chain1 if k.startswith("layer")] == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]


def full_depth(summary, rows=None):
    """The picture with every layer drawn (the automatic choice may collapse blocks)."""
    units = boxes.select_units(summary.graph, None)
    strip = boxes._strip(units, boxes.spine(units))
    return boxes._fewest_rows(summary, strip, None, "", True, rows)


def test_big_graphs_collapse_to_the_deepest_depth_that_fits_a_slide(summaries):
    s = summaries("resnet152")
    scene = boxes_scene(s)
    assert fits_slide(scene)
    assert any("collapsed to depth 1 (automatically: the deepest that fits a slide)" in t for t in all_text(parsed(scene)))
    # nothing deeper fits, however it wraps: every layer, then depth 2
    assert not fits_slide(full_depth(s)) and not fits_slide(boxes_scene(s, depth=2))
    # depth 1 is one box per bottleneck: 3 + 8 + 36 + 3 of them
    assert sum(1 for k in keys(parsed(scene), "box") if k.startswith("layer")) == 50
    # googlenet's branches stack above its spine: drawn in full, in rows
    g = boxes_scene(summaries("googlenet"))
    assert fits_slide(g) and not any("collapsed" in t for t in all_text(parsed(g)))


def test_a_long_spine_wraps_into_rows_with_continuation_marks(summaries):
    s = summaries("googlenet")
    one, wrapped = full_depth(s, rows=1), boxes_scene(s)
    assert text_on_slide(one) < MIN_TEXT_PX <= text_on_slide(wrapped)  # a 3,468-unit strip does not fit
    root = parsed(wrapped)
    marks = [t for t, _ in groups(root, "continued")]
    assert marks == ["continued below", "from above"] and any(t.endswith(", in 2 rows") for t in all_text(root))
    # every map of the spine is drawn once, but the one the second row's first branches leave (drawn again
    # at that row's start); every branch row and arc once, none cut
    on_spine = keys(root, "box") + keys(root, "bar") + keys(root, "merge")
    assert len(on_spine) == len(keys(parsed(one), "box") + keys(parsed(one), "bar") + keys(parsed(one), "merge")) + 1
    assert sorted(groups(root, "skip")) == sorted(groups(parsed(one), "skip"))
    # the rows lie one under the other: the second's boxes all below the first's labels
    rows_y = {}
    for item in wrapped.items:
        if getattr(item, "cls", "") in ("box", "label"):
            ys = [p[1] for part in item.items for p in getattr(part, "points", ())] or [t.y for t in item.items]
            rows_y.setdefault(item.label.split(" ")[0], []).extend(ys)
    assert min(rows_y["inception5b.concat"]) > max(rows_y["conv1.conv"])
    with pytest.raises(UsageError, match="rows must be"):
        boxes_scene(s, rows=9)


def test_inception_v3_rows_cut_between_modules_that_follow_each_other(summaries):
    # no map lies between Mixed_5b .. Mixed_7c: a row may end with a module's concatenation, and the
    # next begins with it again, whence the next module's branches leave
    scene = boxes_scene(summaries("inception_v3"), depth=1, rows=3)
    root = parsed(scene)
    assert [t for t, _ in groups(root, "continued")].count("from above") == 2
    repeated = [k for k in keys(root, "box") if keys(root, "box").count(k) > 1]
    assert repeated and all(k.endswith("concat1") or k.endswith("concat") for k in repeated)


def test_inception_v3_shows_every_module_as_its_branches_on_a_slide(summaries):
    scene = boxes_scene(summaries("inception_v3"))
    assert fits_slide(scene)
    root = parsed(scene)
    # the default picture is drawn in full (nothing collapsed): each module its branches, in rows above
    assert not any("collapsed" in t for t in all_text(root))
    for module, branches in (("Mixed_5b", 4), ("Mixed_6a", 3), ("Mixed_6b", 4), ("Mixed_7a", 3)):
        rows = [title for title, _ in groups(root, "skip") if f" -> {module}.concat1 " in title]
        assert len(rows) == branches - 1, (module, rows)
    # a branch's boxes name their kernels: Mixed_5b's 5×5 branch is a 1×1 then a 5×5 convolution
    five = next(texts for title, texts in groups(root, "skip") if "Mixed_5b.branch5x5_2" in title)
    assert "conv 1×1" in five and "conv 5×5" in five
    # a 1×1 convolution feeding both a 1×3 and a 3×1 (Mixed_7b) is drawn once, the two rows forking from it
    drawn = keys(root, "branch-box")
    assert len(drawn) == len(set(drawn))
    assert [k for k in drawn if k.startswith("Mixed_7b.branch3x3_")] == [
        "Mixed_7b.branch3x3_1.conv", "Mixed_7b.branch3x3_2a.conv", "Mixed_7b.branch3x3_2b.conv"]
    # a collapsed conv-norm-activation block is labelled with its kernel, not "basic_conv · 3 layers"
    collapsed = all_text(parsed(boxes_scene(summaries("inception_v3"), depth=1)))
    assert "conv 1×7" in collapsed and not any("basic_conv" in t for t in collapsed)


def test_rows_stand_only_on_what_lies_under_them():
    # spans (first, last spine position), levels, heights, spine tops (y grows downward)
    bottoms = boxes._stack_levels([(0, 3), (4, 8), (4, 8), (0, 8)], [0, 0, 1, 2], [100.0, 20.0, 20.0, 10.0],
                                  [-50.0] * 9)
    assert bottoms[:2] == [-70.0, -70.0]  # both just above the spine (20 units)
    assert bottoms[2] == -70.0 - 20.0 - 12  # above the short row it overlaps, not as high as the tall one
    assert bottoms[3] == -70.0 - 100.0 - 12  # above everything it spans


@pytest.mark.slow
def test_every_zoo_spec_fits_a_slide_as_boxes(summaries):
    for name in archspec.zoo.names():
        scene = boxes_scene(summaries(name))
        assert fits_slide(scene), (name, scene.width, scene.height, text_on_slide(scene))


def test_an_inception_module_is_four_branches_and_their_concatenation(summaries):
    s = summaries("googlenet")
    scene = boxes_scene(s)
    root = parsed(scene)
    rows = [title for title, _ in groups(root, "skip") if " -> inception3a.concat " in title]
    on_spine = [k for k in keys(root, "box") if k.startswith("inception3a.")]
    # three branches in rows above, one along the spine, all from maxpool2 into the concatenation
    assert len(rows) == 3 and all(r.startswith("maxpool2 -> ") for r in rows)
    assert on_spine == ["inception3a.branch2.0.conv", "inception3a.branch2.1.conv", "inception3a.concat"]
    kernels = [t for title, texts in groups(root, "skip") if " -> inception3a.concat " in title for t in texts]
    assert sorted(k for k in kernels if "×" in k and not k[0].isdigit()) == [
        "conv 1×1", "conv 1×1", "conv 1×1", "conv 3×3", "maxpool 3×3"]
    # rows never overlap: the boxes of one module's rows lie one above the other
    boxes_of = {}
    for g in scene.items:
        if getattr(g, "cls", "") == "skip" and " -> inception3a.concat " in g.label:
            ys = [pt[1] for item in g.items if getattr(item, "cls", "") == "branch-box" for part in item.items
                  for pt in getattr(part, "points", ())]
            boxes_of[g.label] = (min(ys), max(ys))
    spans = sorted(boxes_of.values())
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    # pools and concatenations carry their glyph: a funnel, two bars
    assert "glyph pool" in [t for t, _ in groups(root, "legend-entry")]
    assert "glyph merge" in [t for t, _ in groups(root, "legend-entry")]


def test_vgg16_in_full_fits_a_16_to_9_slide(summaries):
    scene = boxes_scene(summaries("vgg16"))
    # on a 1920×1080 slide the picture is shown as large as fits: labels at 10 px or more, every layer drawn
    shrink = min(1920 / scene.width, 1080 / scene.height)
    assert shrink * boxes.LABEL_SIZE >= 10 and not any("collapsed" in t for t in all_text(parsed(scene)))
    # as one strip its labels would be smaller: it is drawn in two rows
    assert text_on_slide(boxes_scene(summaries("vgg16"), rows=1)) < text_on_slide(scene)


def test_legend_lists_the_families_drawn(summaries):
    def legend(name, **kw):
        root = parsed(boxes_scene(summaries(name), **kw))
        return [t for t, _ in groups(root, "legend-entry")]

    assert legend("lenet5") == ["input", "conv", "pool", "activation", "dense", "glyph pool"]
    assert legend("vgg16") == ["input", "conv", "pool", "activation", "regularization", "dense", "glyph pool"]
    assert legend("resnet18") == ["input", "conv", "pool", "norm", "activation", "dense", "merge", "identity",
                                  "path", "glyph pool", "symbol +"]
    root = parsed(boxes_scene(summaries("lenet5"), legend=False))
    assert groups(root, "legend") == [] and groups(root, "legend-entry") == []


def test_scales_keep_small_and_large_maps_visible_and_distinct():
    assert thickness(1) >= 4 and thickness(3) > thickness(1) + 5
    assert thickness(64) < thickness(128) < thickness(512) < thickness(2048) <= boxes.MAX_THICKNESS
    assert thickness(512) - thickness(64) == pytest.approx(21)  # 3 doublings, 7 units each
    assert bar_height(10) < bar_height(1000) < bar_height(4096) <= boxes.MAX_BAR
    assert boxes.spatial(224, 224) == boxes.SPATIAL and boxes.spatial(1, 4096) == boxes.MIN_SPATIAL
    assert boxes.spatial(56, 224) == pytest.approx(boxes.SPATIAL / 2)


def test_boxes_are_deterministic_and_save_as_png(summaries, tmp_path):
    s = summaries("mnist_cnn")
    assert boxes_scene(s).to_svg() == boxes_scene(s).to_svg()
    out = boxes_scene(s).save(tmp_path / "m.png", "png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = boxes_scene(s).save(tmp_path / "m.svg", "svg")
    assert ET.parse(svg).getroot().tag == f"{SVG}svg"


def test_pictures_never_import_torch(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys\nimport archspec\nfrom archspec.draw.boxes import boxes_scene\n"
        "from archspec.draw.chart import chart_picture, compare_rows\n"
        f"boxes_scene(archspec.summarize('resnet18')).save(r'{tmp_path / 'b.png'}', 'png')\n"
        "chart_picture(compare_rows([archspec.summarize('lenet5')])).to_svg()\n"
        "print('TORCH:', [m for m in sys.modules if m == 'torch' or m.startswith('torch.')][:5])\n")
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "TORCH: []" in r.stdout


def test_every_merge_with_a_catalogue_glyph_is_drawn_as_its_symbol(tmp_path):
    from archspec.layers import REGISTRY

    assert {t.name: t.glyph for t in REGISTRY.values() if t.glyph} == {"add": "+", "mul": "×"}
    spec = tmp_path / "se.yaml"  # squeeze-and-excitation: a gate (C×1×1) times the map, then a residual add
    spec.write_text("""archspec: 1
name: se
input: [8, 16, 16]
layers:
  - {conv2d: {out: 8, kernel: 3, padding: 1}, name: conv}
  - {global_avgpool: {keepdims: true}, name: squeeze}
  - {conv2d: {out: 2, kernel: 1}, name: fc1}
  - relu
  - {conv2d: {out: 8, kernel: 1}, name: fc2}
  - {sigmoid: {}, name: gate}
  - {mul: {}, from: [gate, conv], name: scale}
  - {add: {}, from: [scale, input], name: add}
""", encoding="utf-8")
    scene = boxes_scene(archspec.summarize(spec))
    root = parsed(scene)
    assert [t for t, _ in groups(root, "legend-entry")][-2:] == ["symbol ×", "symbol +"]
    assert "product (a gate)" in scene.to_svg() and "addition" in scene.to_svg()
    merges = {g.find(f"{SVG}title").text.split(" ")[0]: g for g in root.iter(f"{SVG}g") if g.get("class") == "merge"}
    assert set(merges) == {"scale", "add"}

    # ⊗ is the plus turned by 45°: its two strokes are diagonals, ⊕'s are level and upright
    def strokes(g):
        return [[float(v) for v in re.findall(r"-?[\d.]+", line.get("points"))] for line in g.iter(f"{SVG}polyline")]

    for name, diagonal in (("scale", True), ("add", False)):
        assert len(strokes(merges[name])) == 2
        for xs in strokes(merges[name]):
            x0, y0, x1, y1 = xs[:4]
            assert (abs(x1 - x0) > 1 and abs(y1 - y0) > 1) == diagonal, (name, xs)
