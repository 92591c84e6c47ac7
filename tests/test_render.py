"""Presentation: --explain against CS231n's VGG-16 table row by row, the table's memory total,
number formatting, and golden files of every output format for a small spec."""
from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest

import archspec
from archspec import render

# CS231n's VGGNet table (Stanford course notes), as written there (HxWxC shapes, 2-significant-digit memory, weights formula)
SLIDE = """
INPUT: [224x224x3] memory: 224*224*3=150K weights: 0
CONV3-64: [224x224x64] memory: 224*224*64=3.2M weights: (3*3*3)*64 = 1,728
CONV3-64: [224x224x64] memory: 224*224*64=3.2M weights: (3*3*64)*64 = 36,864
POOL2: [112x112x64] memory: 112*112*64=800K weights: 0
CONV3-128: [112x112x128] memory: 112*112*128=1.6M weights: (3*3*64)*128 = 73,728
CONV3-128: [112x112x128] memory: 112*112*128=1.6M weights: (3*3*128)*128 = 147,456
POOL2: [56x56x128] memory: 56*56*128=400K weights: 0
CONV3-256: [56x56x256] memory: 56*56*256=800K weights: (3*3*128)*256 = 294,912
CONV3-256: [56x56x256] memory: 56*56*256=800K weights: (3*3*256)*256 = 589,824
CONV3-256: [56x56x256] memory: 56*56*256=800K weights: (3*3*256)*256 = 589,824
POOL2: [28x28x256] memory: 28*28*256=200K weights: 0
CONV3-512: [28x28x512] memory: 28*28*512=400K weights: (3*3*256)*512 = 1,179,648
CONV3-512: [28x28x512] memory: 28*28*512=400K weights: (3*3*512)*512 = 2,359,296
CONV3-512: [28x28x512] memory: 28*28*512=400K weights: (3*3*512)*512 = 2,359,296
POOL2: [14x14x512] memory: 14*14*512=100K weights: 0
CONV3-512: [14x14x512] memory: 14*14*512=100K weights: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512] memory: 14*14*512=100K weights: (3*3*512)*512 = 2,359,296
CONV3-512: [14x14x512] memory: 14*14*512=100K weights: (3*3*512)*512 = 2,359,296
POOL2: [7x7x512] memory: 7*7*512=25K weights: 0
FC: [1x1x4096] memory: 4096 weights: 7*7*512*4096 = 102,760,448
FC: [1x1x4096] memory: 4096 weights: 4096*4096 = 16,777,216
FC: [1x1x1000] memory: 1000 weights: 4096*1000 = 4,096,000
""".strip().splitlines()

SLIDE_LABELS = ("INPUT", "CONV", "POOL", "FC")


def slide_part(line: str) -> str:
    """``block1.conv1  CONV3-64: [...] memory: ... weights: ... = 1,728  bias: 64  MACs: ...``
    -> the part the slide shows: from the label up to the bias."""
    if not line.startswith("INPUT"):
        line = line.split("  ", 1)[1]  # drop the node path
    return line.split("  ", 1)[0]  # bias and MACs follow after two spaces


def test_explain_reproduces_the_vgg16_slide():
    lines = render.explain_lines(archspec.summarize("vgg16"))
    ours = [slide_part(line) for line in lines]
    ours = [part for part in ours if part.startswith(SLIDE_LABELS)]
    assert len(ours) == len(SLIDE)
    for mine, slide in zip(ours, SLIDE):
        assert mine == slide


def test_explain_shows_bias_and_macs_after_the_weights():
    lines = render.explain_lines(archspec.summarize("vgg16"))
    conv1 = next(line for line in lines if line.startswith("block1.conv1"))
    assert conv1.endswith("weights: (3*3*3)*64 = 1,728  bias: 64  MACs: 224*224*64*27 = 86,704,128")
    fc3 = next(line for line in lines if line.startswith("fc3"))
    assert "bias: 1,000" in fc3
    # the rows that are not on the slide are there too: relu, dropout, the adaptive pool, flatten
    kinds = {slide_part(line).split(":")[0] for line in lines}
    assert {"RELU", "DROPOUT", "ADAPTIVE_AVGPOOL2D", "FLATTEN"} <= kinds
    flatten = next(line for line in lines if line.startswith("flatten1"))
    assert "a view" in flatten


