"""The data layer of `archspec train`: sources, conversion to the spec's shape, bad input, splits."""
from __future__ import annotations

import gzip
import os
import struct
import warnings

import pytest
import torch
from PIL import Image

from archspec.errors import ArchspecError, LimitError, Location, SpecError, UsageError
from archspec import data as D
from archspec import images
from archspec.data import csvlist, labelled


def png(path, mode="L", size=(6, 5), colour=255):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


@pytest.fixture(scope="module")
def digits():
    return D.open_data(None, (1, 8, 8))


# -- digits and synthetic ------------------------------------------------------------------------


def test_digits(digits):
    assert len(digits) == 1797
    assert digits.classes == [str(d) for d in range(10)]
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.dtype == torch.float32
    assert digits.labels.dtype == torch.int64 and set(digits.labels.tolist()) == set(range(10))
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    assert digits.paths is None and "1,797" in digits.origin
    image, label = digits[5]
    assert image.shape == (1, 8, 8) and label == int(digits.labels[5])


def test_digits_resized_and_coloured(digits):
    large = D.open_data("digits", (1, 32, 32))
    assert large.images.shape == (1797, 1, 32, 32)
    assert 0.0 <= large.images.min() and large.images.max() <= 1.0
    # bilinear upsampling keeps the mean brightness of each image close
    assert torch.allclose(large.images.mean(dim=(1, 2, 3)), digits.images.mean(dim=(1, 2, 3)), atol=0.03)
    rgb = D.open_data("digits", (3, 8, 8))
    assert rgb.images.shape == (1797, 3, 8, 8)
    for channel in range(3):
        assert torch.equal(rgb.images[:, channel], digits.images[:, 0])


def test_synthetic():
    a = D.open_data("synthetic:60:3", (3, 10, 12), seed=1)
    assert a.images.shape == (60, 3, 10, 12) and a.classes == ["0", "1", "2"]
    assert torch.bincount(a.labels).tolist() == [20, 20, 20]
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    again = D.open_data("synthetic:60:3", (3, 10, 12), seed=1)
    assert torch.equal(a.images, again.images) and torch.equal(a.labels, again.labels)
    other = D.open_data("synthetic:60:3", (3, 10, 12), seed=2)
    assert not torch.equal(a.images, other.images)
    # class means are far apart compared with the noise: the set is learnable
    means = torch.stack([a.images[a.labels == k].mean(0) for k in range(3)])
    assert (means[0] - means[1]).abs().mean() > 0.05
    default = D.open_data("synthetic", (1, 4, 4))
    assert len(default) == 1024 and len(default.classes) == 10


@pytest.mark.parametrize("source", ["synthetic:x", "synthetic:5:1", "synthetic:3:5", "synthetic:0", "synthetic:4:2:1"])
def test_synthetic_bad(source):
    with pytest.raises(UsageError):
        D.open_data(source, (1, 4, 4))


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="bad_images"):
        D.open_data("digits", (1, 8, 8), bad_images="ignore")
    with pytest.raises(UsageError, match="shape"):
        D.open_data("digits", (8, 8))
    with pytest.raises(ArchspecError, match="no such file or folder"):
        D.open_data(str(tmp_path / "nowhere"), (1, 8, 8))
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(ArchspecError, match="cannot read data from") as info:
        D.open_data(str(odd), (1, 8, 8))
    assert info.value.problem.location == Location(str(odd))


def test_memory_limit(monkeypatch):
    monkeypatch.setattr(labelled, "MAX_MEMORY_BYTES", 1000)
    with pytest.raises(LimitError, match=r"needs 25.0 KiB in memory, more than 1,000 bytes"):
        D.open_data("synthetic:100", (1, 8, 8))


def test_classes_mapping_for_in_memory_sources():
    mapped = D.open_data("digits", (1, 8, 8), classes=[str(d) for d in reversed(range(10))])
    plain = D.open_data("digits", (1, 8, 8))
    assert torch.equal(mapped.labels, 9 - plain.labels)
    with pytest.raises(ArchspecError, match="not among the training classes"):
        D.open_data("digits", (1, 8, 8), classes=["0", "1"])


# -- CSV -----------------------------------------------------------------------------------------


