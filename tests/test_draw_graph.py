"""The graph style: DOT text (goldens for small specs), depth collapsing, ×N folding, colours,
escaping, and rendering through the system ``dot`` or the self-contained ``graphviz-pure``.

Rewrite the goldens (tests/golden/draw/*.dot) with ``python -m pytest --update-golden``.
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archspec
from archspec.draw import graph as draw_graph
from archspec.draw import style
from archspec.draw.graph import render_dot, to_dot
from archspec.errors import ArchspecError, UsageError
from archspec.layers import FAMILIES
from shared_specs import RESNET_BASIC_BLOCK

ROOT = Path(__file__).resolve().parent.parent

CHAIN = """
archspec: 1
name: chain
doc: 'A "plain" chain: conv, pool & dense <no branches>'
input: [1, 28, 28]
layers:
  - conv2d: {out: 8, kernel: 3, stride: 2}
  - relu
  - maxpool2d: {kernel: 2}
  - flatten
  - dropout: {p: 0.5}
  - linear: {out: 10}
"""

RESIDUAL = "\narchspec: 1\nname: residual\ninput: [16, 32, 32]\n" + RESNET_BASIC_BLOCK + """layers:
  - {basic: {c: 32, stride: 2}, name: block}
  - {repeat: 3, name: stage, body: [{basic: {c: 32}}]}
  - global_avgpool
  - linear: {out: 10}
"""

PARALLEL = """
archspec: 1
name: parallel
input: [3, 16, 16]
layers:
  - conv2d: {out: 8, kernel: 3, padding: 1}
  - name: mix
    parallel:
      - [{conv2d: {out: 4, kernel: 1}}]
      - [{conv2d: {out: 4, kernel: 1}}, {conv2d: {out: 6, kernel: 3, padding: 1}}]
      - [{maxpool2d: {kernel: 3, stride: 1, padding: 1}}]
    merge: concat
  - global_avgpool
