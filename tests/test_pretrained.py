"""archspec weights convert: torch state_dicts checked against a spec and written as safetensors."""
from __future__ import annotations

import collections

import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

import archspec  # noqa: E402
from archspec.errors import ArchspecError, SpecError, UsageError  # noqa: E402
from archspec.pretrained import convert, read_state_dict  # noqa: E402
from archspec.train import session  # noqa: E402
from archspec.weights import load_weights, read_metadata  # noqa: E402

from shared_specs import TINY_DIGITS  # noqa: E402


class Stranger:
    """An arbitrary Python object: what weights_only=True must refuse to unpickle."""


@pytest.fixture
def tiny(spec_file):
    return spec_file(TINY_DIGITS, "tiny.yaml")


@pytest.fixture
def published(tiny, tmp_path):
    """A state_dict as torchvision publishes one: torch.save of a plain name -> tensor mapping."""
    state = archspec.build(tiny, seed=3).state_dict()
    path = tmp_path / "published.pth"
    torch.save(state, path)
    return path, state


def test_convert_writes_the_same_tensors_as_safetensors(tiny, published, tmp_path):
    path, state = published
    report = convert(path, tmp_path / "w.safetensors", tiny)
    assert report.tensors == len(state) and report.values == sum(t.numel() for t in state.values())
    written = load_file(str(report.path))
    assert written.keys() == state.keys()
    assert all(torch.equal(written[k], state[k]) for k in state)
    assert read_metadata(report.path)["archspec.spec"] == "tiny.yaml"
    model = archspec.build(tiny, seed=0)
    load_weights(model, report.path, strict=True)
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])


def test_every_mismatch_is_listed_and_nothing_is_written(tiny, published, tmp_path):
    path, state = published
    state = dict(state)
    del state["fc.bias"]
    state["head.weight"] = torch.zeros(5, 32)
    state["aux.weight"] = torch.zeros(2)
    torch.save(state, path)
    out = tmp_path / "w.safetensors"
    with pytest.raises(SpecError) as caught:
        convert(path, out, tiny)
    messages = [p.message for p in caught.value.problems]
    assert messages == ["missing from the file: fc.bias (32)", "not in the spec: aux.weight (2)",
                        "shape differs: head.weight: file has 5×32, spec has 10×32"]
    assert all(str(p.location) == str(path) for p in caught.value.problems)
    assert not out.exists()


def test_drop_leaves_out_what_the_spec_does_not_have(tiny, published, tmp_path):
    path, state = published
    torch.save({**state, "AuxLogits.fc.weight": torch.zeros(3, 3), "AuxLogits.fc.bias": torch.zeros(3)}, path)
    report = convert(path, tmp_path / "w.safetensors", tiny, drop=["AuxLogits.*"])
    assert sorted(report.dropped) == ["AuxLogits.fc.bias", "AuxLogits.fc.weight"]
    assert "AuxLogits.fc.bias" not in load_file(str(report.path))
    with pytest.raises(SpecError, match="--drop 'aux.*' matches no tensor"):
        convert(path, tmp_path / "v.safetensors", tiny, drop=["AuxLogits.*", "aux.*"])


def test_parameters_of_the_spec_can_be_set(tiny, published, tmp_path):
    path, state = published
    torch.save({**state, "head.weight": torch.zeros(4, 32), "head.bias": torch.zeros(4)}, path)
    assert convert(path, tmp_path / "w.safetensors", tiny, classes=4).tensors == len(state)


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_a_checkpoint_dictionary_is_opened(tiny, published, tmp_path, key):
    path, state = published
    torch.save({key: state, "epoch": 90}, path)
    report = convert(path, tmp_path / "w.safetensors", tiny)
    assert report.nested == key and report.tensors == len(state)


def test_safetensors_input_is_accepted(tiny, published, tmp_path):
    _, state = published
    source = tmp_path / "in.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(source))
    assert convert(source, tmp_path / "w.safetensors", tiny).tensors == len(state)


