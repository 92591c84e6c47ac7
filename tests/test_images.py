"""archspec.images: the one decoder that training, predict and inspect share."""
import numpy as np
import pytest
import torch
from PIL import Image

from archspec import images, inspection
from archspec.data import open_data
from archspec.errors import ArchspecError, LimitError, UsageError


def _photo(path, size=(80, 40), mode="RGB"):
    rng = np.random.default_rng(0)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze() if channels == 1 else array, mode).save(path)
    return path


@pytest.mark.parametrize("fit", ["stretch", "crop"])
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 16, 16), (3, 12, 20)])
def test_training_predict_and_inspect_see_the_same_pixels(tmp_path, fit, shape):
    path = _photo(tmp_path / "a.png")
    (tmp_path / "set" / "cat").mkdir(parents=True)
    (tmp_path / "set" / "dog").mkdir()
    Image.open(path).save(tmp_path / "set" / "cat" / "a.png")
    _photo(tmp_path / "set" / "dog" / "b.png")
    data = open_data(str(tmp_path / "set"), shape)
    data.fit = fit
    trained_on = data[0][0]
    inspected = inspection.load_image(path, shape[0], shape[1:], fit=fit)
    loaded = images.load_image(path, shape, fit)
    assert torch.equal(trained_on, inspected) and torch.equal(trained_on, loaded)


def test_stretch_and_crop_differ_on_a_wide_image(tmp_path):
    path = _photo(tmp_path / "wide.png")
    assert not torch.equal(images.load_image(path, (1, 16, 16), "stretch"), images.load_image(path, (1, 16, 16), "crop"))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 257 * 200]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    x = images.load_image(tmp_path / "deep.png", (1, 1, 4))
    assert torch.allclose(x[0, 0], torch.tensor([0, 100, 255, 200]) / 255.0)


def test_limits_are_checked_before_decoding(tmp_path, monkeypatch):
    path = _photo(tmp_path / "big.png", size=(20, 10))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 199)
    with pytest.raises(LimitError, match=r"20×10 = 200 pixels, more than 0.000199 megapixels") as info:
        images.load_image(path, (3, 4, 4))
    assert info.value.problem.location.file == str(path)


def test_failures_name_the_file(tmp_path):
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(ArchspecError, match="not an image file Pillow can decode"):
        images.load_image(tmp_path / "junk.png", (1, 4, 4))
    with pytest.raises(ArchspecError, match="no such file"):
        images.load_image(tmp_path / "none.png", (1, 4, 4))
    with pytest.raises(ArchspecError, match="not a regular file"):
        images.load_image(tmp_path, (1, 4, 4))
    with pytest.raises(ArchspecError, match="1 \\(grayscale\\) or 3 \\(RGB\\)"):
        images.load_image(tmp_path / "junk.png", (2, 4, 4))
    with pytest.raises(UsageError, match="fit must be"):
        images.load_image(tmp_path / "junk.png", (1, 4, 4), fit="zoom")
