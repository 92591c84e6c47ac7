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


# ------------------------------------------------------------------ damaged and foreign checkpoints


def _edit_metadata(path, change):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])


def _with_state(path, tree_text: str):
    _edit_metadata(path, lambda metadata: metadata.update({"archspec.state": tree_text}))


@pytest.mark.parametrize("tree, message", [
    ('{"$dict": 5}', "not a list of \\[key, value\\] pairs"),
    ('{"$dict": [["a"]]}', "not a list of \\[key, value\\] pairs"),
    ('{"$list": 3}', "a \\$list entry is not a list"),
    ('{"$float": "many"}', "unknown special number"),
    ('{"$float": []}', "unknown special number \\[\\]"),  # found by bench/fuzz.sh: not a hashable name
    ('{"$tensor": 5}', "tensor 5 is missing"),
    ('{"$what": 1}', "unknown entry"),
    ('[1, 2]', "a bare list"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{not json", "its state is not JSON"),
])
def test_a_broken_state_tree_is_one_message(tmp_path, tree, message):
    from archspec.train.checkpoint import CorruptCheckpoint

    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"a": torch.zeros(2)})
    _with_state(path, tree)
    with pytest.raises(CorruptCheckpoint, match=message):
        load_checkpoint(path)


def _trainer_state():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    state = {"epoch": 1, "step": 3, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": {}, "rng": {"cpu": torch.get_rng_state(), "shuffle": torch.Generator().get_state(),
                                   "augment": torch.Generator().get_state()},
             "history": [{"epoch": 1, "train_loss": 0.5}], "best": [0.5, 1], "bad_epochs": 0,
             "trainable": [n for n, _ in model.named_parameters()]}
    return model, optimizer, state


def _broken(change):
    def apply(state):
        change(state)
        return state
    return apply


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("model"), "its state lacks model"),
    (lambda s: s.update(epoch=-5), "'epoch' is -5, not a count"),
    (lambda s: s.update(step="3"), "'step' is '3'"),
    (lambda s: s["rng"].update(cpu=torch.zeros(7, dtype=torch.uint8)), "random generator state 'cpu'"),
    (lambda s: s["rng"].pop("shuffle"), "'rng' lacks a generator state"),
    (lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(9)), "optimizer state 0.exp_avg is \\[9\\]"),
    (lambda s: s["optimizer"]["state"].update({7: {}}), "names parameter 7"),
    (lambda s: s["optimizer"].update(param_groups=[]), "for other parameters or another optimizer"),
    (lambda s: s["model"].update({"0.weight": torch.zeros(5, 3)}), "another model: 0.weight is \\[5, 3\\]"),
    (lambda s: s["model"].pop("2.bias"), "another model: lacks 2.bias"),
    (lambda s: s["model"]["0.weight"].fill_(float("nan")), "0.weight hold NaN"),
    (lambda s: s.update(history=[]), "one row per completed epoch"),
    (lambda s: s.update(best=[0.5, 9]), "'best' is not a pair"),
    (lambda s: s.update(trainable=["nope"]), "'trainable' names parameters"),
], ids=["no-model", "negative-epoch", "string-step", "bad-rng", "no-shuffle-rng", "optimizer-shape",
        "optimizer-index", "optimizer-groups", "model-shape", "model-key", "nan-weights", "history", "best",
        "trainable"])
def test_a_training_state_that_does_not_fit_is_refused(tmp_path, change, message):
    from archspec.errors import Location
    from archspec.train.checkpoint import CorruptCheckpoint, check_training_state

    model, optimizer, state = _trainer_state()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _broken(change)(state))
    with pytest.raises(CorruptCheckpoint, match=message):
        check_training_state(load_checkpoint(path), model, optimizer, Location(str(path)))


def test_a_whole_training_state_passes(tmp_path):
    from archspec.errors import Location
    from archspec.train.checkpoint import check_training_state

    model, optimizer, state = _trainer_state()
    save_checkpoint(tmp_path / "c.safetensors", state)
    check_training_state(load_checkpoint(tmp_path / "c.safetensors"), model, optimizer, Location("c"))


def test_a_checkpoint_without_its_checksum_is_refused(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"a": torch.zeros(2)})
    _edit_metadata(path, lambda metadata: metadata.pop("archspec.sha256"))
    with pytest.raises(ArchspecError, match="carries no checksum"):
        load_checkpoint(path)
