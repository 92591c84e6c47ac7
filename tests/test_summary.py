"""The Summary: totals arithmetic, batch and dtype scaling, --depth collapsing, to_dict()'s keys,
and a course's Keras MNIST network with its model.summary() figures."""
from __future__ import annotations

import math

import pytest

import archspec
from archspec.errors import UsageError
from archspec.infer import DTYPE_BYTES
from archspec.summary import OPTIMIZER_SLOTS
from course_facts import KERAS_MNIST_SUMMARY

MNIST = """
archspec: 1
name: keras_mnist
input: [1, 28, 28]
layers:
  - conv2d: {out: 16, kernel: 3}
  - relu
  - maxpool2d: {kernel: 2}
  - conv2d: {out: 32, kernel: 3}
  - relu
  - maxpool2d: {kernel: 2}
  - flatten
  - dense: {out: 32}
  - relu
  - dense: {out: 10}
  - softmax
"""


@pytest.fixture
def mnist(spec_file):
    return spec_file(MNIST, "keras_mnist.yaml")


def test_keras_mnist_shapes_and_params(mnist):
    s = archspec.summarize(mnist)
    # Keras folds the activation into the layer; the table lists it as its own row
    rows = [r for r in s.rows if r.type not in ("relu", "softmax")]
    assert [(r.type, r.output_shape, r.params) for r in rows] == KERAS_MNIST_SUMMARY
    assert s.totals.params == 30_762 == sum(p for _, _, p in KERAS_MNIST_SUMMARY)
    assert s.totals.trainable_params == 30_762 and s.totals.non_trainable_params == 0


def test_totals_arithmetic():
    s = archspec.summarize("vgg16", optimizer="adam")
    t = s.totals
    assert t.params == t.trainable_params + t.non_trainable_params == 138_357_544
    assert t.params == sum(r.params for r in s.rows)
    assert t.flops == 2 * t.macs
    assert t.macs == sum(r.macs for r in s.rows)
    assert t.param_bytes == t.params * 4
    assert t.gradient_bytes == t.trainable_params * 4
    assert t.training_bytes == t.param_bytes + t.buffer_bytes + t.gradient_bytes + t.optimizer_bytes + t.saved_bytes
    assert t.input_bytes == 3 * 224 * 224 * 4
    assert t.activation_bytes == (3 * 224 * 224 + sum(r.activations for r in s.rows)) * 4


