"""Weights as safetensors (archspec.weights): round trips, strict and lenient loads, files from
strangers (corrupt, truncated, lying headers) refused before anything is allocated, atomic
writes, and no pickle anywhere.
"""
from __future__ import annotations

import io
import json
import os
import struct
import textwrap
import tokenize
import tracemalloc
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import archspec  # noqa: E402
from archspec.errors import ArchspecError, LimitError, SpecError  # noqa: E402
from archspec.files import WriteError, atomic_write
from archspec.weights import LoadReport, load_weights, read_header, save_weights  # noqa: E402

PACKAGE = Path(archspec.__file__).resolve().parent

SMALL = """
    archspec: 1
    name: small
    input: [3, 8, 8]
    layers:
      - {conv2d: {out: 4, kernel: 3, padding: 1}, name: conv}
      - {batchnorm2d: {}, name: bn}
      - relu
      - flatten
      - {linear: {out: 5}, name: fc}
    """

# the same names where they can be, one shape changed, one layer gone and one added
OTHER = """
    archspec: 1
    name: other
    input: [3, 8, 8]
    layers:
      - {conv2d: {out: 4, kernel: 3, padding: 1}, name: conv}
      - {batchnorm2d: {}, name: norm}
      - relu
      - flatten
      - {linear: {out: 7}, name: fc}
    """


def train_a_little(module, shape, steps=2):
    """Move the batch-norm buffers (running mean and variance, count) off their initial values."""
    module.train()
    with torch.no_grad():
        for _ in range(steps):
            module(torch.randn(4, *shape))
    return module


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