def test_csv(tmp_path):
    png(tmp_path / "img" / "white.png", "L", (5, 7), 255)
    png(tmp_path / "img" / "red.png", "RGB", (10, 4), (255, 0, 0))
    black = png(tmp_path / "elsewhere" / "black.png", "L", (3, 3), 0)
    csv = tmp_path / "img" / "list.csv"
    csv.write_text(f"path,label\n# a comment\n\nwhite.png,cat\nred.png dog\n{black}, cat \n")
    gray = D.open_data(str(csv), (1, 4, 4))
    assert gray.images is None and len(gray) == 3 and gray.classes == ["cat", "dog"]
    assert gray.labels.tolist() == [0, 1, 0] and gray.rows == [4, 5, 6]
    assert gray.paths[0] == os.path.join(str(tmp_path / "img"), "white.png")  # relative to the CSV
    white, label = gray[0]
    assert white.shape == (1, 4, 4) and white.dtype == torch.float32 and label == 0
    assert torch.equal(white, torch.ones(1, 4, 4))
    red, _ = gray[1]
    assert torch.allclose(red, torch.full((1, 4, 4), 76 / 255))  # ITU-R 601 luminance, as Pillow's "L"
    assert torch.equal(gray[2][0], torch.zeros(1, 4, 4))
    colour = D.open_data(str(csv), (3, 2, 3))
    assert torch.equal(colour[0][0], torch.ones(3, 2, 3))  # gray replicated
    assert colour[1][0][:, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_sixteen_bit_and_truncated_images(tmp_path):
    Image.new("I;16", (4, 4), 65535).save(tmp_path / "deep.png")
    Image.new("I;16", (4, 4), 257 * 100).save(tmp_path / "mid.png")
    png(tmp_path / "whole.png", "RGB", (64, 64), (1, 2, 3))
    whole = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[:len(whole) // 2])
    csv = tmp_path / "list.csv"
    csv.write_text("deep.png,a\nmid.png,a\ncut.png,b\n")
    data = D.open_data(str(csv), (1, 2, 2))
    assert torch.equal(data[0][0], torch.ones(1, 2, 2))  # scaled to 8 bits, not clipped
    assert torch.allclose(data[1][0], torch.full((1, 2, 2), 100 / 255))
    with pytest.raises(D.ImageError, match="cut.png"):
        data[2]


def test_load_image(tmp_path, monkeypatch):
    path = png(tmp_path / "g.png", "RGB", (9, 4), (0, 255, 0))
    image = images.load_image(path, (3, 2, 3))
    assert image.shape == (3, 2, 3) and image[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
    assert torch.allclose(images.load_image(str(path), (1, 2, 2)), torch.full((1, 2, 2), 150 / 255))
    with pytest.raises(D.ImageError, match="no such file") as info:
        images.load_image(tmp_path / "none.png", (1, 2, 2))
    assert info.value.problem.location == Location(str(tmp_path / "none.png"))
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(D.ImageError, match="cannot read image"):
        images.load_image(tmp_path / "bad.jpg", (1, 2, 2))
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(D.ImageLimitError, match="36 pixels"):
        images.load_image(path, (1, 2, 2))


def test_csv_integer_labels(tmp_path):
    for name in "abcd":
        png(tmp_path / f"{name}.png")
    csv = tmp_path / "list.csv"
    csv.write_text("a.png,10\nb.png,2\nc.png,02\nd.png,10\n")
    data = D.open_data(str(csv), (1, 2, 2))
    assert data.classes == ["2", "10"]  # numeric order, "02" is 2
    assert data.labels.tolist() == [1, 0, 0, 1]
    given = D.open_data(str(csv), (1, 2, 2), classes=["10", "2", "7"])
    assert given.labels.tolist() == [0, 1, 1, 0] and given.classes == ["10", "2", "7"]


def test_csv_row_problems(tmp_path):
    png(tmp_path / "ok.png")
    csv = tmp_path / "list.csv"
    csv.write_text("ok.png,a\nok.png\nok.png,b\nmissing.png,a\nok.png,a,extra\nok.png,c\n")
    with pytest.raises(SpecError) as info:
        D.open_data(str(csv), (1, 2, 2), classes=["a", "b"])
    problems = info.value.problems
    assert [p.location for p in problems] == [Location(str(csv), n) for n in (2, 4, 5, 6)]
    assert "found 1 field" in problems[0].message
    assert "not found: missing.png" in problems[1].message
    assert "found 3 fields" in problems[2].message
    assert "'c' is not one of the classes" in problems[3].message


def test_csv_problems_are_capped(tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("".join(f"gone{i}.png,a\n" for i in range(30)))
    with pytest.raises(SpecError) as info:
        D.open_data(str(csv), (1, 2, 2))
    problems = info.value.problems
    assert len(problems) == csvlist.MAX_LISTED_PROBLEMS + 1
    assert problems[-1].message == "… and 10 more problems"
    assert problems[0].location.line == 1 and problems[19].location.line == 20


def test_csv_whole_file_problems(tmp_path):
    with pytest.raises(ArchspecError, match="no such CSV file") as info:
        D.open_data(str(tmp_path / "none.csv"), (1, 2, 2))
    assert info.value.problem.location == Location(str(tmp_path / "none.csv"))
    empty = tmp_path / "empty.csv"
    empty.write_text("path,label\n# nothing\n")
    with pytest.raises(ArchspecError, match="no images listed"):
        D.open_data(str(empty), (1, 2, 2))
    png(tmp_path / "a.png")
    one = tmp_path / "one.csv"
    one.write_text("a.png,only\n")
    with pytest.raises(ArchspecError, match="at least 2"):
        D.open_data(str(one), (1, 2, 2))
    with pytest.raises(ArchspecError, match="1 \\(grayscale\\) or 3 \\(RGB\\)"):
        D.open_data(str(one), (4, 2, 2))


@pytest.fixture
def with_corrupt(tmp_path):
    png(tmp_path / "a.png", colour=10)
    png(tmp_path / "b.png", colour=200)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\na.png,x\nbad.png,y\nb.png,y\n")
    return csv


def test_corrupt_image_stops(with_corrupt):
    data = D.open_data(str(with_corrupt), (1, 3, 3))  # files are checked to exist, decoded later
    assert data[0][0].shape == (1, 3, 3)
    with pytest.raises(D.ImageError, match="bad.png") as info:
        data[1]
    assert info.value.problem.location == Location(str(with_corrupt), 3)
    with pytest.raises(D.ImageError, match="bad.png"):
        data.in_memory(1 << 20)


def _first_error(loader):
    try:
        list(loader)
    except D.ImageError as exc:
        # The traceback keeps the DataLoader iterator in a reference cycle, and torch takes 5 s to stop
        # a worker whose iterator dies in garbage collection: drop it so the iterator goes at once.
        exc.__traceback__ = None
        return type(exc), str(exc), exc.problem
    return None


def test_corrupt_image_from_worker_is_one_line(with_corrupt):
    data = D.open_data(str(with_corrupt), (1, 3, 3))
    loader = torch.utils.data.DataLoader(data, batch_size=3, num_workers=1, collate_fn=D.collate)
    kind, text, problem = _first_error(loader)
    assert kind is D.ImageError and "Traceback" not in text and "\n" not in text
    assert "bad.png" in problem.message and problem.location == Location(str(with_corrupt), 3)


def test_corrupt_image_skipped(with_corrupt):
    data = D.open_data(str(with_corrupt), (1, 3, 3), bad_images="skip")
    with pytest.warns(D.BadImageWarning, match="bad.png"):
        image, label = data[1]
    assert image is None and label == 1
    assert data.skipped == [str(with_corrupt.parent / "bad.png")]
    images, labels = D.collate([data[i] for i in range(3)])
    assert images.shape == (2, 1, 3, 3) and labels.tolist() == [0, 1]
    assert torch.allclose(images[:, 0, 0, 0], torch.tensor([10 / 255, 200 / 255]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", D.BadImageWarning)
        memory = data.in_memory(1 << 20)
    assert len(memory) == 2 and memory.labels.tolist() == [0, 1]
    assert memory.paths == [data.paths[0], data.paths[2]] and memory.rows == [2, 4]


def test_collate_all_skipped():
    images, labels = D.collate([(None, 1), (None, 0)])
    assert images.numel() == 0 and labels.shape == (0,)


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_oversized_image_refused(tmp_path, monkeypatch, policy):
    png(tmp_path / "small.png", size=(5, 5))
    png(tmp_path / "huge.png", size=(20, 20))
    csv = tmp_path / "list.csv"
    csv.write_text("small.png,a\nhuge.png,b\n")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    data = D.open_data(str(csv), (1, 2, 2), bad_images=policy)
    assert data[0][0] is not None
    with pytest.raises(LimitError, match="huge.png.*400 pixels") as info:
        data[1]
    assert info.value.problem.location.line == 2


# -- folders, memory -----------------------------------------------------------------------------


def test_folder(tmp_path):
    png(tmp_path / "dogs" / "b.JPG", "RGB", (8, 8), (0, 0, 255))
    png(tmp_path / "cats" / "a.png", "L", (4, 4), 255)
    png(tmp_path / "dogs" / "puppies" / "c.png", "L", (4, 4), 0)
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    png(tmp_path / ".cache" / "x.png")
    data = D.open_data(str(tmp_path), (3, 4, 4))
    assert data.classes == ["cats", "dogs"] and data.labels.tolist() == [0, 1, 1]
    assert [os.path.basename(p) for p in data.paths] == ["a.png", "b.JPG", "c.png"]
    blue, _ = data[1]
    assert blue[2].min() > 0.95 and blue[0].max() < 0.05  # JPEG is lossy, nearly pure blue
    mapped = D.open_data(str(tmp_path), (3, 4, 4), classes=["dogs", "cats", "birds"])
    assert mapped.labels.tolist() == [1, 0, 0]
    with pytest.raises(ArchspecError, match="not among the training classes"):
        D.open_data(str(tmp_path), (3, 4, 4), classes=["cats", "birds"])
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(ArchspecError, match="no image files"):
        D.open_data(str(empty), (3, 4, 4))


def test_in_memory_matches_lazy(tmp_path):
    for k in range(6):
        png(tmp_path / f"c{k % 2}" / f"{k}.png", "RGB", (5 + k, 7), (40 * k, 255 - 30 * k, 7 * k))
    lazy = D.open_data(str(tmp_path), (3, 6, 5))
    expected = torch.stack([lazy[i][0] for i in range(len(lazy))])
    for workers in (0, 2):
        memory = lazy.in_memory(1 << 20, workers=workers)
        assert memory.images is not None and torch.equal(memory.images, expected)
        assert torch.equal(memory.labels, lazy.labels) and memory[3][1] == lazy[3][1]
    assert lazy.in_memory(6 * 3 * 6 * 5 * 4 - 1) is lazy  # too big: unchanged
    assert memory.in_memory(1 << 20) is memory  # already in memory
    assert len(lazy.subset([])) == 0 and len(memory.subset([])) == 0
    part = lazy.subset([4, 1])
    assert part.labels.tolist() == [lazy.labels[4], lazy.labels[1]]
    assert torch.equal(part[0][0], expected[4]) and torch.equal(part.in_memory(1 << 20).images, expected[[4, 1]])


# -- MNIST idx -----------------------------------------------------------------------------------


def idx_bytes(values: torch.Tensor) -> bytes:
    head = bytes([0, 0, 0x08, values.dim()]) + struct.pack(f">{values.dim()}I", *values.shape)
    return head + bytes(values.flatten().tolist())


def write_mnist(folder, prefix="train", compressed=False, count=6):
    folder.mkdir(parents=True, exist_ok=True)
    images = (torch.arange(count * 4 * 5) % 256).to(torch.uint8).view(count, 4, 5)
    labels = torch.arange(count) % 3
    suffix = ".gz" if compressed else ""
    for name, values in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        raw = idx_bytes(values)
        (folder / (name + suffix)).write_bytes(gzip.compress(raw) if compressed else raw)
    return images, labels


@pytest.mark.parametrize("compressed", [False, True])
def test_mnist(tmp_path, compressed):
    images, labels = write_mnist(tmp_path / "m", compressed=compressed)
    for source in (f"mnist:{tmp_path / 'm'}", str(tmp_path / "m")):
        data = D.open_data(source, (1, 4, 5))
        assert data.images.shape == (6, 1, 4, 5) and data.classes == ["0", "1", "2"]
        assert torch.equal(data.labels, labels)
        assert torch.equal(data.images[:, 0], images.float() / 255)
    named = str(tmp_path / "m" / ("train-images-idx3-ubyte" + (".gz" if compressed else "")))
    assert len(D.open_data(named, (3, 8, 8))) == 6


def test_mnist_test_files_only(tmp_path):
    write_mnist(tmp_path, prefix="t10k", count=4)
    data = D.open_data(f"mnist:{tmp_path}", (1, 4, 5))
    assert len(data) == 4 and "t10k-images" in data.origin


def test_idx_truncated_refused_before_allocation(tmp_path):
    write_mnist(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(ArchspecError, match="truncated idx file") as info:
        D.open_data(str(tmp_path), (1, 4, 5))
    assert info.value.problem.location == Location(str(images))
    # a header declaring 8 GB is refused before anything that size is allocated
    images.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2_000_000, 2000, 2000) + b"\0" * 10)
    with pytest.raises(LimitError, match="declares"):
        D.open_data(str(tmp_path), (1, 4, 5))
    compressed = tmp_path / "gz"
    write_mnist(compressed, compressed=True)
    gz = compressed / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(gzip.decompress(gz.read_bytes())[:-3]))
    with pytest.raises(ArchspecError, match="truncated idx file"):
        D.open_data(str(compressed), (1, 4, 5))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\3\4 not idx at all")
    with pytest.raises(ArchspecError, match="bad magic"):
        D.open_data(str(tmp_path), (1, 4, 5))


def test_idx_count_mismatch(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(torch.zeros(5, dtype=torch.uint8)))
    with pytest.raises(ArchspecError, match="6 images but 5 labels"):
        D.open_data(str(tmp_path), (1, 4, 5))


# -- splits --------------------------------------------------------------------------------------


def test_split(digits):
    parts = D.split(digits, seed=0)
    sizes = [len(parts.train), len(parts.val), len(parts.test)]
    assert sizes == [1257, 270, 270] and sum(sizes) == 1797
    digest = [tuple(_members(digits, p)) for p in (parts.train, parts.val, parts.test)]
    everything = [i for part in digest for i in part]
    assert sorted(everything) == list(range(1797))  # disjoint and covering
    again = D.split(digits, seed=0)
    assert torch.equal(again.val.images, parts.val.images)
    other = D.split(digits, seed=1)
    assert not torch.equal(other.val.images, parts.val.images)
    per_class = torch.bincount(digits.labels, minlength=10).double()
    for part, fraction in ((parts.train, 0.7), (parts.val, 0.15), (parts.test, 0.15)):
        counts = torch.bincount(part.labels, minlength=10).double()
        assert ((counts - per_class * fraction).abs() <= 1.0).all()  # stratified to within one
        assert part.classes == digits.classes


def _members(whole, part):
    # digits has duplicate images, so identify samples by a flattened (image, label) lookup
    index = {}
    for i in range(len(whole)):
        index.setdefault((whole.images[i].numpy().tobytes(), int(whole.labels[i])), []).append(i)
    return [index[(part.images[i].numpy().tobytes(), int(part.labels[i]))].pop() for i in range(len(part))]


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.2), (1.2, -0.1, -0.1), (0.0, 0.5, 0.5), (0.5, 0.5),
                                       (0.7, float("nan"), 0.3), "abc"])
def test_split_bad_fractions(digits, fractions):
    with pytest.raises(UsageError, match="fractions"):
        D.split(digits, fractions)


def test_split_too_small():
    tiny = D.open_data("synthetic:4:2", (1, 2, 2))
    with pytest.raises(ArchspecError, match="too few"):
        D.split(tiny, (0.8, 0.1, 0.1))
    parts = D.split(tiny, (0.5, 0.5, 0.0))  # a zero share is a deliberately empty part
    assert (len(parts.train), len(parts.val), len(parts.test)) == (2, 2, 0)


def test_load_splits_with_separate_sources():
    one = D.load_splits("synthetic:200:4", (1, 6, 6))
    assert (len(one.train), len(one.val), len(one.test)) == (140, 30, 30)
    only_test = D.load_splits("synthetic:200:4", (1, 6, 6), fractions=(0.6, 0.2, 0.2), test="synthetic:40:4")
    assert (len(only_test.train), len(only_test.val), len(only_test.test)) == (150, 50, 40)
    assert not torch.equal(only_test.test.images, only_test.train.images[:40])  # other samples
    only_val = D.load_splits("synthetic:200:4", (1, 6, 6), val="synthetic:40:4")
    assert (len(only_val.train), len(only_val.val), len(only_val.test)) == (165, 40, 35)
    both = D.load_splits("synthetic:200:4", (1, 6, 6), val="synthetic:40:4", test="synthetic:20:4")
    assert (len(both.train), len(both.val), len(both.test)) == (200, 40, 20)
    with pytest.raises(ArchspecError, match="not among the training classes"):
        D.load_splits("synthetic:200:4", (1, 6, 6), test="synthetic:40:5")


# -- statistics ----------------------------------------------------------------------------------


def test_channel_stats(digits, tmp_path):
    mean, std = D.channel_stats(digits)
    assert mean == pytest.approx([digits.images.mean().item()], rel=1e-5)
    assert std == pytest.approx([digits.images.std(unbiased=False).item()], rel=1e-5)
    some_mean, _ = D.channel_stats(digits, max_samples=100)
    picked = torch.linspace(0, 1796, 100).round().long()
    assert some_mean == pytest.approx([digits.images[picked].mean().item()], rel=1e-5)
    png(tmp_path / "a" / "1.png", "RGB", (3, 3), (255, 0, 0))
    png(tmp_path / "b" / "2.png", "RGB", (3, 3), (255, 255, 0))
    files = D.open_data(str(tmp_path), (3, 3, 3))
    mean, std = D.channel_stats(files)
    assert mean == pytest.approx([1.0, 0.5, 0.0]) and std == pytest.approx([1e-6, 0.5, 1e-6])
