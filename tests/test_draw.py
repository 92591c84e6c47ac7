"""archspec.draw and the draw/compare commands: every zoo spec, both styles, SVG and PNG, on a
machine without a system Graphviz (the system `dot` is hidden; graphviz-pure renders)."""
from __future__ import annotations

import math
import shutil
import struct
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec import draw, zoo
from archspec.draw.graph import find_engine

from shared_specs import zoo_representatives

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])
needs_engine = pytest.mark.skipif(find_engine() is None, reason="no dot engine installed (pip install graphviz-pure)")


@pytest.fixture
def no_system_dot(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))


@needs_engine
@pytest.mark.parametrize("style", draw.STYLES)
@pytest.mark.parametrize("name", zoo_representatives(zoo.names()))
def test_every_zoo_spec_draws_in_both_styles_and_formats(name, style, tmp_path, no_system_dot):
    picture = draw.draw(name, tmp_path / f"{name}.svg", style=style)
    root = ET.parse(picture.path).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    assert name in text or "input" in text  # titled, or at least the input is labelled
    png = picture.save(tmp_path / f"{name}.png")
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    # PNG at 2x by default: twice the SVG's size
    assert png_size(png.read_bytes()) == (math.ceil(picture.width * 2), math.ceil(picture.height * 2))


def test_wrong_suffix_and_style_are_usage_errors(tmp_path):
    with pytest.raises(archspec.UsageError, match=r"\.svg"):
        draw.draw("mnist_cnn", tmp_path / "out.jpg")
    with pytest.raises(archspec.UsageError, match="boxes"):
        draw.draw("mnist_cnn", tmp_path / "out.svg", style="bars")
    with pytest.raises(archspec.UsageError, match=r"\.png"):
        draw.draw("mnist_cnn", tmp_path / "out.pdf", style="boxes")


@needs_engine
def test_draw_command(invoke, tmp_path, no_system_dot):
    out = tmp_path / "r18.svg"
    result = invoke("draw", "resnet18.yaml", "-o", str(out), "--depth", "1", "--rankdir", "LR", "--no-shapes",
                    "--no-legend", "--no-fold")
    assert result.exit_code == 0, result.output
    assert out.exists() and f"wrote {out}" in result.output
    assert invoke("draw", "mnist_cnn", "-o", str(tmp_path / "m.png"), "--style", "boxes").exit_code == 0


def test_draw_command_errors(invoke, tmp_path, no_system_dot):
    bad = invoke("draw", "mnist_cnn", "-o", str(tmp_path / "m.pdf"))
    assert bad.exit_code == 2 and "Graphviz" in bad.stderr and "Traceback" not in bad.output
    assert invoke("draw", "nope.yaml", "-o", str(tmp_path / "x.svg")).exit_code == 1
    assert invoke("draw", "mnist_cnn", "-o", str(tmp_path / "x.gif")).exit_code == 2


def test_draw_rows_option_sets_the_boxes_rows_and_refuses_bad_values(invoke, tmp_path):
    out = tmp_path / "l.svg"
    result = invoke("draw", "lenet5", "-o", str(out), "--style", "boxes", "--rows", "2")
    assert result.exit_code == 0, result.output
    svg = out.read_text(encoding="utf-8")
    assert "in 2 rows" in svg and svg.count('class="continued"') == 2  # one row ends, the next begins
    one = invoke("draw", "lenet5", "-o", str(out), "--style", "boxes", "--rows", "1")
    assert one.exit_code == 0 and 'class="continued"' not in out.read_text(encoding="utf-8")
    for bad, words in ((["--style", "boxes", "--rows", "0"], "--rows"), (["--style", "boxes", "--rows", "5"], "--rows"),
                       (["--style", "boxes", "--rows", "two"], "--rows"), (["--rows", "2"], "boxes style")):
        refused = invoke("draw", "lenet5", "-o", str(tmp_path / "x.svg"), *bad)
        assert refused.exit_code == 2 and words in refused.stderr and "Traceback" not in refused.output, bad
    assert not (tmp_path / "x.svg").exists()
    with pytest.raises(archspec.UsageError, match="boxes style"):
        draw.draw("lenet5", style="graph", rows=2)


def test_compare_command_prints_the_table_and_writes_the_chart(invoke, tmp_path):
    out = tmp_path / "chart.svg"
    result = invoke("compare", "alexnet", "resnet50.yaml", "lenet5", "-o", str(out))
    assert result.exit_code == 0, result.output
    for name in ("alexnet", "resnet50", "lenet5"):
        assert name in result.output
    assert "25,557,032" in result.output and "4.09" in result.output  # resnet50's params and GMACs
    assert ET.parse(out).getroot().tag.endswith("svg")
    rows = draw.compare(["alexnet", "lenet5"])
    assert [r.name for r in rows] == ["alexnet", "lenet5"]
    assert rows._repr_svg_().startswith("<?xml") and "alexnet" in rows._repr_svg_()  # a notebook shows the chart
    assert rows[0].params == archspec.summarize("alexnet").totals.params


@needs_engine
def test_archspec_draw_is_callable_returns_a_picture_that_shows_and_saves_itself(tmp_path, no_system_dot):
    import archspec.draw.graph  # importing a submodule keeps archspec.draw callable

    picture = archspec.draw("lenet5", wrap=1)
    assert picture.path is None and "Picture" in repr(picture)
    svg = picture._repr_svg_()
    assert ET.fromstring(svg.split("?>", 1)[1]).tag.endswith("svg") and "@font-face" in svg
    assert picture._repr_png_()[:8] == PNG_SIGNATURE
    assert png_size(picture.to_png(scale=3)) == (math.ceil(picture.width * 3), math.ceil(picture.height * 3))
    for suffix in ("svg", "png", "dot"):
        assert picture.save(tmp_path / f"l.{suffix}") == picture.path == tmp_path / f"l.{suffix}"
    assert (tmp_path / "l.dot").read_text(encoding="utf-8") == picture.dot
    with pytest.raises(archspec.UsageError, match="scale"):
        picture.save(tmp_path / "l.png", scale=0)
    with pytest.raises(archspec.UsageError, match=r"\.svg"):
        archspec.draw("lenet5", style="boxes").save(tmp_path / "l.dot")


@needs_engine
def test_a_long_chain_wraps_towards_a_slide(no_system_dot):
    tall = draw.draw("resnet50", wrap=1)
    auto = draw.draw("resnet50")
    assert tall.height > 2.5 * tall.width  # one column
    assert auto.dot.count("continued in column") >= 2 and 0.9 < auto.width / auto.height < 3.2
    wide = draw.draw("vgg16", rankdir="LR", wrap=1)
    assert wide.width > 3 * wide.height and "rankdir=LR" in wide.dot
    with pytest.raises(archspec.UsageError, match="wrap"):
        draw.draw("lenet5", wrap=0)
