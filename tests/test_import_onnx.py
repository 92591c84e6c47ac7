"""archspec import from ONNX files (``archspec.importer.onnx_file``): the zoo's own exports
(``archspec export``) read back to equal specs, with their initialisers as weights.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import archspec  # noqa: E402
from archspec.errors import SpecError  # noqa: E402
from archspec.export import export_onnx  # noqa: E402
from archspec.importer import import_model  # noqa: E402
from archspec.layers import lookup  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# zoo specs without batch norm: torch's exporter folds batch norm into the convolutions before it
PLAIN = ["lenet5", "mnist_cnn", "lenet_digits", "cnn32"]


def exported(name: str, tmp_path):
    module = archspec.build(name, seed=0).train(False)
    graph = archspec.expand(name)
    path = export_onnx(module, graph.input_shape, tmp_path / f"{name}.onnx")
    return module, graph, path


def weighted(graph):
    """Path, type, output shape and arguments of every layer with parameters ("same" padding is
    stored by ONNX as the numbers it stands for, so padding is compared through the shapes)."""
    def has_params(n):
        return lookup(n.type).param_count(n.args, [graph.shape_of(i) for i in n.inputs], n.shape).total

    return [(n.path, n.type, n.shape, {k: v for k, v in n.args.items() if k != "padding"})
            for n in graph.nodes if has_params(n)]


@pytest.mark.parametrize("name", PLAIN)
def test_zoo_export_reads_back_to_an_equal_spec(name, tmp_path):
    module, graph, path = exported(name, tmp_path)
    imported = import_model(path, tmp_path / f"{name}.yaml", weights=tmp_path / f"{name}.safetensors")
    back = archspec.expand(str(tmp_path / f"{name}.yaml"))
    assert back.input_shape == graph.input_shape
    assert weighted(back) == weighted(graph)
    assert [n.type for n in back.nodes if n.type != "dropout"] == [n.type for n in graph.nodes if n.type != "dropout"]
    before, after = archspec.summarize(name), archspec.summarize(str(tmp_path / f"{name}.yaml"))
    assert (after.totals.params, after.totals.macs) == (before.totals.params, before.totals.macs)
    rebuilt = archspec.build(str(tmp_path / f"{name}.yaml"))
    archspec.load_weights(rebuilt, tmp_path / f"{name}.safetensors")
    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.train(False)(x), module(x), rtol=1e-5, atol=1e-5)
    assert imported.text.startswith("# yaml-language-server: $schema=")


WITH_BATCH_NORM = """
archspec: 1
name: bn_net
input: [3, 12, 12]
layers:
  - {conv2d: {out: 8, kernel: 3, padding: 1, bias: false}, name: conv}
  - {batchnorm2d: {}, name: bn}
  - relu
  - maxpool2d: {kernel: 2}
  - flatten
  - {linear: {out: 4}, name: fc}
"""


def test_batch_norm_folded_by_the_exporter_still_computes_the_same(tmp_path):
    spec = archspec.loads(WITH_BATCH_NORM)
    module, graph = archspec.build(spec, seed=0).train(False), archspec.expand(spec)
    with torch.no_grad():  # statistics other than 0 and 1, so folding them matters
        module.bn.running_mean.uniform_(-1, 1)
        module.bn.running_var.uniform_(0.5, 2)
    path = export_onnx(module, graph.input_shape, tmp_path / "bn_net.onnx")
    imported = import_model(path)
    assert "batchnorm" not in imported.text  # folded into the convolutions by torch.onnx
    rebuilt = archspec.build(archspec.loads(imported.text))
    rebuilt.load_state_dict({k: torch.from_numpy(v) for k, v in imported.tensors.items()})
    x = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.train(False)(x), module(x), rtol=1e-4, atol=1e-4)


def test_unsupported_onnx_nodes_all_listed(tmp_path, invoke):
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    weight = numpy_helper.from_array(np.zeros((4, 3, 3, 3), dtype=np.float32), "conv.weight")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
        helper.make_node("Erf", ["c"], ["e"], name="/act/Erf"),
        helper.make_node("Relu", ["e"], ["r"], name="/relu/Relu"),
        helper.make_node("InstanceNormalization", ["r", "s", "b"], ["y"], name="/norm/InstanceNormalization"),
    ]
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
                              initializer=[weight])
    path = tmp_path / "odd.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(SpecError) as caught:
        import_model(path)
    assert [(p.node, p.message) for p in caught.value.problems] == [
        ("/act/Erf", "ONNX Erf has no catalogue entry"),
        ("/norm/InstanceNormalization", "ONNX InstanceNormalization has no catalogue entry"),
    ]
    result = invoke("import", str(path), "-o", str(tmp_path / "odd.yaml"))
    assert result.exit_code == 1 and not (tmp_path / "odd.yaml").exists()
    assert "/act/Erf: ONNX Erf has no catalogue entry" in result.output
