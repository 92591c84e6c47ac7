"""The comparison chart: rows equal the summaries, the y axis falls back to parameters, area ∝ params.

Checked on matplotlib's own figure objects (what was drawn, where) and on the written SVG.
"""
from __future__ import annotations

import math
import re

import pytest

import archspec
from archspec.draw import chart
from archspec.draw.chart import chart_figure, chart_picture, compare_rows, fit_axis, use_log
from archspec.errors import UsageError

IMAGENET = ["alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
            "resnet152", "googlenet"]


@pytest.fixture(scope="module")
def zoo():
    return {name: archspec.summarize(name) for name in IMAGENET + ["lenet5", "mnist_cnn"]}


def by_gid(figure, prefix):
    """Artists whose gid starts with ``prefix``, in the rows' order."""
    found = [a for a in figure.findobj() if (a.get_gid() or "").startswith(prefix)]
    return sorted(found, key=lambda a: int(a.get_gid().split()[-1]))


def tick_words(axis) -> list[str]:
    axis.figure.canvas.draw()
    return [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_text() and t.get_visible()]


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
    figure = chart_figure(compare_rows([zoo[n] for n in IMAGENET]))
    (ax,) = figure.axes
    assert ax.get_ylabel() == "Top-1 accuracy (%), ImageNet-1k"
    assert ax.get_xlabel() == "GMACs per image (multiply-accumulates, batch 1)"  # 0.7 to 19.6: linear
    assert ax.get_xscale() == ax.get_yscale() == "linear"
    mixed = chart_figure(compare_rows([zoo[n] for n in ("lenet5", "mnist_cnn", "resnet18", "vgg16")]))
    (mx,) = mixed.axes
    assert mx.get_ylabel() == "Parameters (log scale)" and mx.get_yscale() == "log"
    assert mx.get_xlabel() == "GMACs per image (multiply-accumulates, batch 1, log scale)"  # 0.0004 to 15.5
    words = [t.get_text() for t in mixed.texts]
    assert any("because lenet5, mnist_cnn report no top-1 accuracy" in w for w in words)
    svg = chart_picture(compare_rows([zoo[n] for n in ("lenet5", "mnist_cnn", "resnet18", "vgg16")])).to_svg()
    words = " ".join(re.findall(r"<!-- (.*?) -->", svg))  # the words written beside their outlines
    assert "Top-1" not in words and "metadata" not in words  # no internal keys on a picture
    assert "<!-- Parameters against operations -->" in svg and "<!-- mnist_cnn -->" in svg


def test_bubble_area_is_proportional_to_parameters(zoo):
    rows = compare_rows([zoo[n] for n in IMAGENET + ["lenet5"]])
    figure = chart_figure(rows)
    bubbles = by_gid(figure, "bubble")
    assert len(bubbles) == len(rows)
    radii = {row.name: math.sqrt(b.get_sizes()[0]) / 2 for row, b in zip(rows, bubbles)}  # size: diameter²
    params = {r.name: r.params for r in rows}
    biggest = max(params, key=params.get)
    assert radii[biggest] == pytest.approx(chart.MAX_RADIUS)
    for name, r in radii.items():
        assert r == pytest.approx(chart.MAX_RADIUS * math.sqrt(params[name] / params[biggest]))
    ratio = (radii["vgg16"] / radii["resnet18"]) ** 2
    assert ratio == pytest.approx(params["vgg16"] / params["resnet18"])
    # and on the page: every bubble (centre ± radius, in pixels) lies inside the plot
    figure.canvas.draw()
    ax = figure.axes[0]
    plot = ax.get_window_extent(figure.canvas.get_renderer())
    for row, bubble in zip(rows, bubbles):
        x, y = ax.transData.transform(bubble.get_offsets()[0])
        r = radii[row.name] * figure.dpi / 72
        assert plot.x0 < x - r and x + r < plot.x1 and plot.y0 < y - r and y + r < plot.y1, row.name


def test_every_spec_is_named_and_names_do_not_overlap(zoo):
    for subset in (IMAGENET, IMAGENET + ["lenet5", "mnist_cnn"], ["lenet5", "mnist_cnn", "vgg16", "vgg16_bn"]):
        rows = compare_rows([zoo[n] for n in subset])
        figure = chart_figure(rows)
        names = by_gid(figure, "name")
        assert [n.get_text() for n in names] == [r.name for r in rows]
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        boxes = [n.get_window_extent(renderer) for n in names]
        plot = figure.axes[0].get_window_extent(renderer)
        for i, a in enumerate(boxes):
            assert plot.x0 <= a.x0 and a.x1 <= plot.x1 and plot.y0 <= a.y0 and a.y1 <= plot.y1, subset[i]
            for b in boxes[i + 1:]:
                assert not a.overlaps(b), (a, b)


def test_axes_fit_the_bubbles_and_ticks_are_labelled():
    assert use_log([0.0004, 15.5]) and not use_log([0.7, 19.6]) and not use_log([0.0, 3.0])
    lo, hi = fit_axis([1.0, 10.0, 100.0], [5, 10, 40], 500, log=True)
    for v, r in zip([1.0, 10.0, 100.0], [5, 10, 40]):
        position = (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * 500
        assert r <= position <= 500 - r
    one = chart_figure(compare_rows([archspec.summarize("lenet5")]))  # one spec: still a chart
    words = tick_words(one.axes[0].yaxis)
    assert words and all(w.endswith("K") for w in words), words  # parameter ticks read 40K, 60K, ...
    (ax,) = chart_figure(compare_rows([archspec.summarize(n) for n in ("lenet5", "alexnet")])).axes
    assert {"0.001", "0.01", "0.1"} <= set(tick_words(ax.xaxis))  # plain numbers on a log axis too
    assert {"100K", "1M", "10M"} <= set(tick_words(ax.yaxis))


def test_the_svg_needs_no_fonts_and_is_the_same_every_time(zoo):
    rows = compare_rows([zoo[n] for n in ("lenet5", "alexnet")])
    svg = chart_picture(rows).to_svg()
    assert "<text" not in svg and "DejaVuSans" in svg  # text as DejaVu Sans outlines
    assert svg == chart_picture(rows).to_svg()
    assert "<!-- alexnet -->" in svg  # the words stay searchable beside their outlines


def test_compare_writes_the_chart(tmp_path):
    from archspec.draw import compare

    rows = compare(["lenet5", "mnist_cnn"], tmp_path / "c.png")
    assert [r.name for r in rows] == ["lenet5", "mnist_cnn"]
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError):
        chart_figure([])
    with pytest.raises(UsageError, match=".svg, .png"):
        rows.picture().save(tmp_path / "c.gif")
