"""ONNX export (``archspec export`` and ``archspec.export.export_onnx``): the file passes
onnx.checker, and onnxruntime computes what torch computes, for batch 1 and 3 (dynamic batch).
"""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import archspec  # noqa: E402
from archspec.export import export_onnx  # noqa: E402
from archspec.weights import save_weights  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

RESIDUAL_CONCAT = """
    archspec: 1
    name: mixed
    input: [3, 16, 16]
    params: {classes: 4}
    layers:
      - {conv2d: {out: 8, kernel: 3, padding: 1}, name: stem}
      - batchnorm2d
      - relu
      - residual:
          - conv2d: {out: 16, kernel: 3, stride: 2, padding: 1}
          - batchnorm2d
          - relu
          - conv2d: {out: 16, kernel: 3, padding: 1}
        shortcut:
          - conv2d: {out: 16, kernel: 1, stride: 2}
        name: res
      - parallel:
          - [conv2d: {out: 4, kernel: 1}]
          - [conv2d: {out: 6, kernel: 3, padding: 1}, relu]
          - [maxpool2d: {kernel: 3, stride: 1, padding: 1}]
        name: mix
      - adaptive_avgpool2d: {output: 1}
      - flatten
      - {linear: {out: $classes}, name: fc}
    """


def torch_outputs(module, xs):
    module = module.eval()
    with torch.no_grad():
        return [module(torch.from_numpy(x)).numpy() for x in xs]


def check_against_torch(path, module, input_shape, batches=(1, 3), tol=1e-5):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    # the batch axis is symbolic in the graph's input and output
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("x", "y")
    generator = torch.Generator().manual_seed(0)
    xs = [torch.randn(b, *input_shape, generator=generator).numpy() for b in batches]
    expected = torch_outputs(module, xs)
    for x, want in zip(xs, expected):
        (got,) = session.run(None, {"x": x})
        assert got.shape == want.shape
        assert abs(got - want).max() <= tol * max(1.0, abs(want).max()), abs(got - want).max()


def export_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_onnx(*args, **kwargs)


def test_cli_export_mnist_cnn(tmp_path, invoke):
    out = tmp_path / "out.onnx"
    result = invoke("export", "mnist_cnn.yaml", "--onnx", str(out), "--seed", "0")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    assert out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.onnx"]  # no temporary file left behind
    check_against_torch(out, archspec.build("mnist_cnn.yaml", seed=0), (1, 28, 28))


def test_cli_export_with_weights_and_set(tmp_path, invoke):
    module = archspec.build("mnist_cnn.yaml", seed=3, classes=5)
    weights = save_weights(module, tmp_path / "w.safetensors")
    out = tmp_path / "five.onnx"
    result = invoke("export", "mnist_cnn.yaml", "--set", "classes=5", "--weights", str(weights),
                    "--onnx", str(out))
    assert result.exit_code == 0, result.output
    check_against_torch(out, module, (1, 28, 28))


@pytest.mark.parametrize("spec, shape", [("mnist_cnn.yaml", (1, 28, 28)), ("lenet5.yaml", (1, 32, 32))])
def test_python_export_zoo_specs(tmp_path, spec, shape):
    module = archspec.build(spec, seed=1)
    graph = archspec.expand(spec)
    assert graph.input_shape == shape
    path = export_quietly(module, graph.input_shape, tmp_path / "m.onnx")
    assert path == tmp_path / "m.onnx"
    check_against_torch(path, module, shape)


def test_python_export_residual_and_concat(tmp_path, spec_file):
    spec = spec_file(RESIDUAL_CONCAT)
    module = archspec.build(spec, seed=2)
    # non-trivial batch-norm statistics, so eval mode differs from a fresh model
    module.train()
    with torch.no_grad():
        module(torch.randn(8, 3, 16, 16) * 2 + 1)
    graph = archspec.expand(spec)
    path = export_quietly(module, graph.input_shape, tmp_path / "mixed.onnx", batch=2)
    check_against_torch(path, module, graph.input_shape, batches=(1, 3, 5))
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"Conv", "Add", "Concat", "MaxPool"} <= ops


def test_export_puts_the_module_in_eval_mode(tmp_path, spec_file):
    spec = spec_file(RESIDUAL_CONCAT)
    module = archspec.build(spec, seed=0).train()
    export_quietly(module, archspec.expand(spec).input_shape, tmp_path / "m.onnx")
    assert not module.training


def test_export_of_a_broken_spec_is_located(tmp_path, invoke, spec_file):
    spec = spec_file("""
        archspec: 1
        name: broken
        input: [1, 8, 8]
        layers:
          - conv2d: {out: 4, kernel: 9}
        """)
    result = invoke("export", str(spec), "--onnx", str(tmp_path / "x.onnx"))
    assert result.exit_code == 1
    assert f"{spec}:5:" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_export_needs_onnx_option(tmp_path, invoke):
    result = invoke("export", "mnist_cnn.yaml")
    assert result.exit_code == 2
    assert "--onnx" in result.output
