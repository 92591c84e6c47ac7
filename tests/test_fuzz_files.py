"""Fuzzing the readers of files from strangers: weights, checkpoints and run folders.

Valid files written by archspec are damaged (bytes flipped, cut, inserted; header JSON and state
trees replaced by random JSON) and read back through the public readers. Nothing but an
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


def damage(data: st.DataObject, blob: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "header"]))
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