@pytest.mark.parametrize("optimizer, slots", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_optimizer_slots(mnist, optimizer, slots):
    t = archspec.summarize(mnist, optimizer=optimizer).totals
    assert OPTIMIZER_SLOTS[optimizer] == slots
    assert t.optimizer_bytes == slots * t.trainable_params * 4
    assert t.training_bytes == t.param_bytes + t.buffer_bytes + t.gradient_bytes + t.optimizer_bytes + t.saved_bytes


def test_frozen_layers_have_no_gradient_or_optimizer_state(spec_file):
    path = spec_file("""
        archspec: 1
        input: [3, 8, 8]
        layers:
          - {conv2d: {out: 4, kernel: 3}, trainable: false}
          - batchnorm2d
          - flatten
          - linear: {out: 2}
    """)
    t = archspec.summarize(path, optimizer="adam").totals
    frozen = 3 * 3 * 3 * 4 + 4
    assert t.non_trainable_params == frozen
    assert t.trainable_params == t.params - frozen
    assert t.gradient_bytes == t.trainable_params * 4
    assert t.optimizer_bytes == 2 * t.trainable_params * 4
    assert t.buffers == 2 * 4 + 1 and t.buffer_bytes == t.buffers * 4


def test_batch_scales_activations_macs_and_saved_not_params():
    one, many = archspec.summarize("vgg16", batch=1), archspec.summarize("vgg16", batch=32)
    a, b = one.totals, many.totals
    for key in ("activation_bytes", "input_bytes", "macs", "flops", "saved_bytes", "forward_peak_bytes"):
        assert getattr(b, key) == 32 * getattr(a, key), key
    for key in ("params", "trainable_params", "param_bytes", "buffers", "gradient_bytes", "optimizer_bytes"):
        assert getattr(b, key) == getattr(a, key), key
    for r1, r32 in zip(one.rows, many.rows):
        assert (r32.activations, r32.macs, r32.params) == (32 * r1.activations, 32 * r1.macs, r1.params)
    assert b.training_bytes - a.training_bytes == b.saved_bytes - a.saved_bytes


def test_batchnorm_statistics_do_not_scale_with_batch(spec_file):
    path = spec_file("""
        archspec: 1
        input: [4, 6, 6]
        layers: [batchnorm2d]
    """)
    s1, s2, s3 = (archspec.summarize(path, batch=b).totals.saved_bytes for b in (1, 2, 3))
    assert s2 - s1 == s3 - s2 == 4 * 36 * 4  # the input grows, the per-channel statistics do not
    assert s1 > 4 * 36 * 4


@pytest.mark.parametrize("dtype, size", [("float32", 4), ("float16", 2), ("bfloat16", 2), ("float64", 8)])
def test_dtype_bytes(mnist, dtype, size):
    assert DTYPE_BYTES[dtype] == size
    t32, t = archspec.summarize(mnist).totals, archspec.summarize(mnist, dtype=dtype).totals
    for key in ("param_bytes", "activation_bytes", "input_bytes", "gradient_bytes", "optimizer_bytes",
                "forward_peak_bytes"):
        assert getattr(t, key) * 4 == getattr(t32, key) * size, key
    assert t.macs == t32.macs and t.params == t32.params
    # maxpool's int64 indices keep 8 bytes whatever the dtype: saved bytes do not simply scale
    indices = 8 * (16 * 13 * 13 + 32 * 5 * 5)
    assert (t.saved_bytes - indices) * 4 == (t32.saved_bytes - indices) * size


@pytest.mark.parametrize("kwargs", [{"dtype": "float8"}, {"optimizer": "lion"}, {"batch": 0}, {"batch": 1.5},
                                    {"depth": -1}])
def test_bad_arguments(kwargs):
    with pytest.raises(UsageError):
        archspec.summarize("vgg16", **kwargs)


def test_depth_zero_collapses_vgg16_into_its_blocks():
    s = archspec.summarize("vgg16", depth=0)
    paths = [r.path for r in s.rows]
    assert paths[:5] == ["block1", "block2", "block3", "block4", "block5"]
    head = paths[5:]
    assert all("." not in p for p in head)
    assert [r.type for r in s.rows[5:]] == ["adaptive_avgpool2d", "flatten", "linear", "relu", "dropout", "linear",
                                            "relu", "dropout", "linear"]
    assert sum(r.params for r in s.rows) == s.totals.params == 138_357_544
    full = archspec.summarize("vgg16")
    assert sum(r.macs for r in s.rows) == full.totals.macs
    block1 = s.rows[0]
    assert block1.type == "stage" and block1.nodes == 5
    assert block1.params == 1_728 + 64 + 36_864 + 64
    assert block1.output_shape == (64, 112, 112)
    assert block1.receptive_field == (6, 6)
    assert block1.activations == sum(r.activations for r in full.rows if r.path.startswith("block1."))


def test_depth_one_and_none():
    full = archspec.summarize("vgg16")
    deep = archspec.summarize("vgg16", depth=1)
    assert [r.path for r in deep.rows] == [r.path for r in full.rows]  # vgg16 nests one level only
    assert all(r.nodes == 1 for r in full.rows)
    assert len(full.rows) == 13 * 2 + 5 + 9


DOCUMENTED_TOP = {"name", "input", "batch", "dtype", "layers", "totals"}
DOCUMENTED_LAYER = {"path", "type", "output_shape", "params", "trainable", "activations", "macs", "receptive_field"}
DOCUMENTED_TOTALS = {"params", "trainable_params", "param_bytes", "activation_bytes", "saved_bytes", "macs",
                     "training_bytes"}


def test_to_dict_has_the_documented_keys(mnist):
    d = archspec.summarize(mnist, batch=2, dtype="float16").to_dict()
    assert DOCUMENTED_TOP <= set(d)
    assert d["name"] == "keras_mnist" and d["input"] == [1, 28, 28] and d["batch"] == 2 and d["dtype"] == "float16"
    assert len(d["layers"]) == 11
    for layer in d["layers"]:
        assert DOCUMENTED_LAYER <= set(layer), set(layer)
    assert DOCUMENTED_TOTALS <= set(d["totals"])
    first = d["layers"][0]
    assert first["path"] == "conv1" and first["type"] == "conv2d" and first["output_shape"] == [16, 26, 26]
    assert first["params"] == first["trainable"] == 160
    assert first["activations"] == 2 * 16 * 26 * 26
    assert first["macs"] == 2 * 16 * 26 * 26 * 9
    assert first["receptive_field"] == [3, 3]
    assert d["totals"]["params"] == 30_762


def test_to_dict_is_plain_json_data(mnist):
    import json

    d = archspec.summarize(mnist).to_dict()
    assert json.loads(json.dumps(d)) == d


def test_macs_of_the_mnist_network(mnist):
    s = archspec.summarize(mnist)
    by = {r.path: r for r in s.rows}
    assert by["conv1"].macs == 26 * 26 * 16 * 3 * 3 * 1
    assert by["conv2"].macs == 11 * 11 * 32 * 3 * 3 * 16
    assert by["fc1"].macs == 800 * 32
    assert by["fc2"].macs == 32 * 10
    assert s.totals.macs == sum(r.macs for r in s.rows)
    assert math.isclose(s.totals.flops / s.totals.macs, 2)