def slide_memory(line: str) -> int:
    """The number of values a slide row stores: the product before '=' (or the lone count)."""
    memory = re.search(r"memory: ([0-9*]+)", line).group(1)
    return math.prod(int(d) for d in memory.split("*"))


def test_slide_memory_total_is_not_24M():
    """The slide says "TOTAL memory: 24M * 4 bytes ~= 93MB / image", but its rows add up to 15.2M."""
    slide_sum = sum(slide_memory(line) for line in SLIDE)
    assert slide_sum == 15_237_608
    s = archspec.summarize("vgg16")
    # the same rows as our summary computes them: the input, every conv, pool and fc output
    ours = math.prod(s.input) + sum(r.activations for r in s.rows if r.type in ("conv2d", "maxpool2d", "linear"))
    assert ours == slide_sum
    assert abs(ours - 24e6) > 8e6 and ours * 4 / 2**20 == pytest.approx(58.13, abs=0.01)  # MiB, not 93 MB
    # the summary reports the true sum of every output it stores, ReLUs and dropouts included
    every = math.prod(s.input) + sum(r.activations for r in s.rows)
    assert s.totals.activation_bytes == every * 4
    assert every == ours + sum(r.activations for r in s.rows if r.type in ("relu", "dropout", "adaptive_avgpool2d"))


@pytest.mark.parametrize("n, text", [(4096, "4096"), (9999, "9999"), (150_528, "150K"), (3_211_264, "3.2M"),
                                     (802_816, "800K"), (25_088, "25K"), (100_352, "100K"), (1_000, "1000"),
                                     (15_470_000_000, "15G")])
def test_short_numbers_as_the_slide_rounds_them(n, text):
    assert render.short(n) == text


def test_sizes_and_counts():
    assert render.count(138_357_544) == "138,357,544"
    assert render.size(138_357_544 * 4) == "527.79 MiB"
    assert render.size(1023) == "1023 B"
    assert render.size(1024) == "1.00 KiB"
    assert render.giga(15_470_264_320) == "15.47 G"


# ------------------------------------------------------------------ golden files

TINY = """\
archspec: 1
name: tiny
doc: a small network exercising blocks, batch norm, a residual, a frozen layer and dropout
input: [3, 32, 32]
params: {classes: 10}
blocks:
  unit:
    params: {c: int}
    body:
      - conv2d: {out: $c, kernel: 3, padding: 1, bias: false}
      - batchnorm2d
      - relu
layers:
  - {unit: {c: 8}, name: stem}
  - maxpool2d: {kernel: 2}
  - residual:
      - conv2d: {out: 16, kernel: 3, padding: 1}
      - relu
      - conv2d: {out: 16, kernel: 3, padding: 1}
    shortcut:
      - conv2d: {out: 16, kernel: 1}
  - {conv2d: {out: 16, kernel: 3, stride: 2, padding: same}, trainable: false}
  - global_avgpool
  - dropout: {p: 0.2}
  - linear: {out: $classes}
"""


@pytest.fixture
def tiny():
    return archspec.summarize(archspec.loads(TINY, file="tiny.yaml"), batch=4)


def rich_text(renderable) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_golden_table(tiny, golden):
    golden("tiny_table.txt", rich_text(tiny))


def test_golden_table_depth0(golden):
    s = archspec.summarize(archspec.loads(TINY, file="tiny.yaml"), depth=0)
    golden("tiny_table_depth0.txt", rich_text(s))


def test_golden_markdown(tiny, golden):
    golden("tiny.md", render.to_markdown(tiny))