def test_shared_storage_and_half_precision_are_written_as_the_spec_wants(tiny, published, tmp_path):
    """safetensors refuses tensors sharing memory; the spec's float32 is what is written."""
    path, state = published
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    base = torch.zeros(8 + 8)
    half["conv1.bias"] = base[:8]  # a view of a larger storage
    torch.save(half, path)
    written = load_file(str(convert(path, tmp_path / "w.safetensors", tiny).path))
    assert written["conv1.weight"].dtype == torch.float32
    assert written["conv1.bias"].untyped_storage().nbytes() == 8 * 4


def test_full_pickles_are_refused(tiny, tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"conv1.weight": torch.zeros(1), "trap": Stranger()}, path)
    with pytest.raises(ArchspecError, match="refused: the file holds Python objects besides tensors"):
        read_state_dict(path)
    torch.save(archspec.build(tiny, seed=0), path)  # a whole module, as torch.save(model) writes
    with pytest.raises(ArchspecError, match="refused"):
        read_state_dict(path)


def test_what_is_not_a_state_dict_is_said_plainly(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ArchspecError, match="not a torch checkpoint"):
        read_state_dict(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ArchspecError, match="expected a state_dict .* found a list"):
        read_state_dict(path)
    torch.save(collections.OrderedDict(a=torch.zeros(1), b=3, c="x"), path)
    with pytest.raises(ArchspecError, match="these entries are not tensors: b, c"):
        read_state_dict(path)
    with pytest.raises(UsageError, match="unknown weights format '.npz'"):
        read_state_dict(path.rename(tmp_path / "x.npz"))
    with pytest.raises(UsageError, match="no such weights file"):
        read_state_dict(tmp_path / "absent.pth")


def test_the_output_must_be_safetensors_and_not_the_input(tiny, published, tmp_path):
    path, _ = published
    with pytest.raises(UsageError, match="must be a .safetensors file"):
        convert(path, tmp_path / "w.pth", tiny)
    source = tmp_path / "in.safetensors"
    save_file({"x": torch.zeros(1)}, str(source))
    with pytest.raises(UsageError, match="overwrite the input"):
        convert(source, source, tiny)


@pytest.mark.slow
def test_train_init_starts_from_the_converted_weights(tiny, published, tmp_path):
    path, state = published
    out = convert(path, tmp_path / "w.safetensors", tiny).path
    outcome = session.train(str(tiny), {"epochs": 1, "batch_size": 64, "lr": 0.01, "workers": 0,
                                        "data": "synthetic:128:10", "out": str(tmp_path / "run"), "init": str(out)})
    assert sorted(outcome.init_report.loaded) == sorted(state)
    assert not outcome.init_report.missing and not outcome.init_report.mismatched


# ------------------------------------------------------------------ the command


def test_cli_convert(invoke, tiny, published, tmp_path):
    path, state = published
    out = tmp_path / "w.safetensors"
    result = invoke("weights", "convert", str(path), "-o", str(out), "--spec", str(tiny))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out}: {len(state)} tensors")
    assert load_file(str(out)).keys() == state.keys()


def test_cli_convert_lists_every_problem(invoke, tiny, published, tmp_path):
    path, state = published
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    result = invoke("weights", "convert", str(path), "-o", str(tmp_path / "w.safetensors"), "--spec", str(tiny),
                    "--set", "classes=4")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"{path}: error: missing from the file: fc.weight (32×128)",
                     f"{path}: error: missing from the file: fc.bias (32)",
                     f"{path}: error: shape differs: head.weight: file has 10×32, spec has 4×32",
                     f"{path}: error: shape differs: head.bias: file has 10, spec has 4"]


def test_cli_convert_usage_errors(invoke, tiny, tmp_path):
    result = invoke("weights", "convert", str(tmp_path / "absent.pth"), "-o", str(tmp_path / "w.safetensors"),
                    "--spec", str(tiny))
    assert result.exit_code == 2 and "no such weights file" in result.output
    result = invoke("weights", "convert", "x.pth", "--spec", str(tiny))
    assert result.exit_code == 2 and "Missing option '-o'" in result.output
