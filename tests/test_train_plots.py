"""The run pictures: learning curves and the confusion matrix, checked on matplotlib's own figure objects.

Every tick label must print its tick's value exactly (0.25 reads "0.25", not "0.2"), series are
"training" and "validation" in colour-blind-safe colours, and the subtitle's best epoch is the
trainer's.
"""
from __future__ import annotations

import math

import pytest
from PIL import Image

from archspec.errors import UsageError
from archspec.train.monitor import best_epoch
from archspec.train.plots import (TRAINING, VALIDATION, confusion_figure, curves_figure, save_confusion,
                                  save_curves)


def rows(n: int, **override):
    out = []
    for e in range(1, n + 1):
        row = dict(epoch=e, train_loss=2.0 / e, val_loss=2.2 / e, train_acc=1 - 0.5 / e, val_acc=1 - 0.6 / e,
                   lr=0.01 * 0.5 ** (e // 3))
        row.update({k: v(e) if callable(v) else v for k, v in override.items()})
        out.append(row)
    return out


def drawn(figure):
    figure.canvas.draw()  # tick labels are set when the figure is drawn
    return figure.axes


def tick_pairs(axis) -> list[tuple[float, str]]:
    lo, hi = sorted(axis.get_view_interval())
    return [(tick.get_loc(), tick.label1.get_text()) for tick in axis.get_major_ticks()
            if lo - 1e-12 <= tick.get_loc() <= hi + 1e-12 and tick.label1.get_text()]


def as_number(text: str) -> float:
    text = text.replace("\u2212", "-").replace("$", "").replace("\\mathdefault{", "").replace("}", "")
    return float(text.rstrip("%")) / (100 if text.endswith("%") else 1)


# ---------------------------------------------------------------- curves


def test_every_tick_label_reads_its_value():
    # values whose ticks fall on quarter steps: hand-written axis code once labelled 0.25 as "0.2"
    data = rows(9, train_loss=lambda e: 0.1 + 1.4 * (9 - e) / 8, val_loss=lambda e: 0.2 + 1.2 * (9 - e) / 8)
    loss, accuracy, rate = drawn(curves_figure(data))
    for axis in (loss.yaxis, loss.xaxis, accuracy.yaxis):
        pairs = tick_pairs(axis)
        assert len(pairs) >= 3
        for value, label in pairs:
            assert as_number(label) == pytest.approx(value, abs=1e-9), (label, value)
    assert all(float(label) == int(float(label)) for _, label in tick_pairs(loss.xaxis))  # whole epochs


def test_training_and_validation_in_colour_blind_safe_colours(tmp_path):
    loss, accuracy, rate = drawn(curves_figure(rows(10)))
    for ax in (loss, accuracy):
        lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
        assert set(lines) == {"training", "validation"}
        assert lines["training"].get_color() == TRAINING and lines["validation"].get_color() == VALIDATION
        assert lines["training"].get_linestyle() != lines["validation"].get_linestyle()  # not by colour alone
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training", "validation"]
    assert [ax.get_title(loc="left") for ax in (loss, accuracy, rate)] == ["Loss", "Accuracy", "Learning rate"]
    assert {TRAINING, VALIDATION} == {"#0072B2", "#D55E00"}  # Okabe–Ito blue and vermillion


def test_the_subtitle_names_the_trainers_best_epoch():
    # validation loss is lowest at epoch 2, validation accuracy highest at epoch 4: the trainer (and the
    # terminal) judge by the loss unless early stopping watches another metric
    data = rows(5, val_loss=lambda e: [0.9, 0.5, 0.7, 0.8, 0.9][e - 1], val_acc=lambda e: [.5, .6, .7, .9, .8][e - 1])
    assert best_epoch(data) == 2 and best_epoch(data, "val_acc") == 4
    figure = curves_figure(data)
    note = next(t.get_text() for t in figure.texts if "best epoch" in t.get_text())
    assert "best epoch 2 (by validation loss 0.5000" in note
    note = next(t.get_text() for t in curves_figure(data, metric="val_acc").texts if "best epoch" in t.get_text())
    assert "best epoch 4 (by validation accuracy" in note
    note = next(t.get_text() for t in curves_figure(data, best_epoch=3).texts if "best epoch" in t.get_text())
    assert "best epoch 3 " in note  # the trainer's own answer (min_delta may differ) is shown as given


def test_nan_and_none_break_the_line_and_missing_panels_say_so(tmp_path):
    data = rows(9, val_loss=lambda e: math.nan if e == 5 else 2.2 / e, val_acc=lambda e: None if e == 5 else 0.5)
    loss, accuracy, _ = drawn(curves_figure(data))
    validation = next(line for line in loss.get_lines() if line.get_label() == "validation")
    assert math.isnan(validation.get_ydata()[4])  # matplotlib breaks the line at NaN, never draws it as zero
    flat = [dict(epoch=e, train_loss=1.0, val_loss=None, train_acc=0.5, val_acc=float("nan")) for e in (1, 2, 3)]
    loss, accuracy, rate = drawn(curves_figure(flat))
    assert [line.get_label() for line in loss.get_lines() if not line.get_label().startswith("_")] == ["training"]
    assert "no values yet" in [t.get_text() for t in rate.texts]  # no 'lr' column at all
    assert save_curves(flat, tmp_path / "flat.png").exists()


def test_one_epoch_strings_and_an_empty_history(tmp_path):
    assert save_curves(rows(1), tmp_path / "one.png").stat().st_size > 5000
    loss, _, _ = drawn(curves_figure([{"epoch": "1", "train_loss": "0.5", "lr": "0.001"},
                                      {"epoch": "2", "train_loss": "0.25", "lr": "0.001"}]))
    assert list(next(line for line in loss.get_lines() if line.get_label() == "training").get_ydata()) == [0.5, 0.25]
    assert save_curves([], tmp_path / "empty.png").exists()


def test_learning_rate_over_decades_uses_a_log_axis():
    loss, _, rate = drawn(curves_figure(rows(8, lr=lambda e: 10.0 ** -e)))
    assert rate.get_yscale() == "log" and rate.get_ylabel() == "learning rate (log scale)"
    assert loss.get_yscale() == "linear"  # losses stay linear, as Keras' plots


def test_png_svg_and_pdf_by_suffix_written_atomically(tmp_path):
    png = save_curves(rows(12), tmp_path / "curves.png")
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 1000
    assert save_curves(rows(3), tmp_path / "curves.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert save_curves(rows(3), tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.pdf", "curves.png", "curves.svg"]


# ---------------------------------------------------------------- confusion matrix


def test_confusion_cells_counts_and_accuracy(tmp_path):
    matrix = [[5, 1, 0], [2, 6, 2], [0, 0, 0]]
    figure = confusion_figure(matrix, ["cat", "dog", "eel"])
    ax = drawn(figure)[0]
    counts = [t.get_text() for t in ax.texts if t.get_gid() == "count"]
    assert counts == ["5", "1", "0", "2", "6", "2", "0", "0", "0"]
    shares = ax.images[0].get_array()
    assert shares[0, 0] == pytest.approx(5 / 6) and shares[1, 1] == pytest.approx(0.6) and shares[2].sum() == 0
    accuracy_axis = next(child for child in ax.child_axes)
    assert [t.get_text() for t in accuracy_axis.get_yticklabels()] == ["83.3%", "60.0%", "–"]
    assert "accuracy 68.75% (11 of 16)" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "eel"]
    assert save_confusion(matrix, ["cat", "dog", "eel"], tmp_path / "c.png").stat().st_size > 2000


def test_confusion_with_100_classes_labels_a_subset_and_skips_counts(tmp_path):
    n = 100
    matrix = [[(7 if i == j else (i * j) % 3) for j in range(n)] for i in range(n)]
    ax = drawn(confusion_figure(matrix, [f"class_{i}" for i in range(n)]))[0]
    assert not [t for t in ax.texts if t.get_gid() == "count"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 5 <= len(labels) <= 25 and labels[0] == "class_0"
    assert ax.images[0].get_array().shape == (n, n)


def test_confusion_svg_when_asked_and_bad_shapes_refused(tmp_path):
    assert "<svg" in save_confusion([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.svg").read_text()
    with pytest.raises(UsageError, match="2×2"):
        confusion_figure([[1, 0, 0], [0, 1, 0]], ["a", "b"])
    with pytest.raises(UsageError):
        confusion_figure([], [])