def tensors_of(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def unchanged(module, before):
    after = module.state_dict()
    return all(torch.equal(after[k], before[k]) for k in before)


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("spec", ["mnist_cnn.yaml", "lenet5.yaml"])
def test_round_trip_small_zoo_specs(tmp_path, spec):
    source = archspec.build(spec, seed=0)
    target = archspec.build(spec, seed=1)
    assert not unchanged(target, tensors_of(source))
    path = save_weights(source, tmp_path / "w.safetensors")
    report = load_weights(target, path)
    assert report.missing == report.unexpected == report.mismatched == []
    assert report.loaded == list(source.state_dict())
    assert_same_state(source, target)


def test_round_trip_resnet18_with_batchnorm_buffers(tmp_path):
    source = train_a_little(archspec.build("resnet18.yaml", seed=0), (3, 32, 32), steps=1)
    assert source.bn1.num_batches_tracked.item() == 1
    assert not torch.equal(source.bn1.running_mean, torch.zeros(64))
    target = archspec.build("resnet18.yaml", seed=1)
    path = save_weights(source, tmp_path / "resnet18.safetensors", metadata={"note": "test"})
    load_weights(target, path)
    assert_same_state(source, target)
    assert target.bn1.num_batches_tracked.item() == 1
    # every parameter and buffer is in the file, under its state_dict name
    assert set(read_header(path)) == set(source.state_dict())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["writer"] == "archspec" and f.metadata()["note"] == "test"


def test_loaded_model_computes_the_same(tmp_path, spec_file):
    path = spec_file(SMALL)
    source = train_a_little(archspec.build(path, seed=0), (3, 8, 8)).eval()
    target = archspec.build(path, seed=5).eval()
    load_weights(target, save_weights(source, tmp_path / "w.safetensors"))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_frozen_parameters_round_trip_and_stay_frozen(tmp_path, spec_file):
    path = spec_file("""
        archspec: 1
        name: fixed
        input: [1, 8, 8]
        layers:
          - {conv2d: {out: 2, kernel: 3, weights: [sobel_x, sobel_y]}, trainable: false, name: edges}
          - {conv2d: {out: 3, kernel: 3}, name: conv}
        """)
    source = archspec.build(path, seed=0)
    target = archspec.build(path, seed=1)
    load_weights(target, save_weights(source, tmp_path / "w.safetensors"))
    assert_same_state(source, target)
    assert not target.edges.weight.requires_grad and target.conv.weight.requires_grad


# ---------------------------------------------------------------- strict and lenient loads

def test_strict_load_lists_every_mismatch_and_loads_nothing(tmp_path, spec_file):
    source = archspec.build(spec_file(SMALL, "small.yaml"), seed=0)
    file = save_weights(source, tmp_path / "small.safetensors")
    target = archspec.build(spec_file(OTHER, "other.yaml"), seed=1)
    before = tensors_of(target)
    with pytest.raises(SpecError) as caught:
        load_weights(target, file)
    messages = [p.message for p in caught.value.problems]
    bn_names = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = ([f"missing from the file: norm.{n}" for n in bn_names]
                + [f"not in the model: bn.{n}" for n in bn_names]
                + ["shape differs: fc.weight: file has 5×256, model has 7×256",
                   "shape differs: fc.bias: file has 5, model has 7"])
    assert sorted(messages) == sorted(expected)
    assert all(p.location is not None and p.location.file == str(file) for p in caught.value.problems)
    # nothing loaded, not even conv, whose name and shape match
    assert unchanged(target, before)


def test_lenient_load_reports_and_loads_what_matches(tmp_path, spec_file):
    source = train_a_little(archspec.build(spec_file(SMALL, "small.yaml"), seed=0), (3, 8, 8))
    file = save_weights(source, tmp_path / "small.safetensors")
    target = archspec.build(spec_file(OTHER, "other.yaml"), seed=1)
    before = tensors_of(target)
    report = load_weights(target, file, strict=False)
    assert isinstance(report, LoadReport)
    assert report.loaded == ["conv.weight", "conv.bias"]
    assert report.missing == [f"norm.{n}" for n in ("weight", "bias", "running_mean", "running_var",
                                                    "num_batches_tracked")]
    assert sorted(report.unexpected) == sorted(f"bn.{n}" for n in ("weight", "bias", "running_mean", "running_var",
                                                                  "num_batches_tracked"))
    assert report.mismatched == ["fc.weight: file has 5×256, model has 7×256", "fc.bias: file has 5, model has 7"]
    after = target.state_dict()
    assert torch.equal(after["conv.weight"], source.conv.weight) and torch.equal(after["conv.bias"], source.conv.bias)
    for name in ("fc.weight", "fc.bias", "norm.running_mean"):
        assert torch.equal(after[name], before[name]), name


def test_strict_load_into_another_zoo_model(tmp_path):
    file = save_weights(archspec.build("lenet5.yaml", seed=0), tmp_path / "lenet5.safetensors")
    target = archspec.build("mnist_cnn.yaml", seed=0)
    with pytest.raises(SpecError) as caught:
        load_weights(target, file)
    n_model, n_file = len(target.state_dict()), len(read_header(file))
    messages = [p.message for p in caught.value.problems]
    assert sum(m.startswith("missing from the file") for m in messages) == n_model
    assert sum(m.startswith("not in the model") for m in messages) == n_file


def test_load_converts_dtype_into_the_model(tmp_path, spec_file):
    from safetensors.torch import save_file

    source = archspec.build(spec_file(SMALL), seed=0)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "half.safetensors"))
    target = archspec.build(spec_file(SMALL), seed=1)
    load_weights(target, tmp_path / "half.safetensors")
    assert target.conv.weight.dtype == torch.float32
    assert torch.equal(target.conv.weight, source.conv.weight.half().float())


# ---------------------------------------------------------------- files from strangers

def raw_file(path: Path, header, data: bytes = b"", length: int | None = None) -> Path:
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded) if length is None else length) + encoded + data)
    return path


@pytest.fixture
def small(spec_file):
    return archspec.build(spec_file(SMALL), seed=0)


def refused(module, path, error=ArchspecError):
    """Loading ``path`` raises ``error``, names the file, and leaves the module as it was."""
    before = tensors_of(module)
    with pytest.raises(error) as caught:
        load_weights(module, path)
    assert str(path) in str(caught.value)
    assert unchanged(module, before)
    with pytest.raises(error):
        read_header(path)
    return caught.value


