"""Checkpoints: nested training state round-trips through one safetensors file, without pickle."""
from __future__ import annotations

import json
import math

import pytest
import torch

from archspec.errors import ArchspecError
from archspec.train.checkpoint import load_checkpoint, save_checkpoint
from archspec.weights import save_weights


def test_optimizer_state_round_trips(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    state = {"epoch": 3, "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
             "history": [{"epoch": 1, "val_loss": None, "lr": 0.01}, {"epoch": 2, "x": float("nan")}],
             "best": (0.5, 2)}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["epoch"] == 3 and back["best"] == (0.5, 2)
    assert back["history"][0] == {"epoch": 1, "val_loss": None, "lr": 0.01}
    assert math.isnan(back["history"][1]["x"])
    assert torch.equal(back["rng"], state["rng"])
    # integer keys of the optimizer's per-parameter state survive, so torch accepts it back
    assert set(back["optimizer"]["state"]) == set(optimizer.state_dict()["state"])
    fresh = torch.optim.Adam(model.parameters(), lr=0.01)
    fresh.load_state_dict(back["optimizer"])
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][key], value)


def test_a_checkpoint_is_one_atomic_file(tmp_path):
    save_checkpoint(tmp_path / "c.safetensors", {"a": torch.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]


def test_plain_weights_are_not_a_checkpoint(tmp_path):
    save_weights(torch.nn.Linear(2, 2), tmp_path / "w.safetensors")
    with pytest.raises(ArchspecError, match="not an archspec training checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")


def test_a_tampered_state_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"a": torch.zeros(2)})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["archspec.state"] = json.dumps({"$dict": [["a", {"$tensor": "s.missing"}]]})
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    with pytest.raises(ArchspecError, match="tensor 's.missing' is missing"):
        load_checkpoint(path)