"""

SPECS = {"chain": CHAIN, "residual": RESIDUAL, "parallel": PARALLEL}


def summary_of(tmp_path: Path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return archspec.summarize(path)


def node_ids(dot: str) -> list[str]:
    """The ids of the node statements of DOT text written by the graphviz package."""
    ids = []
    for line in dot.splitlines():
        m = re.match(r'^\t+("(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*) \[', line)
        if m and "->" not in line and m.group(1) not in ("graph", "node", "edge"):
            ids.append(m.group(1).strip('"'))
    return ids


def edges(dot: str) -> list[tuple[str, str]]:
    return [(a.strip('"'), b.strip('"')) for a, b in re.findall(r'^\t+("[^"]+"|\S+) -> ("[^"]+"|\S+)', dot, re.M)]


def pieces(dot: str) -> list[set[str]]:
    """The sets of nodes that the drawn (not invisible) edges of DOT text join, in order of their
    first node (the legend, joined to nothing, left out)."""
    joined: dict[str, set[str]] = {}
    for line in dot.splitlines():
        m = re.match(r'^\t+("[^"]+"|\S+) -> ("[^"]+"|\S+)', line)
        if m and "invis" not in line:
            a, b = m.group(1).strip('"'), m.group(2).strip('"')
            merged = joined.get(a, {a}) | joined.get(b, {b})
            for n in merged:
                joined[n] = merged
    return list({id(s): s for s in joined.values()}.values())


@pytest.fixture(scope="module")
def resnet152():
    return archspec.summarize("resnet152")


@pytest.fixture(scope="module")
def resnet50():
    return archspec.summarize("resnet50")


# ---------------------------------------------------------------- DOT text


@pytest.mark.parametrize("name", sorted(SPECS))
def test_dot_matches_golden(tmp_path, golden, name):
    golden(f"draw/{name}.dot", to_dot(summary_of(tmp_path, SPECS[name])))


def test_dot_is_deterministic(tmp_path, resnet152):
    assert to_dot(resnet152) == to_dot(archspec.summarize("resnet152"))
    dot = to_dot(summary_of(tmp_path, PARALLEL))
    (tmp_path / "other").mkdir()
    assert dot == to_dot(summary_of(tmp_path / "other", PARALLEL))


def test_every_layer_is_a_node_with_name_type_key_params_and_shape(tmp_path):
    s = summary_of(tmp_path, CHAIN)
    dot = to_dot(s, compact=False)
    ids = node_ids(dot)
    assert ids[0] == "@input" and ids[-1] == "@legend"
    assert ids[1:-1] == [n.path for n in s.graph.nodes]
    assert "<b>conv1</b>" in dot and "conv2d" in dot and "3×3 /2, 8" in dot and "8×13×13" in dot
    # the shape is written once, in the node that makes it: edges carry none
    assert to_dot(s).count("8×13×13") == 1 and "label=" not in "".join(l for l in dot.splitlines() if "->" in l)
    assert ("@input", "conv1") in edges(dot) and ("conv1", "relu1") in edges(dot)


def test_compact_nodes_take_in_the_layers_that_only_follow_them(tmp_path):
    s = summary_of(tmp_path, CHAIN)
    dot = to_dot(s)
    assert node_ids(dot)[1:-1] == ["conv1", "pool1", "flatten1", "fc1"]  # relu into conv1, dropout into flatten1
    assert "3×3 /2, 8 + relu" in dot and "+ dropout" in dot
    assert edges(dot)[:2] == [("@input", "conv1"), ("conv1", "pool1")]
    # a block that becomes one node is drawn as that node, titled by the block
    r = to_dot(summary_of(tmp_path, RESIDUAL, "r.yaml"))
    assert "cluster_block.downsample" not in r and "<b>downsample</b>" in r and "conv2d 1×1 /2, 32 + bn" in r


def test_no_shapes_and_no_legend(tmp_path):
    s = summary_of(tmp_path, CHAIN)
    dot = to_dot(s, shapes=False, legend=False)
    assert "@legend" not in dot and "layer families" not in dot
    assert not re.search(r"-> \S+ \[label=", dot)
    assert len(edges(dot)) == len(edges(to_dot(s)))


def test_legend_lists_only_the_families_present(tmp_path):
    dot = to_dot(summary_of(tmp_path, CHAIN))
    legend = next(line for line in dot.splitlines() if line.lstrip().startswith('"@legend"'))
    for family in ("conv", "pool", "activation", "dense", "regularization", "reshape", "input"):
        assert style.FAMILY_LABELS[family] in legend, family
    assert style.FAMILY_LABELS["merge"] not in legend and style.FAMILY_LABELS["norm"] not in legend
    assert "block:" not in legend  # nothing collapsed or folded


def test_family_colours_come_from_the_one_table(tmp_path, monkeypatch):
    assert not hasattr(draw_graph, "FAMILY_COLOURS") or draw_graph.FAMILY_COLOURS is style.FAMILY_COLOURS
    assert set(style.FAMILY_COLOURS) == set(FAMILIES)
    s = summary_of(tmp_path, CHAIN)
    before = to_dot(s)
    assert draw_graph.family_fill("conv") in before
    monkeypatch.setitem(style.FAMILY_COLOURS, "conv", "#102030")
    after = to_dot(s)
    new_fill = style.lighter("#102030", draw_graph.FILL_LIGHTEN)
    assert draw_graph.family_fill("conv") == new_fill
    # the conv node and its legend swatch both change, nothing else does
    assert after.count(new_fill) == 2 and before.count(new_fill) == 0


def test_names_and_docs_are_escaped(tmp_path):
    text = CHAIN.replace("name: chain", "name: 'a \"<odd>\" & net\\\\'")
    s = summary_of(tmp_path, text)
    dot = to_dot(s)
    assert "&lt;odd&gt;" in dot and "&amp; net" in dot and "&quot;" in dot  # HTML-like title
    assert 'tooltip="A \\"plain\\" chain: conv, pool & dense <no branches>"' in dot  # plain string
    assert dot.startswith('digraph "a \\"<odd>\\" & net\\\\\\\\" {')


def test_clusters_nest_as_paths_nest(tmp_path):
    dot = to_dot(summary_of(tmp_path, RESIDUAL), fold=False, compact=False)
    clusters = re.findall(r'subgraph "?cluster_([\w.]+)"? \{', dot)
    assert clusters == ["block", "block.downsample", "stage", "stage.0", "stage.1", "stage.2"]
    # stage.0 sits inside stage: its subgraph opens before stage's closes
    lines = dot.splitlines()
    start = next(i for i, line in enumerate(lines) if "cluster_stage.0" in line)
    assert lines[start].startswith("\t\t") and 'style="dashed,rounded"' in dot


def test_parallel_branches_start_on_one_rank(tmp_path):
    dot = to_dot(summary_of(tmp_path, PARALLEL), compact=False)
    block = re.search(r"\{\n\t\trank=same\n((?:\t\t\S+\n)+)((?:\t\t.* -> .*\n)+)\t\}", dot)
    assert block is not None
    heads = [h.strip('"') for h in block.group(1).split()]
    assert heads == ["mix.branch1", "mix.branch2.conv1", "mix.branch3"]
    # invisible edges keep the branches in the order the spec lists them
    assert block.group(2).count("style=invis") == 2 and '"mix.branch1" -> ' in block.group(2)


def test_bad_options_are_usage_errors(resnet50):
    with pytest.raises(UsageError, match="rankdir"):
        to_dot(resnet50, rankdir="XY")
    with pytest.raises(UsageError, match="depth"):
        to_dot(resnet50, depth=-1)


# ---------------------------------------------------------------- depth and folding


def test_depth_collapses_groups_into_nodes(resnet50):
    dot = to_dot(resnet50, depth=0, compact=False)
    ids = node_ids(dot)
    assert ids == ["@input", "conv1", "bn1", "relu", "maxpool", "@layer1", "@layer2", "@layer3", "@layer4",
                   "avgpool", "flatten1", "fc", "@legend"]
    assert "cluster" not in dot
    label = next(line for line in dot.splitlines() if line.lstrip().startswith('"@layer3"'))
    layer3 = [r for r in archspec.summarize("resnet50", depth=0).rows if r.path == "layer3"][0]
    assert f"bottleneck_stage · {layer3.nodes} layers" in label and f"{layer3.params:,} params" in label
    assert "1024×14×14" in label
    assert edges(dot)[4:8] == [("maxpool", "@layer1"), ("@layer1", "@layer2"), ("@layer2", "@layer3"),
                               ("@layer3", "@layer4")]


def test_depth_one_keeps_stages_as_clusters_and_folds_their_copies(resnet152):
    dot = to_dot(resnet152, depth=1)
    ids = node_ids(dot)
    stages = ["@layer1.0", "@layer1.1", "@layer2.0", "@layer2.1", "@layer3.0", "@layer3.1", "@layer4.0", "@layer4.1"]
    assert [i for i in ids if i.startswith("@layer")] == stages
    assert len(re.findall(r"subgraph \"?cluster_", dot)) == 4
    assert "layer3.1–35</b> ×35" in dot


def test_identical_copies_fold_into_one_node(resnet152):
    dot = to_dot(resnet152, compact=False)
    ids = node_ids(dot)
    # layer3.0 (with the downsample) is drawn layer by layer, layer3.1 .. 35 as one node
    assert "layer3.0.conv1" in ids and "layer3.0.downsample.0" in ids
    assert "@layer3.1" in ids and not any(i.startswith("layer3.1.") or i.startswith("layer3.35") for i in ids)
    assert "<b>layer3.1–35</b> ×35" in dot and "<b>layer1.1–2</b> ×2" in dot and "<b>layer2.1–7</b> ×7" in dot
    per_copy = sum(f.params.total for f in resnet152.analysis.figures if f.path.startswith("layer3.1."))
    assert f"{35 * per_copy:,} params" in dot
    # 4 stem layers, 4 × (12 layers of copy 0 + 1 fold), avgpool, flatten, fc, input, legend
    assert len(ids) == 4 + 4 * 13 + 3 + 2
    assert ("@layer3.1", "layer4.0.conv1") in edges(dot) and ("layer3.0.relu3", "@layer3.1") in edges(dot)
    assert len(node_ids(to_dot(resnet152, fold=False, compact=False))) == len(resnet152.graph.nodes) + 2


def test_folding_needs_identical_chained_copies(tmp_path):
    # copies whose widths differ do not fold; identical parallel branches are not a chain
    text = """
    archspec: 1
    name: nofold
    input: [4, 8, 8]
    blocks:
      unit:
        params: {c: int}
        body: [{conv2d: {out: $c, kernel: 1}}, relu]
    layers:
      - {repeat: 3, name: grow, body: [{unit: {c: "${4 * (i + 1)}"}}]}
      - parallel:
          - [{unit: {c: 4}}]
          - [{unit: {c: 4}}]
        merge: add
      - {repeat: 2, name: same, body: [{unit: {c: 4}}]}
    """
    dot = to_dot(summary_of(tmp_path, text), compact=False)
    ids = node_ids(dot)
    assert {"grow.0.conv1", "grow.1.conv1", "grow.2.conv1"} <= set(ids)
    assert {"parallel1.branch1.conv1", "parallel1.branch2.conv1"} <= set(ids)
    assert "@same.0" in ids and "same.0.conv1" not in ids and "<b>same.0–1</b> ×2" in dot


def test_googlenet_has_nothing_to_fold():
    s = archspec.summarize("googlenet")
    assert len(node_ids(to_dot(s, compact=False))) == len(s.graph.nodes) + 2


# ---------------------------------------------------------------- rendering

ENGINE = shutil.which("graphviz-pure") or (
    str(Path(sys.executable).parent / "graphviz-pure") if (Path(sys.executable).parent / "graphviz-pure").exists()
    else None)
needs_engine = pytest.mark.skipif(ENGINE is None, reason="graphviz-pure is not installed")


@pytest.fixture
def no_system_dot(monkeypatch):
    """shutil.which finds no system 'dot'; every command run is recorded."""
    real_which, real_run = shutil.which, subprocess.run
    ran: list[list[str]] = []
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))

    def run(cmd, *args, **kwargs):
        ran.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    return ran


def test_dot_format_writes_the_text_atomically(tmp_path):
    out = render_dot("digraph x {}\n", tmp_path / "sub" / "g.dot", "dot")
    assert out.read_text(encoding="utf-8") == "digraph x {}\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.dot"]


@needs_engine
def test_svg_through_graphviz_pure_names_every_node(tmp_path, no_system_dot, resnet152):
    out = render_dot(to_dot(resnet152, compact=False), tmp_path / "r.svg", "svg")
    assert Path(no_system_dot[0][0]).name == "graphviz-pure" and "-Tjson" in no_system_dot[0]
    root = ET.parse(out).getroot()
    texts = {"".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")}
    for node in resnet152.graph.nodes:
        copy = node.path.split(".")[:2]
        if copy[0].startswith("layer") and copy[1] != "0":
            continue  # folded: named by the fold label
        shortcut = node.path.split(".")[-2:-1] == ["downsample"]  # the projection is one node, named after its namespace
        assert ("downsample" if shortcut else node.name) in texts, node.path
    for label in ("layer1.1–2", "layer2.1–7", "layer3.1–35", "layer4.1–2"):
        assert label in texts
    assert out.stat().st_size < 400_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.svg"]


@needs_engine
def test_png_has_the_png_signature(tmp_path, no_system_dot):
    s = summary_of(tmp_path, PARALLEL)
    out = render_dot(to_dot(s), tmp_path / "p.png", "png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_engine
def test_small_specs_render_to_svg_with_every_name(tmp_path, no_system_dot):
    for name, text in SPECS.items():
        s = summary_of(tmp_path, text, f"{name}.yaml")
        root = ET.parse(render_dot(to_dot(s, fold=False, compact=False), tmp_path / f"{name}.svg", "svg")).getroot()
        texts = {"".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")}
        assert {n.name for n in s.graph.nodes} <= texts, name


def test_pdf_without_system_graphviz_is_a_usage_error(tmp_path, no_system_dot):
    if draw_graph.find_engine() is None:
        pytest.skip("graphviz-pure is not installed")
    with pytest.raises(UsageError, match="apt-get install graphviz") as info:
        render_dot("digraph x {}", tmp_path / "g.pdf", "pdf")
    assert ".svg" in str(info.value) and ".png" in str(info.value)
    assert not (tmp_path / "g.pdf").exists() and no_system_dot == []


def test_no_engine_at_all_names_graphviz_pure(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(UsageError, match="pip install graphviz-pure"):
        render_dot("digraph x {}", tmp_path / "g.svg", "svg")


@needs_engine
def test_engine_failure_reports_its_stderr_and_writes_nothing(tmp_path, no_system_dot):
    with pytest.raises(ArchspecError, match="graphviz-pure failed") as info:
        render_dot("digraph { a -> ", tmp_path / "g.svg", "svg")
    assert "syntax" in str(info.value).lower() or "error" in str(info.value).lower()
    assert list(tmp_path.iterdir()) == []


@needs_engine
def test_system_dot_serves_where_graphviz_pure_is_missing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: ENGINE if name == "dot" else None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd) or real_run(cmd, *a, **k))
    render_dot("digraph x { a }", tmp_path / "g.svg", "svg")
    assert calls[0][0] == ENGINE
    assert draw_graph.find_engine() == ("dot", ENGINE)


@needs_engine
def test_gallery_draws_the_zoo(tmp_path):
    from archspec.draw.gallery import gallery

    from PIL import Image

    files = gallery(tmp_path, ["mnist_cnn"])
    assert [f.name for f in files] == ["mnist_cnn.svg", "mnist_cnn.png", "mnist_cnn-boxes.svg", "mnist_cnn-boxes.png"]
    for svg, png in zip(files[::2], files[1::2]):
        width = float(ET.parse(svg).getroot().get("width"))
        image = Image.open(png)
        assert image.mode == "P" and image.size[0] == math.ceil(2 * width)  # 2×, a palette to stay small
    assert [f.name for f in gallery(tmp_path, ["resnet18"], boxes=False, png=False)] == ["resnet18.svg"]


def test_drawing_never_imports_torch(tmp_path):
    probe = textwrap.dedent(f"""
        import sys, archspec
        from archspec.draw.graph import render_dot, to_dot
        render_dot(to_dot(archspec.summarize("resnet50"), depth=1), {str(tmp_path / "r.dot")!r}, "dot")
        import archspec.draw.gallery
        print("TORCH:", sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))[:5])
    """)
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "TORCH: []" in r.stdout


def unnamed_residual_chain(blocks: int) -> str:
    """A residual chain written as an unnamed repeat: no groups, only layers conv1, bn1, ..."""
    return f"""
    archspec: 1
    name: deep{blocks}
    input: [8, 8, 8]
    layers:
      - repeat: {blocks}
        body:
          - residual:
              - conv2d: {{out: 8, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
              - relu
              - conv2d: {{out: 8, kernel: 3, padding: 1, bias: false}}
              - batchnorm2d
          - relu
      - global_avgpool
      - linear: {{out: 10}}
    """


def test_unnamed_repeats_fold_and_the_picture_does_not_grow_with_the_copies(tmp_path):
    sizes = {}
    for blocks in (3, 40, 300):
        s = summary_of(tmp_path, unnamed_residual_chain(blocks), f"deep{blocks}.yaml")
        assert not s.graph.groups and len(s.graph.nodes) == 7 * blocks + 2
        for compact in (True, False):
            dot = to_dot(s, compact=compact)
            sizes[blocks, compact] = (len(node_ids(dot)), len(edges(dot)))
        assert f"<b>conv1 … relu{2 * blocks}</b> ×{blocks}" in to_dot(s)
        assert "3×3 → 3×3 → add · 7 layers each" in to_dot(s)
        per_block = sum(f.params.total for f in s.analysis.figures if f.path not in ("gpool1", "fc1"))
        assert f"{per_block:,} params" in to_dot(s)
    for compact in (True, False):
        assert sizes[3, compact] == sizes[40, compact] == sizes[300, compact]


def test_a_run_that_is_read_from_the_middle_does_not_fold(tmp_path):
    text = unnamed_residual_chain(4).replace("      - global_avgpool", "      - {add: {}, from: [relu4, relu8]}\n"
                                             "      - global_avgpool")
    s = summary_of(tmp_path, text)
    dot = to_dot(s, compact=False)
    # relu4 (the end of the 2nd copy) is read from outside: copies 1-2 and 3-4 fold apart, no edge lost
    assert "<b>conv1 … relu4</b> ×2" in dot and "<b>conv5 … relu8</b> ×2" in dot
    assert {("@conv1", "@conv5"), ("@conv1", "add5"), ("@conv5", "add5")} <= set(edges(dot))


def test_short_runs_of_repeated_layers_are_drawn_out():
    dot = to_dot(archspec.summarize("vgg16"))
    # conv, relu, conv, relu is a period of 2 twice: too short to fold, each convolution stays a node
    assert " … " not in dot and "×2</" not in dot
    assert dot.count("3×3, 64 + relu") == 2 and dot.count("3×3, 512 + relu") == 6


def test_dense_blocks_fold_into_one_node_each_however_deep():
    # a dense layer's copies differ only by their channels, which grow by the growth rate each time
    dots = {name: to_dot(archspec.summarize(name), compact=False) for name in ("densenet121", "densenet201")}
    for name, blocks in (("densenet121", (6, 12, 24, 16)), ("densenet201", (6, 12, 48, 32))):
        dot = dots[name]
        ids = node_ids(dot)
        for b, n in enumerate(blocks, start=1):
            assert f"@features.denseblock{b}.denselayer1" in ids
            assert f"<b>denselayer1–denselayer{n}</b> ×{n}" in dot
            assert f"features.denseblock{b}.denselayer2.conv1" not in ids
        assert "64 → 256 channels, +32 each" in dot  # dense block 1: 64 in, six layers of 32 new channels
    summary = archspec.summarize("densenet121")
    block1 = sum(f.params.total for f in summary.analysis.figures if f.path.startswith("features.denseblock1."))
    assert f"{block1:,} params" in dots["densenet121"]  # the fold's figures are its copies' sums
    # the picture does not grow with the number of dense layers: 169 and 201 draw as 121 does
    assert len(node_ids(dots["densenet121"])) == len(node_ids(dots["densenet201"]))


def test_a_wrapped_chain_goes_on_through_markers_and_no_edge_runs_between_pieces(resnet50):
    dot = to_dot(resnet50, wrap=3)
    first, second, third = pieces(dot)
    # each cut: the piece before ends in a marker naming the next, which begins with one naming it
    assert {"@input", "@join1.end"} <= first and {"@join1.start", "@join2.end"} <= second
    assert "@join2.start" in third and "fc" in third
    assert "@input" not in second | third and "@join1.start" not in first | third
    assert "continued in column 2" in dot and "from column 1" in dot and "continued in column 3" in dot
    assert "constraint=false" not in dot and "column 4" not in dot
    # the one tensor that crosses a cut is read through the marker: layer2.0's conv1 and its shortcut
    assert {("@join1.start", "layer2.0.conv1"), ("@join1.start", "layer2.0.downsample.0")} <= set(edges(dot))
    landscape = to_dot(resnet50, wrap=2, rankdir="LR")
    assert len(pieces(landscape)) == 2 and "continued in row 2" in landscape and "from row 1" in landscape
    assert "@join" not in to_dot(resnet50, wrap=1)


@needs_engine
def test_wrapped_pieces_stand_side_by_side_and_no_edge_leaves_its_piece(no_system_dot):
    from archspec.draw.graph import dot_scene
    from archspec.draw.scene import Group, bounds

    dot = to_dot(archspec.summarize("alexnet"), wrap=3)
    scene = dot_scene(dot)
    nodes = {item.id[len("node-"):]: bounds([item]) for item in scene.items
             if isinstance(item, Group) and item.cls == "node"}
    columns = []
    for piece in pieces(dot):
        boxes = [nodes[n] for n in piece]
        columns.append((min(b[0] for b in boxes), max(b[2] for b in boxes)))
    assert len(columns) == 3  # in the order they run, left to right:
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(columns, columns[1:]))
    for edge in (item for item in scene.items if isinstance(item, Group) and item.cls == "edge"):
        left, _, right, _ = bounds([edge])  # (an edge joining two pieces would span both)
        assert any(a - 1 <= left and right <= b + 1 for a, b in columns)
    starts = [nodes[n] for n in ("@input", "@join1.start", "@join2.start")]
    assert len({round(b[1] + b[3]) for b in starts}) == 1  # every piece begins on the input's rank


@needs_engine
def test_a_wrapped_graph_of_plain_nodes_keeps_its_joins_as_edges_that_cross_nothing(no_system_dot):
    from archspec.draw.graph import dot_scene
    from archspec.draw.layout import _crosses, _edge_lines
    from archspec.draw.scene import Group, Spline, bounds

    dot = to_dot(archspec.summarize("lenet5"), wrap=3)
    assert "@join" not in dot and "cluster" not in dot and len(pieces(dot)) == 1
    dashed = [line.strip().split(" [")[0] for line in dot.splitlines() if "->" in line and "dashed" in line]
    assert dashed == ["c3 -> s4", "flatten1 -> c5"]  # three columns, each foot to the next one's head
    scene = dot_scene(dot)
    boxes = [bounds([item]) for item in scene.items if isinstance(item, Group) and item.cls == "node"]
    joins = [item for item in scene.items if isinstance(item, Group) and item.cls == "edge"
             and any(isinstance(part, Spline) and part.dash for part in item.items)]
    assert len(joins) == 2
    for join in joins:  # clear of every node (their borders, where the join starts and ends, aside)
        assert not any(_crosses((left + 4, top + 4, right - 4, bottom - 4), _edge_lines(join.items))
                       for left, top, right, bottom in boxes)


def test_a_group_holding_most_layers_is_opened_so_a_wrap_can_cut_inside_it():
    summary = archspec.summarize("densenet121")
    assert "subgraph cluster_features {" in to_dot(summary, wrap=1)
    dot = to_dot(summary, wrap=3)
    assert "subgraph cluster_features {" not in dot and 'subgraph "cluster_features.denseblock2" {' in dot
    assert len(pieces(dot)) == 3  # three pieces side by side, joined by markers, not edges
    assert "subgraph cluster_layer1 {" in to_dot(archspec.summarize("resnet50"), wrap=3)  # no group holds most


def test_copies_whose_rates_change_fold_and_say_how():
    # ConvNeXt's blocks differ only by stochastic depth's drop probability, rising block by block
    summary = archspec.summarize("convnext_tiny")
    dot = to_dot(summary)
    assert "<b>5.0–8</b> ×9" in dot and "drop_path p 0.0353 → 0.0824" in dot
    assert "features.5.3.block.0" not in dot
    p = [n.args["p"] for n in summary.graph.nodes if n.type == "drop_path" and n.path.startswith("features.5.")]
    assert len(p) == 9 and f"{p[0]:.3g} → {p[-1]:.3g}" in dot  # the figures are the spec's, first and last


@pytest.mark.slow
def test_a_picture_drawn_for_a_slide_collapses_blocks_only_when_it_must():
    from archspec.draw.graph import _wrapped, graph_picture
    from archspec.draw.slide import fits_slide

    efficientnet = archspec.summarize("efficientnet_b1")
    _, full = _wrapped(efficientnet, {})  # every layer, wrapped as well as it can be: past the slide
    assert not fits_slide(full)
    picture = graph_picture(efficientnet)
    assert fits_slide(picture.scene) and "collapsed to depth 4 (automatically: the deepest that fits" in picture.dot
    _, deeper = _wrapped(efficientnet, {"depth": 5})
    assert not fits_slide(deeper)
    # the tallest graphs fit, and GoogLeNet and Inception-v3 with every layer: each Inception branch a
    # box titled by its kernels (docs/zoo holds every zoo spec's default picture: test_draw_slide.py)
    assert fits_slide(graph_picture(archspec.summarize("mobilenet_v3_large")).scene)
    for name, branch in (("googlenet", "<b>1×1 → 3×3</b>"), ("inception_v3", "branch5x5_2")):
        picture = graph_picture(archspec.summarize(name))
        assert fits_slide(picture.scene) and "collapsed to depth" not in picture.dot and branch in picture.dot
    resnet50 = graph_picture(archspec.summarize("resnet50"))  # folded, it fits as it is
    assert fits_slide(resnet50.scene) and "collapsed to depth" not in resnet50.dot


def test_the_docs_gallery_holds_every_zoo_spec_in_both_styles():
    from archspec import zoo

    expected = {f"{name}{style}.{kind}" for name in zoo.names() for style in ("", "-boxes") for kind in ("svg", "png")}
    assert {p.name for p in (ROOT / "docs" / "zoo").iterdir()} == expected


def test_the_legend_says_how_folded_copies_differ():
    densenet = to_dot(archspec.summarize("densenet121"))  # its dense layers grow by 32 channels a copy
    assert "block: ×N copies that differ as the node says" in densenet and "identical" not in densenet.split("@legend")[1]
    resnet = to_dot(archspec.summarize("resnet50"))
    assert "block: ×N identical copies</td>" in resnet
    both = to_dot(archspec.summarize("convnext_tiny"), depth=1)  # stages collapsed, nothing left to fold
    assert "block: collapsed</td>" in both


def test_the_merge_family_lists_every_merge_type_of_the_catalogue():
    from archspec.draw.style import FAMILY_LABELS
    from archspec.layers import REGISTRY

    merges = [t.name for t in REGISTRY.values() if t.family == "merge"]
    assert "mul" in merges and FAMILY_LABELS["merge"] == f"merge ({', '.join(merges)})"
