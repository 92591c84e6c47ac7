"""Tile grids: each tile normalised on its own, tiny kernels enlarged crisply, the layout recorded."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from archspec.draw.tiles import Grid, Tile, render, save_grid, to_rgb
from archspec.errors import UsageError


def grey(rgb: np.ndarray) -> np.ndarray:
    assert rgb.dtype == np.uint8 and rgb.shape[-1] == 3
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    return rgb[..., 0]


# ---------------------------------------------------------------- values -> grey levels


def test_minmax_maps_each_tile_to_the_full_range():
    for values in ([[0.001, 0.002], [0.003, 0.004]], [[-500, 0], [250, 1000]]):
        g = grey(to_rgb(values, "minmax"))
        assert g.min() == 0 and g.max() == 255
    assert grey(to_rgb([[-1, 0, 1]], "minmax")).tolist() == [[0, 128, 255]]


def test_flat_tiles_are_grey_or_black_never_an_error():
    assert grey(to_rgb([[3.0, 3.0]], "minmax")).tolist() == [[128, 128]]
    assert grey(to_rgb([[0.0, 0.0]], "auto")).tolist() == [[0, 0]]  # a dead ReLU map stays black


def test_auto_keeps_zero_black_for_nonnegative_maps():
    assert grey(to_rgb([[0.0, 1.0, 2.0]], "auto")).tolist() == [[0, 128, 255]]
    assert grey(to_rgb([[1.0, 2.0]], "auto")).tolist() == [[128, 255]]  # 1 is half of 2: not black
    assert grey(to_rgb([[-2.0, 2.0]], "auto")).tolist() == [[0, 255]]  # signed: minmax


def test_abs_shows_strength_whatever_the_sign():
    assert grey(to_rgb([[0, -30, 30, 0]], "abs")).tolist() == [[0, 255, 255, 0]]
    assert grey(to_rgb([[0, 0]], "abs")).tolist() == [[0, 0]]


def test_abs_and_signed_ignore_a_single_hot_pixel():
    values = np.ones((40, 40))
    values[0, 0] = 1000.0
    g = grey(to_rgb(values, "abs"))
    assert g[5, 5] == 255  # the 99.5th percentile, not the outlier, is white


def test_signed_is_white_at_zero_red_positive_blue_negative():
    rgb = to_rgb([[0.0, 1.0, -1.0]], "signed")[0].astype(int)
    assert rgb[0].tolist() == [255, 255, 255]
    assert rgb[1][0] > rgb[1][2] + 100  # red
    assert rgb[2][2] > rgb[2][0] + 100  # blue


def test_unit_clips_and_colour_tiles_stay_colour():
    assert grey(to_rgb([[-1.0, 0.5, 2.0]], "unit")).tolist() == [[0, 128, 255]]
    rgb = to_rgb(np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]), "minmax")
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[0, 1].tolist() == [0, 0, 255]


def test_nan_is_shown_as_zero_and_bad_shapes_are_refused():
    g = grey(to_rgb([[np.nan, 0.0, 1.0]], "minmax"))
    assert g.tolist() == [[0, 0, 255]]
    with pytest.raises(ValueError, match="tile"):
        to_rgb(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="scale"):
        to_rgb([[1]], "loud")


# ---------------------------------------------------------------- the grid


def checkerboard(n: int) -> np.ndarray:
    return np.indices((n, n)).sum(axis=0) % 2


def test_grid_layout_is_returned_and_recorded_in_the_png(tmp_path):
    tiles = [Tile(checkerboard(3), str(i)) for i in range(10)]
    picture = save_grid(Grid(tiles, 4, title="ten tiles", subtitle="three rows of four"), tmp_path / "g.png")
    assert (picture.rows, picture.columns, picture.tiles) == (3, 4, 10)
    assert len(picture.boxes) == 10 and picture.labels[3] == "3"
    with Image.open(picture.path) as image:
        assert image.size == picture.size
        assert image.text["archspec.tiles"] == "10" and image.text["archspec.grid"] == "3x4"
    # the boxes form a grid: four distinct columns, three distinct rows
    assert len({b[0] for b in picture.boxes}) == 4 and len({b[1] for b in picture.boxes}) == 3


def test_tiny_kernels_are_enlarged_by_whole_factors_with_crisp_squares(tmp_path):
    picture = save_grid(Grid([Tile(checkerboard(3))], 1), tmp_path / "k.png")
    left, top, right, bottom = picture.boxes[0]
    assert (right - left) % 3 == 0 and right - left >= 48  # a 3×3 kernel becomes at least 48 pixels
    with Image.open(picture.path) as image:
        pixels = np.asarray(image.convert("L"))[top:bottom, left:right]
    step = (right - left) // 3
    blocks = pixels.reshape(3, step, 3, step)
    assert all(len(np.unique(blocks[i, :, j, :])) == 1 for i in range(3) for j in range(3))  # no blur
    assert pixels[0, 0] == 0 and pixels[0, step] == 255  # the checkerboard itself


def test_large_tiles_shrink_to_fit_and_keep_their_aspect(tmp_path):
    wide = np.random.default_rng(0).random((100, 400))
    picture = save_grid(Grid([Tile(wide, "wide", "unit")], 1, tile_px=200), tmp_path / "w.png")
    left, top, right, bottom = picture.boxes[0]
    assert right - left == 200 and bottom - top == 50


def test_row_and_column_labels_make_room(tmp_path):
    tiles = [Tile(checkerboard(4)) for _ in range(4)]
    plain, _, _, _ = render(Grid(tiles, 2))
    labelled, boxes, rows, columns = render(Grid(tiles, 2, row_labels=["filter 0", "filter 1"],
                                                 column_labels=["channel 0", "channel 1"]))
    assert (rows, columns) == (2, 2)
    assert labelled.get_figwidth() > plain.get_figwidth() and labelled.get_figheight() > plain.get_figheight()


def test_only_png_and_only_reasonable_sizes(tmp_path):
    with pytest.raises(UsageError, match=".png"):
        save_grid(Grid([Tile([[1]])], 1), tmp_path / "g.jpg")
    assert not (tmp_path / "g.jpg").exists()
    huge = [Tile(np.zeros((2, 2))) for _ in range(20000)]
    with pytest.raises(UsageError, match="fewer tiles"):
        render(Grid(huge, 10, tile_px=256))
