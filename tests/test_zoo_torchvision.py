"""The zoo against torchvision's facts: parameters, MACs and state_dict keys and shapes, exactly.

The facts are tests/golden/torchvision/NAME.json, written once by tests/torchvision_facts.py
from torchvision itself (never a test dependency): every state_dict entry with its shape, the
parameter count, the conv and linear multiply-accumulates at the input size of torchvision's
published weights (counted by forward hooks; they equal torchvision's published GFLOPS), and
the published accuracy. A spec's state_dict is read from its module built on the meta device,
so a check costs no memory and no arithmetic.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import archspec
from archspec import zoo

torch = pytest.importorskip("torch")

GOLDEN = Path(__file__).resolve().parent / "golden" / "torchvision"
FACTS = sorted(p.stem for p in GOLDEN.glob("*.json"))
SPECCED = [name for name in FACTS if name in zoo.names()]

# torchvision networks the zoo has, with torchvision's state_dict keys
WEIGHT_COMPATIBLE = {
    "alexnet", "googlenet", "inception_v3", "densenet121", "densenet169", "densenet201", "squeezenet1_0",
    "squeezenet1_1", "mnasnet1_0", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    *(f"efficientnet_b{i}" for i in range(8)), "shufflenet_v2_x1_0", "convnext_tiny",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
    "regnet_x_400mf", "regnet_y_400mf",
}
# the VGGs keep the stages of the paper and the CS231n notes: right figures, keys of their own
OWN_KEYS = {"vgg11", "vgg16", "vgg19", "vgg16_bn"} - WEIGHT_COMPATIBLE


def facts(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def spec_state(name: str, **params) -> dict[str, list[int]]:
    with torch.device("meta"):
        module = archspec.build(name, **params)
    return {key: list(t.shape) for key, t in module.state_dict().items()}


def state_differences(ours: dict[str, list[int]], theirs: dict[str, list[int]]) -> list[str]:
    return ([f"missing {k} {v}" for k, v in theirs.items() if k not in ours]
            + [f"extra {k} {v}" for k, v in ours.items() if k not in theirs]
            + [f"{k}: ours {ours[k]}, torchvision's {v}" for k, v in theirs.items() if k in ours and ours[k] != v])


def aux_head(name: str) -> int:
    """torchvision counts inception_v3's auxiliary classifier in its published parameters: 1x1 conv
    to 128 and batch norm, 5x5 conv to 768 and batch norm, a linear layer to 1000 classes."""
    if name != "inception_v3":
        return 0
    return 768 * 128 + 2 * 128 + 128 * 768 * 5 * 5 + 2 * 768 + 768 * 1000 + 1000


def test_the_facts_agree_with_what_torchvision_publishes():
    """The hook-counted MACs are torchvision's GFLOPS (its figure counts conv and linear MACs)."""
    assert len(FACTS) >= 35
    for name in FACTS:
        f = facts(name)
        v1 = f["published"][0]
        assert f["params"] + aux_head(name) == v1["params"], name
        assert round(f["macs"] / 1e9, 3) == v1["gflops"], name
        assert f["input"] == [3, v1["crop"], v1["crop"]], name


def test_every_weight_compatible_network_is_in_the_zoo():
    assert WEIGHT_COMPATIBLE <= set(SPECCED)


@pytest.mark.parametrize("name", SPECCED)
def test_parameters_and_macs(name):
    f = facts(name)
    s = archspec.summarize(name)
    assert list(s.input) == f["input"]
    assert s.totals.params == f["params"]
    conv_and_linear = sum(row.macs for row in s.rows if row.type in ("conv2d", "linear"))
    assert conv_and_linear == f["macs"]
    assert s.rows[-1].output_shape == (1000,)


@pytest.mark.parametrize("name", SPECCED)
def test_published_accuracy_is_the_first_weights(name):
    """The accuracy `archspec compare` charts is that of torchvision's IMAGENET1K_V1 weights."""
    metadata = archspec.load(zoo.find(name)).data.get("metadata", {})
    v1 = facts(name)["published"][0]
    assert metadata.get("top1") == v1["top1"]
    assert metadata.get("top5") == v1["top5"]


@pytest.mark.parametrize("name", sorted(WEIGHT_COMPATIBLE))
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    theirs = {key: shape for key, shape in facts(name)["state_dict"]}
    assert state_differences(spec_state(name), theirs) == []


@pytest.mark.parametrize("name", sorted(OWN_KEYS & set(SPECCED)))
def test_vggs_hold_the_same_tensors_in_the_same_order(name):
    """The VGGs keep the paper's stages (block1.conv1, not features.0): the same tensors, in the same
    order, so torchvision's file maps onto them one by one (docs/pretrained.md shows how)."""
    ours = [(key.rsplit(".", 1)[1], shape) for key, shape in spec_state(name).items()]
    theirs = [(key.rsplit(".", 1)[1], shape) for key, shape in facts(name)["state_dict"]]
    assert ours == theirs


def test_a_torchvision_state_dict_loads_strictly():
    """What the keys test means: torchvision's state_dict (here with its names and shapes, random
    values) loads into the built module with strict=True and sets every tensor."""
    gen = torch.Generator().manual_seed(0)
    state = {key: (torch.randn(shape, generator=gen) if shape else torch.tensor(3))
             for key, shape in facts("mobilenet_v3_small")["state_dict"]}
    with torch.device("meta"):
        model = archspec.build("mobilenet_v3_small")
    model = model.to_empty(device="cpu")
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.state_dict()["features.4.block.2.fc1.weight"], state["features.4.block.2.fc1.weight"])
    assert model.state_dict()["features.12.1.num_batches_tracked"] == 3
