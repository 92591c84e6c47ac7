"""Fuzzing the readers of files from strangers: weights, checkpoints, run folders and data sets.

Valid files written by archspec are damaged (bytes flipped, cut, inserted; header JSON and state
trees replaced by random JSON; idx files damaged the same way, CSV listings written at random) and
read back through the public readers. Nothing but an
ArchspecError may come out: no traceback, no hang, no silent acceptance of a changed data byte.
"""
from __future__ import annotations

import json
import struct

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from archspec.errors import ArchspecError
from archspec.train.checkpoint import load_checkpoint, save_checkpoint
from archspec.train.runs import Run
from archspec.weights import read_header, read_info, save_weights
from fuzzing import fuzz

MODEL = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2, 3))


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("originals")
    weights = save_weights(MODEL, folder / "w.safetensors", {"archspec.classes": '["a", "b", "c"]'})
    checkpoint = save_checkpoint(folder / "c.safetensors", {"epoch": 1, "model": MODEL.state_dict(),
                                                            "history": [{"epoch": 1, "loss": 0.5}]})
    return weights.read_bytes(), checkpoint.read_bytes()


def damage(data: st.DataObject, blob: bytes, header: bool = True) -> bytes:
    """``blob`` with a byte flipped, cut short, bytes inserted, or (safetensors) its header replaced."""
    kind = data.draw(st.sampled_from(["flip", "cut", "insert"] + ["header"] * header))
    if kind == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        return blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255))]) + blob[i + 1:]
    if kind == "cut":
        return blob[:data.draw(st.integers(0, len(blob) - 1))]
    if kind == "insert":
        i = data.draw(st.integers(0, len(blob)))
        return blob[:i] + data.draw(st.binary(min_size=1, max_size=16)) + blob[i:]
    header = json.dumps(data.draw(JSON)).encode()
    return struct.pack("<Q", len(header)) + header + blob[-64:]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["$tensor", "$dict", "$list", "$float", "tuple", "dtype", "shape",
                                         "data_offsets", "__metadata__", "a"]), inner, max_size=4), max_leaves=20)


@fuzz(60)
@given(data=st.data())
def test_damaged_weights_are_one_message(tmp_path_factory, originals, data):
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    damaged = damage(data, originals[0])
    path.write_bytes(damaged)
    try:
        read_header(path)
        read_info(path)
    except ArchspecError:
        return
    # accepted: only possible when the data section (which the checksum covers) is untouched
    assert damaged[-32:] == originals[0][-32:]


@fuzz(60)
@given(data=st.data())
def test_damaged_checkpoints_are_one_message(tmp_path_factory, originals, data):
    path = tmp_path_factory.mktemp("c") / "c.safetensors"
    path.write_bytes(damage(data, originals[1]))
    try:
        load_checkpoint(path)
    except ArchspecError:
        pass


@fuzz(60)
@given(tree=JSON)
def test_random_state_trees_are_one_message(tmp_path_factory, originals, tree):
    path = tmp_path_factory.mktemp("t") / "c.safetensors"
    raw = originals[1]
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["archspec.state"] = json.dumps(tree)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    try:
        load_checkpoint(path)
    except ArchspecError:
        pass


@fuzz(60)
@given(config=JSON)
def test_random_run_configs_are_one_message(tmp_path_factory, config):
    import yaml

    folder = tmp_path_factory.mktemp("run")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        Run(folder).read_config()
    except ArchspecError:
        pass


# ---------------------------------------------------------------- data sets: idx files and CSV listings


def _idx(values: torch.Tensor) -> bytes:
    return bytes([0, 0, 0x08, values.dim()]) + struct.pack(f">{values.dim()}I", *values.shape) \
        + values.numpy().tobytes()


IDX_IMAGES = (torch.arange(6 * 4 * 5) % 256).to(torch.uint8).view(6, 4, 5)
IDX_LABELS = (torch.arange(6) % 3).to(torch.uint8)


@fuzz(60)
@given(data=st.data(), compressed=st.booleans(), which=st.sampled_from(["images", "labels", "both"]))
def test_damaged_idx_files_are_one_message(tmp_path_factory, data, compressed, which):
    import gzip

    from archspec.data import open_data

    folder = tmp_path_factory.mktemp("idx")
    suffix = ".gz" if compressed else ""
    for part, values in (("images", IDX_IMAGES), ("labels", IDX_LABELS)):
        blob = _idx(values)
        blob = gzip.compress(blob) if compressed else blob
        if which in (part, "both"):
            blob = damage(data, blob, header=False)
        name = "train-images-idx3-ubyte" if part == "images" else "train-labels-idx1-ubyte"
        (folder / (name + suffix)).write_bytes(blob)
    try:
        images = open_data(f"mnist:{folder}", (1, 4, 5))
    except ArchspecError:
        return
    # accepted: a whole set, each label one of its classes
    assert len(images) == len(images.labels) > 0
    assert 0 <= int(images.labels.min()) and int(images.labels.max()) < len(images.classes)


CSV_FIELDS = st.sampled_from(["a.png", "b.png", "broken.png", "missing.png", "folder", "/etc", "path", "label",
                              "0", "1", "2", "-1", "3.5", "cat", "dog", "", " ", '"', "a.png,", "\x00", "é",
                              "# x", "１"]) | st.text(max_size=6)


@fuzz(60)
@given(rows=st.lists(st.lists(CSV_FIELDS, max_size=4), max_size=12),
       separator=st.sampled_from([",", " ", "\t", ";"]), ending=st.sampled_from(["\n", "\r\n", "\r"]),
       classes=st.none() | st.lists(st.sampled_from(["0", "1", "cat", "dog", "a"]), min_size=1, max_size=3,
                                    unique=True))
def test_random_csv_listings_are_one_message(tmp_path_factory, rows, separator, ending, classes):
    from PIL import Image

    from archspec.data import open_data

    folder = tmp_path_factory.mktemp("csv")
    Image.new("L", (3, 2), 128).save(folder / "a.png")
    Image.new("RGB", (2, 5), (1, 2, 3)).save(folder / "b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "folder").mkdir()
    listing = folder / "list.csv"
    listing.write_bytes(ending.join(separator.join(row) for row in rows).encode("utf-8", "replace"))
    try:
        images = open_data(str(listing), (1, 2, 2), classes=classes)
        assert len(images) > 0
        assert 0 <= int(images.labels.min()) and int(images.labels.max()) < len(images.classes)
        for i in range(len(images)):
            picture, _ = images[i]  # the broken image stops with its CSV line
            assert picture is not None and tuple(picture.shape) == (1, 2, 2)
    except ArchspecError:
        pass
