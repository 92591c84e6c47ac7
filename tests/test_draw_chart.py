"""The comparison chart: rows equal the summaries, the y axis falls back to parameters, area ∝ params."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.draw import chart
from archspec.draw.chart import Axis, chart_scene, compare_rows, fit_axis, ticks, use_log
from archspec.draw.scene import text_box
from archspec.errors import UsageError

SVG = "{http://www.w3.org/2000/svg}"
IMAGENET = ["alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
            "resnet152", "googlenet"]


@pytest.fixture(scope="module")
def zoo():
    return {name: archspec.summarize(name) for name in IMAGENET + ["lenet5", "mnist_cnn"]}


def groups(root, cls):
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == cls:
            title = g.find(f"{SVG}title")
            out.append((title.text if title is not None else "", g))
    return out


def test_rows_carry_the_summaries_figures(zoo):
    rows = compare_rows([zoo["vgg16"], zoo["lenet5"]])
    vgg, lenet = rows
    assert vgg.name == "vgg16" and vgg.params == 138_357_544 == zoo["vgg16"].totals.params
    assert vgg.gmacs == zoo["vgg16"].totals.macs / 1e9 == pytest.approx(15.47, abs=0.005)
    assert vgg.top1 == zoo["vgg16"].graph.metadata["top1"] == 71.592 and vgg.dataset == "ImageNet-1k"
    assert vgg.source == zoo["vgg16"].source
    assert lenet.top1 is None and lenet.params == 61_706
    assert lenet.to_dict()["gmacs"] == lenet.gmacs
    # GMACs are per image whatever the summary's batch
    assert compare_rows([archspec.summarize("lenet5", batch=8)])[0].gmacs == lenet.gmacs


def test_y_is_top1_when_every_spec_has_one_else_parameters(zoo):
    svg = chart_scene(compare_rows([zoo[n] for n in IMAGENET])).to_svg()
    root = ET.fromstring(svg)
    assert groups(root, "axes")[0][0] == "x: GMACs; y: top1"
    assert "Top-1 accuracy (%), ImageNet-1k" in svg
    mixed = chart_scene(compare_rows([zoo[n] for n in ("lenet5", "mnist_cnn", "resnet18", "vgg16")])).to_svg()
    assert groups(ET.fromstring(mixed), "axes")[0][0] == "x: GMACs; y: params"
    assert "Parameters (log scale)" in mixed and "Top-1" not in mixed
    assert "because lenet5, mnist_cnn report no top-1 accuracy" in mixed
    assert "metadata" not in mixed and "metadata" not in svg  # no internal keys on a picture
    assert "GMACs per image (multiply-accumulates, batch 1, log scale)" in mixed  # 0.0004 to 15.5 GMACs
    assert "log scale)" not in svg.split("GMACs per image")[1].split("<")[0]  # 0.7 to 19.6: linear


def test_bubble_area_is_proportional_to_parameters(zoo):
    rows = compare_rows([zoo[n] for n in IMAGENET + ["lenet5"]])
    root = ET.fromstring(chart_scene(rows).to_svg())
    radii = {}
    for title, g in groups(root, "bubble"):
        name = title.split(" ")[0]
        radii[name] = float(g.find(f"{SVG}circle").get("r"))
    assert set(radii) == {r.name for r in rows}
    params = {r.name: r.params for r in rows}
    biggest = max(params, key=params.get)
    assert radii[biggest] == chart.MAX_RADIUS
    for name, r in radii.items():  # r = 40 sqrt(p / p_max), written with 2 decimals
        assert r == pytest.approx(chart.MAX_RADIUS * math.sqrt(params[name] / params[biggest]), abs=0.006)
    ratio = (radii["vgg16"] / radii["resnet18"]) ** 2
    assert ratio == pytest.approx(params["vgg16"] / params["resnet18"], rel=0.002)


def test_every_spec_is_labelled_and_labels_do_not_overlap(zoo):
    rows = compare_rows([zoo[n] for n in IMAGENET + ["lenet5", "mnist_cnn"]])
    scene = chart_scene(rows)
    root = ET.fromstring(scene.to_svg())
    names = {title: [t.text for t in g.iter(f"{SVG}text")] for title, g in groups(root, "name")}
    assert names == {r.name: [r.name] for r in rows}
    for subset in (IMAGENET, IMAGENET + ["lenet5", "mnist_cnn"]):
        texts = [t for _, g in groups(ET.fromstring(chart_scene(compare_rows([zoo[n] for n in subset])).to_svg()),
                                      "name") for t in g.iter(f"{SVG}text")]
        boxes = [text_box(_text(t)) for t in texts]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert chart._overlap(a, b) == 0, (a, b)


def _text(el):
    from archspec.draw.scene import Text

    return Text(float(el.get("x")), float(el.get("y")), el.text, size=float(el.get("font-size")),
                anchor=el.get("text-anchor", "start"), weight=el.get("font-weight", "normal"))


def test_axes_fit_the_bubbles_and_ticks_are_labelled():
    assert use_log([0.0004, 15.5]) and not use_log([0.7, 19.6]) and not use_log([0.0, 3.0])
    axis = fit_axis([1.0, 10.0, 100.0], [5, 10, 40], 500, log=True)
    for v, r in zip([1.0, 10.0, 100.0], [5, 10, 40]):
        assert r <= axis(v) <= 500 - r
    assert ticks(Axis(0, 2, True, 500)) == [1, 2, 5, 10, 20, 50, 100]
    assert ticks(Axis(-0.3, 7.9, True, 500)) == [10.0 ** k for k in range(0, 8)]
    assert ticks(Axis(55, 80, False, 500)) == [55, 60, 65, 70, 75, 80]
    svg = chart_scene(compare_rows([archspec.summarize("lenet5")])).to_svg()  # one spec: still a chart
    assert re.search(r">\d[\d.]*K<", svg)  # parameter ticks read 40K, 60K, ...


def test_compare_writes_the_chart(tmp_path):
    from archspec.draw import compare

    rows = compare(["lenet5", "mnist_cnn"], tmp_path / "c.png")
    assert [r.name for r in rows] == ["lenet5", "mnist_cnn"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError):
        chart_scene([])
