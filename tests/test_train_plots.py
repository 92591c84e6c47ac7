"""The run pictures: learning curves (Keras-style history plots) and the confusion matrix.

The SVG is the same scene as the PNG, so its elements are counted to check what was drawn: one
polyline per unbroken run of a series, one cell per (true, predicted) pair.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from archspec.errors import UsageError
from archspec.train.plots import (LEARNING, VALIDATION, confusion_scene, curves_scene, save_confusion,
                                  save_curves)

SVG = "{http://www.w3.org/2000/svg}"


def rows(n: int, **override):
    out = []
    for e in range(1, n + 1):
        row = dict(epoch=e, train_loss=2.0 / e, val_loss=2.2 / e, train_acc=1 - 0.5 / e, val_acc=1 - 0.6 / e,
                   lr=0.01 * 0.5 ** (e // 3))
        row.update({k: v(e) if callable(v) else v for k, v in override.items()})
        out.append(row)
    return out


def groups(svg_text: str, cls: str) -> list[ET.Element]:
    root = ET.fromstring(svg_text)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def series(svg_text: str) -> dict[tuple[str, str], ET.Element]:
    """(panel colour, label) -> the series group; each panel draws its series in order."""
    found = {}
    for g in groups(svg_text, "series"):
        label = g.find(f"{SVG}title").text
        line = next(iter(g.iter(f"{SVG}polyline")), None)
        colour = line.get("stroke") if line is not None else next(iter(g.iter(f"{SVG}circle"))).get("fill")
        found.setdefault((colour, label), []).append(g)
    return found


def polylines(group: ET.Element) -> int:
    return len(list(group.iter(f"{SVG}polyline")))


# ---------------------------------------------------------------- curves


def test_curves_png_and_svg_are_written(tmp_path):
    png = save_curves(rows(12), tmp_path / "curves.png")
    svg = save_curves(rows(12), tmp_path / "curves.svg")
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 1200 < width < 4000 and 400 < height < 1500  # three panels side by side, scale 2
    assert svg.read_text(encoding="utf-8").startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "curves.svg"]  # no temporary left


def test_each_series_is_one_polyline_in_its_colour(tmp_path):
    text = curves_scene(rows(10)).to_svg()
    found = series(text)
    # losses and accuracy each have a learning (green) and a validation (red) series; lr one more
    assert len(found[(LEARNING, "learning")]) == 2
    assert len(found[(VALIDATION, "validation")]) == 2
    assert sum(len(v) for v in found.values()) == 5
    assert all(polylines(g) == 1 for gs in found.values() for g in gs)
    headings = [t.text for t in ET.fromstring(text).iter(f"{SVG}text")]
    assert {"Losses", "Accuracy", "Learning rate", "Training curves", "epoch"} <= set(headings)
    assert len(groups(text, "legend")) == 2  # the lr panel needs none


def test_nan_and_none_break_the_line_instead_of_dropping_to_zero():
    data = rows(9, val_loss=lambda e: math.nan if e == 5 else 2.2 / e, val_acc=lambda e: None if e == 5 else 0.5)
    found = series(curves_scene(data).to_svg())
    validation = found[(VALIDATION, "validation")]
    assert [polylines(g) for g in validation] == [2, 2]  # epochs 1-4 and 6-9, in both panels
    assert [polylines(g) for g in found[(LEARNING, "learning")]] == [1, 1]


def test_one_epoch_draws_dots_and_no_lines(tmp_path):
    text = curves_scene(rows(1)).to_svg()
    assert len(ET.fromstring(text).findall(f".//{SVG}g[@class='series']/{SVG}polyline")) == 0
    assert len(ET.fromstring(text).findall(f".//{SVG}g[@class='series']/{SVG}circle")) == 5
    assert save_curves(rows(1), tmp_path / "one.png").stat().st_size > 5000


def test_all_equal_values_and_missing_columns(tmp_path):
    flat = [dict(epoch=e, train_loss=1.0, val_loss=None, train_acc=0.5, val_acc=float("nan")) for e in (1, 2, 3)]
    text = curves_scene(flat).to_svg()
    assert "no values yet" in text  # the learning-rate panel: no 'lr' key at all
    found = series(text)
    assert (VALIDATION, "validation") not in found
    assert sum(polylines(g) for g in found[(LEARNING, "learning")]) == 2
    assert save_curves(flat, tmp_path / "flat.png").exists()
    coordinates = [v for e in ET.fromstring(text).iter() for k, v in e.attrib.items() if k in ("points", "cx", "cy")]
    assert coordinates and not any("nan" in v.lower() or "inf" in v.lower() for v in coordinates)


def test_values_as_strings_and_an_empty_history(tmp_path):
    text = curves_scene([{"epoch": "1", "train_loss": "0.5", "lr": "0.001"},
                         {"epoch": "2", "train_loss": "0.25", "lr": "0.001"}]).to_svg()
    assert sum(polylines(g) for g in groups(text, "series")) == 2
    assert save_curves([], tmp_path / "empty.png").exists()


def test_learning_rate_over_decades_uses_a_log_axis():
    text = curves_scene(rows(8, lr=lambda e: 10.0 ** -e)).to_svg()
    assert "learning rate (log scale)" in text
    assert "loss (log scale)" not in text  # losses stay linear, as the Keras plots


# ---------------------------------------------------------------- confusion matrix


def test_confusion_cells_counts_and_accuracy(tmp_path):
    matrix = [[5, 1, 0], [2, 6, 2], [0, 0, 0]]
    text = confusion_scene(matrix, ["cat", "dog", "eel"]).to_svg()
    (cells,) = groups(text, "cells")
    assert len(list(cells.iter(f"{SVG}polygon"))) == 9
    (counts,) = groups(text, "counts")
    assert [t.text for t in counts.iter(f"{SVG}text")] == ["5", "1", "0", "2", "6", "2", "0", "0", "0"]
    (accuracy,) = groups(text, "accuracy")
    assert [t.text for t in accuracy.iter(f"{SVG}text")] == ["accuracy", "83.3%", "60.0%", "–"]
    assert "accuracy 68.75% (11 of 16)" in text
    # the diagonal of a well-classified row is the darkest cell of that row
    fills = [p.get("fill") for p in cells.iter(f"{SVG}polygon")]
    assert fills[0] < fills[1] and fills[0] < fills[2]  # darker blue = smaller hex value
    assert save_confusion(matrix, ["cat", "dog", "eel"], tmp_path / "c.png").stat().st_size > 2000


def test_confusion_with_100_classes_skips_counts(tmp_path):
    n = 100
    matrix = [[(7 if i == j else (i * j) % 3) for j in range(n)] for i in range(n)]
    classes = [f"class_{i}" for i in range(n)]
    text = confusion_scene(matrix, classes).to_svg()
    (cells,) = groups(text, "cells")
    assert len(list(cells.iter(f"{SVG}polygon"))) == n * n
    assert groups(text, "counts") == []
    path = save_confusion(matrix, classes, tmp_path / "c100.png")
    with Image.open(path) as image:
        assert 1000 < image.size[0] < 4000 and 1000 < image.size[1] < 4000


def test_confusion_svg_when_asked_and_bad_shapes_refused(tmp_path):
    assert save_confusion([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.svg").read_text().startswith("<?xml")
    with pytest.raises(UsageError, match="2×2"):
        confusion_scene([[1, 0, 0], [0, 1, 0]], ["a", "b"])
    with pytest.raises(UsageError):
        confusion_scene([], [])