def test_golden_csv(tiny, golden):
    text = render.to_csv(tiny)
    golden("tiny.csv", text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(tiny.rows)
    assert sum(int(r["params"]) for r in rows) == tiny.totals.params


def test_golden_json(tiny, golden):
    text = render.to_json(tiny)
    golden("tiny.json", text)
    assert json.loads(text) == tiny.to_dict()


def test_golden_explain(tiny, golden):
    golden("tiny_explain.txt", "\n".join(render.explain_lines(tiny)) + "\n")


def test_tiny_figures(tiny):
    """The figures the goldens freeze, checked by hand."""
    t = tiny.totals
    stem = 3 * 3 * 3 * 8 + 2 * 8  # conv without bias, bn gamma and beta
    residual = (3 * 3 * 8 * 16 + 16) + (3 * 3 * 16 * 16 + 16) + (8 * 16 + 16)  # main path + projection
    frozen = 3 * 3 * 16 * 16 + 16
    fc = 16 * 10 + 10
    assert t.params == stem + residual + frozen + fc
    assert t.non_trainable_params == frozen
    assert t.buffers == 2 * 8 + 1
    by = {r.path: r for r in tiny.rows}
    assert by["conv3"].output_shape == (16, 8, 8)  # 'same' with stride 2: ceil(16 / 2)
    assert by["downsample.conv1"].params == 8 * 16 + 16


@pytest.mark.parametrize("width", [80, 76, 40])
def test_narrow_consoles_fold_columns_and_never_cut_a_number_or_header(width):
    from rich.console import Console

    summary = archspec.summarize("resnet50")
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(summary)  # as `from rich import print; print(summary)` does in a narrow notebook
    text = console.export_text()
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    tokens = set(re.findall(r"\S+", text))
    for row in summary.rows:
        assert f"{row.params:,}" in tokens, row.path  # every exact count, whole
    if width >= 76:  # a table: every header whole, long ones abbreviated
        header = next(line for line in text.splitlines() if line.split()[:1] == ["Layer"])
        assert header.split() == ["Layer", "Type", "Output", "Params", "Acts", "MACs", "RF"]
    else:  # one labelled block per layer
        largest = max(row.params for row in summary.rows)
        assert f"params {largest:,}" in " ".join(text.split())


def test_the_cli_at_80_columns(monkeypatch):
    from click.testing import CliRunner

    from archspec.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(main, ["summary", "resnet50.yaml"])
    assert result.exit_code == 0 and "…" not in result.output and "2,359,296" in result.output
    assert "Activatio" not in result.output.replace("Activations", "")  # a header is whole or abbreviated


def test_html_table_is_what_a_notebook_shows():
    import xml.etree.ElementTree as ET

    import archspec
    from archspec.render import to_html

    s = archspec.summarize("vgg16")
    html = s._repr_html_()
    assert html == to_html(s)
    root = ET.fromstring(html)  # well-formed: every cell escaped
    rows = root.findall(".//table[@class='archspec-layers']/tbody/tr")
    assert len(rows) == len(s.rows) + 1  # the input, then every layer
    header = [th.text for th in root.findall(".//thead/tr/th")]
    assert header == ["Layer", "Type", "Output shape", "Params", "Activations", "MACs", "RF"]
    first_conv = [td.text for td in rows[1]]
    assert first_conv[:4] == [s.rows[0].path, "conv2d 3×3, 64", "64×224×224", "1,792"]
    totals = {th.text: td.text for th, td in (tr for tr in root.findall(".//table[@class='archspec-totals']/tbody/tr"))}
    assert totals["Parameters"].startswith("138,357,544")
    ids = ET.fromstring(to_html(s, row_ids=True)).findall(".//tbody/tr[@id]")
    assert [tr.get("id") for tr in ids][:2] == ["row-input", f"row-{s.rows[0].path}"]
    odd = archspec.loads("archspec: 1\nname: 'a<b>&c'\ninput: [4]\nlayers: [{linear: {out: 2}}]\n")
    assert "a&lt;b&gt;&amp;c" in archspec.summarize(odd)._repr_html_()


def test_tiny_mac_counts_are_written_in_full_not_as_zero_millions():
    from archspec.render import giga

    assert giga(288) == "288 " and giga(576, scale_of=288) == "576 "
    assert giga(416_520) == "0.42 M" and giga(15_470_000_000) == "15.47 G"
