"""The spec zoo: every bundled spec is valid and documented, and measures what its source publishes.

The ImageNet figures are torchvision's published ones (parameters exactly, GMACs at 224×224 to
two decimals, counting conv and linear multiply-accumulates only); the small networks are
checked layer by layer against the Keras code and model.summary() of the courses they come from.
Analysis only: this file never imports torch.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec import zoo
from archspec.render import to_markdown
from course_facts import KERAS_MNIST_SUMMARY

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/archspec.schema.json"
LIB_SCHEMA_LINE = "# yaml-language-server: $schema=../../schemas/archspec.schema.json"

ZOO = sorted(p.stem for p in SPECS.glob("*.yaml"))
LIBRARIES = sorted(p.stem for p in (SPECS / "lib").glob("*.yaml"))

# name: (parameters, GMACs at 224x224), as torchvision's model documentation publishes them
TORCHVISION = {
    "alexnet": (61_100_840, 0.71),
    "vgg11": (132_863_336, 7.61),
    "vgg16": (138_357_544, 15.47),
    "vgg19": (143_667_240, 19.63),
    "vgg16_bn": (138_365_992, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
    "googlenet": (6_624_904, 1.50),
}

ACTIVATIONS = {"relu", "leaky_relu", "sigmoid", "tanh", "softmax"}


def keras_layers(summary) -> list[tuple[str, tuple[int, ...], int]]:
    """(type, output shape, parameters) per layer as Keras counts them.

    Keras' Conv2D(activation=...) and Dense(activation=...) are one layer; here they are the
    layer and its activation, so an activation right after a conv2d or linear is folded into it.
    """
    layers: list[tuple[str, tuple[int, ...], int]] = []
    foldable = False  # the last layer is a conv2d or linear that has no activation folded in yet
    for row in summary.rows:
        if row.type in ACTIVATIONS and foldable:
            layers[-1] = (layers[-1][0], tuple(row.output_shape), layers[-1][2])
            foldable = False
            continue
        layers.append((row.type, tuple(row.output_shape), row.params))
        foldable = row.type in ("conv2d", "linear")
    return layers


# ---------------------------------------------------------------- (1) every spec is valid and documented


def test_the_zoo_is_the_specs_folder():
    assert ZOO == zoo.names()
    expected = {"lenet5", "mnist_cnn", "cnn32", "cnn27", "alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn",
                "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "googlenet", "inception_v3",
                "densenet121", "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1", "mnasnet1_0",
                "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x1_0", "convnext_tiny",
                *(f"efficientnet_b{i}" for i in range(8)), "resnext50_32x4d", "wide_resnet50_2",
                "regnet_x_400mf", "regnet_y_400mf"}
    assert expected <= set(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_spec_is_valid_and_documented(name):
    path = SPECS / f"{name}.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE
    assert archspec.validate(path) == []
    data = archspec.load(path).data
    assert data.get("name") == name
    assert isinstance(data.get("source"), str) and data["source"].strip(), f"{name}: no source"
    assert isinstance(data.get("doc"), str) and data["doc"].strip(), f"{name}: no doc"


@pytest.mark.parametrize("name", LIBRARIES)
def test_block_library_is_valid(name):
    path = SPECS / "lib" / f"{name}.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == LIB_SCHEMA_LINE
    spec = archspec.load(path)
    assert archspec.check(spec) == []
    assert spec.blocks and spec.data.get("source")


def test_block_libraries_are_imported():
    imported = {Path(d.file).name for name in ZOO for d in archspec.load(SPECS / f"{name}.yaml").imported}
    assert {"resnet.yaml", "vgg.yaml"} <= imported


# ---------------------------------------------------------------- (2) published figures


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_figures(name):
    params, gmacs = TORCHVISION[name]
    s = archspec.summarize(name)
    assert s.input == (3, 224, 224)
    assert s.totals.params == params
    assert round(s.totals.macs / 1e9, 2) == gmacs
    assert s.rows[-1].output_shape == (1000,)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet152"])
def test_resnet_paths_read_like_torchvision(name):
    paths = {row.path for row in archspec.summarize(name).rows}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer4.1.bn2", "fc"} <= paths
    # the projection exists only in the first block of a stage whose shape changes
    downsample = sorted({p.rsplit(".", 2)[0] for p in paths if ".downsample." in p})
    first_stage = ["layer1.0"] if name != "resnet18" else []
    assert downsample == first_stage + ["layer2.0", "layer3.0", "layer4.0"]


def test_resnet50_bottleneck_v1_5():
    rows = {row.path: row for row in archspec.summarize("resnet50").rows}
    assert rows["layer2.0.conv1"].key_params == "1×1, 128"  # v1.5: the 1x1 keeps the stride 1
    assert rows["layer2.0.conv2"].key_params == "3×3 /2, 128"
    assert rows["layer2.0.downsample.0"].key_params == "1×1 /2, 512"
    assert rows["layer2.0.conv1"].params == 256 * 128  # no bias: batch norm follows


def test_googlenet_inception_module():
    rows = {row.path: row for row in archspec.summarize("googlenet").rows}
    assert rows["inception3a.concat"].output_shape == (256, 28, 28)
    assert rows["inception3a.branch3.1.conv"].key_params == "3×3, 32"  # torchvision's 3x3 for the paper's 5x5
    assert rows["inception5b.concat"].output_shape == (1024, 7, 7)
    assert rows["maxpool1"].output_shape == (64, 56, 56)  # ceil rounding: 112 -> 56
    assert rows["inception3a.branch1.conv"].params == 192 * 64  # BasicConv2d: no bias
    assert not any(".aux" in path for path in rows)


def test_lenet5():
    s = archspec.summarize("lenet5")
    assert s.input == (1, 32, 32)
    assert s.totals.params == 61_706
    convs_and_fcs = [(row.path, row.output_shape, row.params) for row in s.rows if row.params]
    assert convs_and_fcs == [
        ("c1", (6, 28, 28), 156), ("c3", (16, 10, 10), 2_416), ("c5", (120,), 48_120),
        ("f6", (84,), 10_164), ("output", (10,), 850)]
    assert [row.type for row in s.rows].count("tanh") == 4


def test_mnist_cnn_matches_the_keras_summary():
    s = archspec.summarize("mnist_cnn")
    assert s.totals.params == 30_762
    # the course's model.summary(), shapes written (C, H, W) instead of Keras' (H, W, C)
    assert keras_layers(s) == KERAS_MNIST_SUMMARY


def test_cnn32_matches_the_keras_model():
    s = archspec.summarize("cnn32")
    assert s.input == (3, 32, 32)
    assert s.totals.params == 669_354
    assert keras_layers(s) == [
        ("conv2d", (32, 32, 32), 896), ("conv2d", (32, 32, 32), 9_248), ("maxpool2d", (32, 16, 16), 0),
        ("conv2d", (64, 16, 16), 18_496), ("conv2d", (64, 16, 16), 36_928), ("maxpool2d", (64, 8, 8), 0),
        ("conv2d", (64, 8, 8), 36_928), ("conv2d", (64, 8, 8), 36_928), ("maxpool2d", (64, 4, 4), 0),
        ("flatten", (1024,), 0), ("linear", (512,), 524_800), ("linear", (10,), 5_130),
    ]


def test_cnn27_has_27_keras_layers():
    s = archspec.summarize("cnn27")
    assert s.input == (3, 128, 512)
    layers = keras_layers(s)
    assert len(layers) == 27  # "Creates a CNN of 27 layers" (after the Input)
    assert len(s.rows) == 30  # Dense(activation=...) is a linear layer and its activation here
    unit = ["conv2d", "batchnorm2d", "leaky_relu", "dropout"]
    assert [t for t, _, _ in layers] == unit * 5 + ["flatten", "linear", "dropout", "linear", "dropout",
                                                    "linear", "softmax"]
    convs = [(shape, params) for t, shape, params in layers if t == "conv2d"]
    assert convs == [((64, 64, 256), 1_792), ((128, 32, 128), 73_856), ((256, 16, 64), 295_168),
                     ((512, 8, 32), 1_180_160), ((512, 4, 16), 2_359_808)]
    assert layers[20] == ("flatten", (32_768,), 0)
    assert [params for t, _, params in layers if t == "linear"] == [4_194_432, 8_256, 130]
    # Keras: 8,116,546 trainable, plus 2,944 non-trainable moving means and variances
    assert s.totals.params == s.totals.trainable_params == 8_116_546
    assert s.totals.buffers == 2_944 + 5  # + one num_batches_tracked per torch BatchNorm


def test_cnn27_keras_arguments():
    graph = archspec.expand("cnn27")
    by_type = {}
    for node in graph.nodes:
        by_type.setdefault(node.type, []).append(node.args)
    assert all(a["momentum"] == pytest.approx(0.2) and a["eps"] == pytest.approx(1e-3)
               for a in by_type["batchnorm2d"])
    assert all(a["negative_slope"] == pytest.approx(0.3) for a in by_type["leaky_relu"])
    assert all(a["p"] == pytest.approx(0.25) for a in by_type["dropout"])
    assert [node.type for node in graph.nodes][-2:] == ["sigmoid", "softmax"]
    assert archspec.summarize("cnn27", classes=5).rows[-1].output_shape == (5,)


# ---------------------------------------------------------------- (3) golden summaries


@pytest.mark.parametrize("name", ZOO)
def test_golden_summary(name, golden):
    golden(f"zoo/{name}.md", to_markdown(archspec.summarize(name)))


# ---------------------------------------------------------------- (4) lookup by name, and `archspec zoo`


def test_zoo_lookup_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert archspec.summarize("resnet50.yaml").totals.params == 25_557_032
    assert archspec.summarize("resnet50").totals.params == 25_557_032
    assert archspec.validate("googlenet.yaml") == []


def test_zoo_command_lists_every_spec(invoke):
    result = invoke("zoo")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert set(ZOO) <= listed
