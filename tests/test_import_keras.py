"""archspec import from Keras 3 ``.keras`` files (``archspec.importer.keras``), read without Keras.

The fixtures in tests/fixtures/keras/ were saved by real Keras (tests/make_keras_fixtures.py),
each with an input batch and the output Keras computed for it: the imported spec, with the
converted weights, must compute the same within 1e-5.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("h5py")

import archspec  # noqa: E402
from archspec.errors import SpecError  # noqa: E402
from archspec.importer import import_model  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "keras"


def imported_module(name: str, tmp_path):
    result = import_model(FIXTURES / f"{name}.keras", tmp_path / f"{name}.yaml", weights=tmp_path / f"{name}.st")
    model = archspec.build(str(tmp_path / f"{name}.yaml"))
    archspec.load_weights(model, tmp_path / f"{name}.st")
    return result, model.train(False)


@pytest.mark.parametrize("name", ["mnist_cnn", "branch_add"])
def test_outputs_equal_keras_own(name, tmp_path):
    record = json.loads((FIXTURES / f"{name}.json").read_text())
    result, model = imported_module(name, tmp_path)
    x = torch.tensor(record["input_nhwc"]).permute(0, 3, 1, 2)  # Keras' N, H, W, C -> N, C, H, W
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.tensor(record["output"]), rtol=1e-5, atol=1e-5)
    # Keras counts a batch norm's moving mean and variance among its parameters (non-trainable)
    counted = sum(t.numel() for k, t in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert counted == record["params"]


def test_mnist_cnn_is_the_zoo_network(tmp_path):
    result, _ = imported_module("mnist_cnn", tmp_path)
    imported, zoo = archspec.summarize(str(tmp_path / "mnist_cnn.yaml")), archspec.summarize("mnist_cnn.yaml")
    assert imported.totals.params == zoo.totals.params == 30_762
    assert imported.totals.macs == zoo.totals.macs
    assert [r.output_shape for r in imported.rows] == [r.output_shape for r in zoo.rows]
    text = result.text
    assert "input: [1, 28, 28]" in text  # channels_last 28x28x1 as C, H, W
    assert "{conv2d: {out: 16, kernel: 3}, name: conv2d}" in text  # Keras' names kept


def test_functional_branch_and_add_keeps_names_and_from(tmp_path):
    result, model = imported_module("branch_add", tmp_path)
    assert "{add: {}, name: merge, from: [branch_relu, side_conv]}" in result.text
    assert list(model.state_dict())[:2] == ["stem.weight", "stem.bias"]
    assert "branch_bn.running_var" in model.state_dict()


def test_read_without_importing_keras_or_tensorflow():
    code = ("import sys, archspec.importer as i; i.import_model(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')))")
    out = subprocess.run([sys.executable, "-c", code, str(FIXTURES / "mnist_cnn.keras")], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def _keras_file(tmp_path, layers: list[dict]) -> Path:
    config = {"class_name": "Sequential", "config": {"name": "odd", "layers": [
        {"class_name": "InputLayer", "config": {"name": "input_layer", "batch_shape": [None, 8, 8, 3]}}, *layers]}}
    path = tmp_path / "odd.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    return path


def test_unsupported_keras_layers_all_listed(tmp_path, invoke):
    path = _keras_file(tmp_path, [
        {"class_name": "Rescaling", "config": {"name": "scale", "scale": 0.5}},
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], "activation": "gelu"}},
        {"class_name": "LSTM", "config": {"name": "memory", "units": 4}},
    ])
    with pytest.raises(SpecError) as caught:
        import_model(path)
    assert [(p.node, p.message) for p in caught.value.problems] == [
        ("scale", "Rescaling has no catalogue entry"),
        ("c", "activation 'gelu' has no catalogue entry"),
        ("memory", "LSTM has no catalogue entry"),
    ]
    result = invoke("import", str(path), "-o", str(tmp_path / "odd.yaml"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not (tmp_path / "odd.yaml").exists()


def test_not_a_keras_file(tmp_path, invoke):
    bad = tmp_path / "model.keras"
    bad.write_text("not a zip")
    result = invoke("import", str(bad), "-o", str(tmp_path / "m.yaml"))
    assert result.exit_code == 1
    assert "not a Keras 3 .keras file" in result.output


@pytest.mark.slow  # importing Keras alone takes seconds
def test_outputs_equal_live_keras_where_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    try:
        import keras
    except Exception:
        pytest.skip("Keras (with the torch backend) is not installed")
    import numpy as np

    keras_model = keras.saving.load_model(FIXTURES / "branch_add.keras")
    _, model = imported_module("branch_add", tmp_path)
    x = np.random.default_rng(1).normal(size=(3, 12, 12, 3)).astype("float32")
    expected = np.asarray(keras_model(x, training=False).detach().cpu())
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