def test_truncated_file_is_refused(tmp_path, small):
    good = save_weights(small, tmp_path / "good.safetensors").read_bytes()
    for cut in (len(good) - 1, len(good) // 2, 20, 9, 7, 0):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(good[:cut])
        refused(small, path)


def test_random_bytes_are_refused(tmp_path, small):
    import random

    rng = random.Random(0)
    for i in range(20):
        path = tmp_path / f"noise{i}.safetensors"
        path.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4000))))
        refused(small, path)


def test_small_plausible_random_header_is_refused(tmp_path, small):
    # a header length that fits in the file, followed by bytes that are not JSON
    refused(small, raw_file(tmp_path / "x.safetensors", b"\x00\xff" * 50, b"\x00" * 64))


def test_not_a_mapping_header_is_refused(tmp_path, small):
    refused(small, raw_file(tmp_path / "x.safetensors", [1, 2, 3]))


@pytest.mark.parametrize("length", [2 ** 63, 2 ** 40, (100 << 20) + 1, 10 ** 6])
def test_huge_header_length_is_refused_before_allocation(tmp_path, small, length):
    path = raw_file(tmp_path / "huge.safetensors", b"{}", length=length)
    tracemalloc.start()
    try:
        with pytest.raises(ArchspecError) as caught:
            load_weights(small, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(caught.value, LimitError)
    assert peak < 1 << 20, peak  # nothing near the claimed size was allocated
    assert f"{length:,}" in str(caught.value)


@pytest.mark.parametrize("entry, data", [
    # offsets beyond the end of the file
    ({"dtype": "F32", "shape": [4, 3, 3, 3], "data_offsets": [0, 432]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [4], "data_offsets": [2 ** 40, 2 ** 40 + 16]}, b"\x00" * 16),
    # shape and offsets disagree
    ({"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 16]}, b"\x00" * 64),
    ({"dtype": "F32", "shape": [2 ** 31, 2 ** 31], "data_offsets": [0, 16]}, b"\x00" * 16),
    ({"dtype": "F16", "shape": [4], "data_offsets": [0, 16]}, b"\x00" * 16),
    # offsets backwards, negative, or malformed
    ({"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [4], "data_offsets": [0]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [4], "data_offsets": "0-16"}, b"\x00" * 16),
    # dtypes and shapes that are not
    ({"dtype": "F33", "shape": [4], "data_offsets": [0, 16]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}, b"\x00" * 16),
    ({"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}, b"\x00" * 16),
    ({"dtype": "F32", "data_offsets": [0, 16]}, b"\x00" * 16),
    ("not an entry", b""),
])
def test_inconsistent_entries_are_refused(tmp_path, small, entry, data):
    tracemalloc.start()
    try:
        error = refused(small, raw_file(tmp_path / "bad.safetensors", {"conv.weight": entry}, data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "conv.weight" in str(error)
    assert peak < 4 << 20, peak


def test_corrupt_entry_anywhere_refuses_the_whole_file(tmp_path, small):
    """A good file with one lying entry appended to its header is refused, not partly loaded."""
    good = save_weights(small, tmp_path / "good.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + length])
    data = good[8 + length:]
    header["extra"] = {"dtype": "F32", "shape": [10], "data_offsets": [0, len(data) + 4]}
    refused(archspec.build("mnist_cnn.yaml", seed=0), raw_file(tmp_path / "bad.safetensors", header, data))


def test_missing_file_is_a_located_error(tmp_path, small):
    error = refused(small, tmp_path / "nope.safetensors")
    assert "cannot read weights" in str(error)


def test_cli_refuses_corrupt_weights_without_traceback(tmp_path, invoke):
    pytest.importorskip("onnx")
    bad = raw_file(tmp_path / "bad.safetensors", b"{}", length=2 ** 62)
    result = invoke("export", "mnist_cnn.yaml", "--onnx", str(tmp_path / "out.onnx"), "--weights", str(bad))
    assert result.exit_code == 1
    assert str(bad) in result.stderr and "error:" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.onnx").exists()


def test_cli_strict_mismatch_lists_every_problem(tmp_path, invoke):
    pytest.importorskip("onnx")
    file = save_weights(archspec.build("lenet5.yaml", seed=0), tmp_path / "lenet5.safetensors")
    result = invoke("export", "mnist_cnn.yaml", "--onnx", str(tmp_path / "out.onnx"), "--weights", str(file))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    n_model = len(archspec.build("mnist_cnn.yaml").state_dict())
    assert len(lines) == n_model + len(read_header(file))
    assert all(line.startswith(f"{file}: error: ") for line in lines)
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- atomic writes

def test_atomic_write_failure_leaves_no_temp_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        Path(tmp).write_bytes(b"half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]
    assert target.read_bytes() == b"old"


def test_atomic_write_interrupted_leaves_nothing(tmp_path):
    def interrupted(tmp):
        Path(tmp).write_bytes(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "sub" / "w.bin", interrupted)
    assert list((tmp_path / "sub").iterdir()) == []


def test_save_weights_failure_leaves_no_temp_file(tmp_path, small, monkeypatch):
    import archspec.weights

    def full_disk(fd):  # the data was written, its flush to the disk fails as on a full disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archspec.weights.os, "fsync", full_disk)
    with pytest.raises(WriteError, match="cannot write this file: No space left on device"):
        save_weights(small, tmp_path / "out" / "w.safetensors")
    assert list((tmp_path / "out").iterdir()) == []


def test_save_weights_replaces_and_is_readable(tmp_path, small):
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "w.safetensors"
    path.write_bytes(b"something else")
    save_weights(small, path)
    assert set(read_header(path)) == set(small.state_dict())
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]
    mode = path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600


# ---------------------------------------------------------------- no pickle

def _code_names(source: str) -> list[tuple[str, ...]]:
    """Dotted names used in code (comments and strings, docstrings included, left out)."""
    names, run, dot = [], [], False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME:
            if run and not dot:
                names.append(tuple(run))
                run = []
            run.append(tok.string)
            dot = False
        elif tok.type == tokenize.OP and tok.string == "." and run:
            dot = True
        else:
            if run:
                names.append(tuple(run))
            run, dot = [], False
    if run:
        names.append(tuple(run))
    return names


def test_no_pickle_in_the_package():
    forbidden_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    # the one reader of torch's .pth files (published state_dicts): its unpickler is weights-only
    pth_reader = PACKAGE / "pretrained.py"
    for file in files:
        source = file.read_text(encoding="utf-8")
        if file == pth_reader:
            loads = [line for line in source.splitlines() if "torch.load(" in line]
            assert loads and all("weights_only=True" in line for line in loads), file
        else:
            assert "torch.load(" not in source, file
        assert "pickle.load" not in source and "pickle.dump" not in source, file
        for dotted in _code_names(source):
            assert not forbidden_modules & set(dotted), (file, dotted)
            text = ".".join(dotted)
            allowed = ("torch.load",) if file == pth_reader else ()
            assert text not in set(("torch.load", "torch.save", "torch.jit.load", "torch.jit.save")) - set(allowed), \
                (file, text)


def test_the_check_catches_pickle():
    assert ("pickle",) in _code_names("import pickle\n")
    assert ("pickle", "loads") in _code_names("from x import y\npickle.loads(b)\n")
    assert ("torch", "load") in _code_names("x = torch.load(f)\n")
    assert not any("pickle" in n for n in _code_names('"""no pickle"""\n# pickle\n'))


# ------------------------------------------------------------------ files from strangers: layout, checksum, contents


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def two_tensors(first=(0, 16), second=(16, 32), data=bytes(32)) -> bytes:
    return safetensors_bytes({"a": {"dtype": "F32", "shape": [4], "data_offsets": list(first)},
                              "b": {"dtype": "F32", "shape": [4], "data_offsets": list(second)}}, data)


@pytest.mark.parametrize("blob, message", [
    (two_tensors(data=bytes(40)), "8 bytes after the last tensor"),
    (two_tensors(second=(24, 40), data=bytes(40)), "tensor 'b' leaves a gap before it"),
    (two_tensors(second=(8, 24), data=bytes(32)), "tensor 'b' overlaps the one before it"),
    (safetensors_bytes({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)), "offsets do not add up"),
    # found by bench/fuzz.sh: a list as the dtype is no name to look up
    (safetensors_bytes({"a": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "offsets do not add up"),
    (struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (struct.pack("<Q", 100_007) + b'{"a":' + b"[" * 100_000 + b"  ", "nested too deeply"),
], ids=["trailing-bytes", "gap", "overlap", "bool-shape", "list-dtype", "deep-header", "deep-unbalanced"])
def test_a_bad_layout_is_one_message(tmp_path, blob, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(blob)
    with pytest.raises(ArchspecError, match=message):
        read_header(path)


def test_a_fifo_is_refused_without_waiting(tmp_path):
    path = tmp_path / "w.safetensors"
    os.mkfifo(path)  # opening a FIFO for reading would block until a writer came
    with pytest.raises(ArchspecError, match="not a regular file"):
        read_header(path)


def test_a_flipped_byte_fails_the_checksum(tmp_path, small):
    path = save_weights(small, tmp_path / "w.safetensors")
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ArchspecError, match="does not match the checksum"):
        read_header(path)


def _rewrite(path, change):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = change(header, raw[8 + n:])
    header["__metadata__"].pop("archspec.sha256", None)  # a hand edit loses the checksum
    path.write_bytes(safetensors_bytes(header, data))


def test_weights_full_of_nan_are_refused(tmp_path, small):
    with torch.no_grad():
        small.fc.weight.fill_(float("nan"))
    path = save_weights(small, tmp_path / "w.safetensors")
    fresh = archspec.build(archspec.loads(textwrap.dedent(SMALL)), seed=1)
    with pytest.raises(SpecError, match="tensor fc.weight holds NaN or infinite values"):
        load_weights(fresh, path)


def test_a_tensor_relabelled_as_int32_is_refused(tmp_path, small):
    path = save_weights(small, tmp_path / "w.safetensors")

    def relabel(header, data):
        header["fc.weight"]["dtype"] = "I32"  # same size, so the layout still adds up
        return data

    _rewrite(path, relabel)
    with pytest.raises(SpecError, match="tensor of another kind: fc.weight: file has I32, model has float32"):
        load_weights(small, path)


@pytest.mark.parametrize("entries, message", [
    ({"archspec.mean": "[0.5, 0.5]", "archspec.std": "[1, 1]"}, "archspec.mean has 2 values for an input of 3 channels"),
    ({"archspec.mean": "[0.5, 0.5]"}, r"archspec.mean and archspec.std differ in length \(2 and 3\)"),
    ({"archspec.classes": '["a", "b"]'}, "archspec.classes names 2 classes; the spec's output has 5"),
    ({"archspec.seed": "abc"}, "archspec.seed is malformed"),
    ({"archspec.split": '"garbage"'}, "archspec.split is malformed"),
    ({"archspec.split": "[0.5, 0.6, 0.1]"}, "archspec.split is malformed"),
    ({"archspec.name": "lenet5"}, "trained for the spec 'lenet5' .*not for 'small'"),
])
def test_trainer_metadata_is_checked_against_the_spec(tmp_path, small, entries, message):
    from archspec.weights import read_info

    path = save_weights(small, tmp_path / "w.safetensors", {"archspec.mean": "[0.5, 0.5, 0.5]",
                                                            "archspec.std": "[1, 1, 1]", **entries})
    graph = archspec.expand(archspec.loads(textwrap.dedent(SMALL)))
    with pytest.raises(ArchspecError, match=message):
        read_info(path).check_fits(graph)


def test_json_depth_is_measured_without_parsing():
    from archspec.weights import json_depth_within

    assert json_depth_within(b'{"a": [[1], {"b": "[[[[[["}]}', 3)
    assert not json_depth_within(b"[" * 10 + b"]" * 10, 5)
    assert not json_depth_within(b"[" * 100_000, 64)
