"""The language features for today's torchvision networks: conditional items (if:), residuals
without a shortcut (shortcut: none), numeric and computed names, chunks read part by part,
squeeze-and-excitation with mul, layer scale at its own path; each compiled and run against a
plain torch computation written here, and each mistake reported at its place."""
from __future__ import annotations

import pytest
from test_expand import graph, messages, spec, wiring

import archspec

torch = pytest.importorskip("torch")

HEAD = "archspec: 1\ninput: [8, 6, 6]\n"


def build(text: str, **params):
    return archspec.build(spec(text), seed=0, **params).eval()


# ---------------------------------------------------------------- if:


CONDITIONAL = HEAD + """
params: {se: true, extra: 0}
layers:
  - conv2d: {out: 8, kernel: 1}
  - relu:
    if: $se
    name: act
  - sigmoid:
    if: "${extra > 0}"
  - conv2d: {out: 4, kernel: 1}
"""


def test_if_false_removes_the_item_as_if_not_written():
    kept = graph(CONDITIONAL)
    assert wiring(kept) == {"conv1": ["input"], "act": ["conv1"], "conv2": ["act"]}
    removed = graph(CONDITIONAL, se=False, extra=1)
    # the removed item takes no auto name either: the next conv is still conv2
    assert wiring(removed) == {"conv1": ["input"], "sigmoid1": ["conv1"], "conv2": ["sigmoid1"]}


def test_if_on_structures_and_blocks():
    g = graph(HEAD + """
params: {residual: false}
blocks:
  unit:
    params: {c: int, proj: false}
    body:
      - conv2d: {out: $c, kernel: 1}
      - batchnorm2d:
        if: $proj
layers:
  - residual: [conv2d: {out: 8, kernel: 3, padding: 1}]
    if: $residual
  - unit: {c: 8}
  - repeat: 2
    if: "${not residual}"
    body: [relu]
""")
    assert [n.path for n in g.nodes] == ["unit1.conv1", "relu1", "relu2"]


def test_two_items_of_one_name_under_complementary_conditions():
    text = HEAD + """
params: {wide: false}
layers:
  - conv2d: {out: 16, kernel: 1}
    name: "0"
    if: $wide
  - conv2d: {out: 4, kernel: 1}
    name: "0"
    if: "${not wide}"
"""
    assert graph(text).node("0").shape == (4, 6, 6)
    assert graph(text, wide=True).node("0").shape == (16, 6, 6)


@pytest.mark.parametrize("condition, message", [
    ("3", "s.yaml:6:9: error: if: expected true or false or a $ expression, found int 3"),
    ("${1 + 1}", "s.yaml:6:9: error: if: expected true or false (or an expression giving one, "
                 "like ${se > 0}), found int 2"),
    ("$nope", "s.yaml:6:9: error: undefined name 'nope' in '$nope'; no parameters are defined here"),
])
def test_if_mistakes(condition, message):
    assert messages(HEAD + f"layers:\n  - conv2d: {{out: 8, kernel: 1}}\n  - relu:\n    if: {condition}\n") == [message]


def test_reading_a_removed_item_says_so():
    assert messages(HEAD + """
layers:
  - relu:
    name: gate
    if: false
  - add:
    from: [input, gate]
""") == ["s.yaml:9:19: error: add1: from: 'gate' is removed here (its if: is false)"]


# ---------------------------------------------------------------- shortcut: none


INVERTED = HEAD + """
blocks:
  inverted:
    params: {c: int, stride: 1}
    body:
      - residual:
          - conv2d: {out: 16, kernel: 1, bias: false}
          - relu6
          - conv2d: {out: 16, kernel: 3, stride: $stride, padding: 1, groups: 16, bias: false}
          - relu6
          - conv2d: {out: $c, kernel: 1, bias: false}
        shortcut: none
layers:
  - inverted: {c: 8}
    name: same
  - inverted: {c: 8, stride: 2}
    name: strided
  - inverted: {c: 12}
    name: wider
"""


def test_shortcut_none_adds_the_input_only_where_the_shape_is_kept():
    g = graph(INVERTED)
    adds = [n for n in g.nodes if n.type == "add"]
    assert [(n.path, n.inputs) for n in adds] == [("same", ["same.conv3", "input"])]
    assert g.output == "wider.conv3"
    assert wiring(g)["wider.conv1"] == ["strided.conv3"]
    assert not [n for n in g.nodes if "downsample" in n.path]

    net = build(INVERTED)
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        main = torch.nn.Sequential(net.same.conv1, torch.nn.ReLU6(), net.same.conv2, torch.nn.ReLU6(), net.same.conv3)
        y = main(x) + x
        for part in (net.strided, net.wider):
            y = part.conv3(torch.nn.functional.relu6(part.conv2(torch.nn.functional.relu6(part.conv1(y)))))
        torch.testing.assert_close(net(x), y)


def test_shortcut_must_be_layers_or_none():
    assert messages(HEAD + "layers:\n  - residual: [relu]\n    shortcut: identity\n") == [
        "s.yaml:5:15: error: shortcut must be a list of layers (the projection used where the shape changes; "
        "{name: proj, body: [...]} to name its namespace) or none (no connection where it changes), "
        "found string 'identity'"]


def test_a_changed_shape_without_shortcut_names_both_remedies():
    [message] = messages(HEAD + "layers:\n  - residual: [conv2d: {out: 16, kernel: 1}]\n")
    assert "did you forget a shortcut" in message and "shortcut: none" in message


# ---------------------------------------------------------------- names as torchvision's


NUMERIC = HEAD + """
blocks:
  conv_bn_act:
    params: {c: int}
    body:
      - conv2d: {out: $c, kernel: 3, padding: 1, bias: false}
        name: 0
      - batchnorm2d:
        name: 1
      - relu6:
        name: 2
layers:
  - repeat: 2
    name: features
    body:
      - conv_bn_act: {c: 8}
        name: "${i}"
  - global_avgpool
  - linear: {out: 3}
    name: classifier
"""


def test_numeric_names_give_torchvision_state_dict_keys():
    net = build(NUMERIC)
    keys = list(net.state_dict())
    # a repeat's copy holding one item is that item: features.0 is the block, as torchvision's
    # Conv2dNormActivation at features[0]
    assert keys[:6] == ["features.0.0.weight", "features.0.1.weight", "features.0.1.bias",
                        "features.0.1.running_mean", "features.0.1.running_var", "features.0.1.num_batches_tracked"]
    assert "features.1.0.weight" in keys and keys[-2:] == ["classifier.weight", "classifier.bias"]
    assert net(torch.randn(2, 8, 6, 6)).shape == (2, 3)


def test_from_reads_a_numeric_name():
    g = graph(HEAD + "layers:\n  - relu:\n    name: 0\n  - sigmoid\n  - add:\n    from: [0, sigmoid1]\n")
    assert wiring(g)["add1"] == ["0", "sigmoid1"]


# ---------------------------------------------------------------- hyphens, copy names, a named shortcut: RegNet's keys


REGNET_STAGE = HEAD + """
blocks:
  unit:
    params: {c: int, stride: 1}
    body:
      - residual:
          - conv2d: {out: $c, kernel: 3, stride: $stride, padding: 1}
            name: f
        shortcut:
          name: proj
          body:
            - conv2d: {out: $c, kernel: 1, stride: $stride}
              name: 0
      - relu
  stage:
    params: {k: int, c: int, d: int}
    body:
      - repeat: $d
        copy_name: "block${k}-${i}"
        body:
          - unit: {c: $c, stride: "${2 if i == 0 else 1}"}
layers:
  - stage: {k: 1, c: 12, d: 2}
    name: block1
"""


def test_copy_names_and_a_named_shortcut_give_torchvisions_regnet_keys():
    net = build(REGNET_STAGE)
    assert list(net.state_dict()) == [
        "block1.block1-0.f.weight", "block1.block1-0.f.bias", "block1.block1-0.proj.0.weight",
        "block1.block1-0.proj.0.bias", "block1.block1-1.f.weight", "block1.block1-1.f.bias"]
    first, second = getattr(net.block1, "block1-0"), getattr(net.block1, "block1-1")
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        y = torch.relu(first.f(x) + getattr(first.proj, "0")(x))
        torch.testing.assert_close(net(x), torch.relu(second.f(y) + y))


@pytest.mark.parametrize("name", ["block1-0", "a-b-c", "x_1-y2"])
def test_hyphenated_names(name):
    g = graph(HEAD + f"layers:\n  - relu:\n    name: {name}\n  - sigmoid\n  - add:\n    from: [{name}, sigmoid1]\n")
    assert wiring(g)["add1"] == [name, "sigmoid1"]


@pytest.mark.parametrize("text, message", [
    # a template's parts are expressions of the scope
    ("  - relu:\n    name: \"act${j}-1\"\n", "s.yaml:5:11: error: undefined name 'j'"),
    ("  - repeat: 2\n    copy_name: \"c${i}\"\n    body: [relu]\n",
     "s.yaml:5:16: error: copy_name names the copies of a named repeat: give the repeat a name"),
    ("  - repeat: 2\n    name: r\n    copy_name: same\n    body: [relu]\n",
     "s.yaml:6:16: error: r: copy_name gives two copies the name 'same': make it depend on the index"),
    ("  - repeat: 2\n    name: r\n    copy_name: \"${i}-\"\n    body: [relu]\n",
     "s.yaml:6:16: error: r: copy_name '0-' is not a valid name"),
    ("  - residual: [conv2d: {out: 4, kernel: 1}]\n    shortcut: {name: a-, body: [conv2d: {out: 4, kernel: 1}]}\n",
     "s.yaml:5:22: error: name 'a-' is not a valid name"),
    ("  - residual: [conv2d: {out: 4, kernel: 1}]\n    shortcut: {name: p, stride: 2, body: [conv2d: {out: 4, kernel: 1}]}\n",
     "s.yaml:5:25: error: unknown key 'stride' in shortcut; expected name, body"),
])
def test_copy_name_and_shortcut_name_mistakes(text, message):
    found = messages(HEAD + "layers:\n" + text)
    assert len(found) == 1 and found[0].startswith(message), found


@pytest.mark.parametrize("name", ["1a", "-1", "0.5", "a-", "a--b", "-a"])
def test_names_that_are_neither_identifiers_nor_numbers(name):
    [message] = messages(HEAD + f"layers:\n  - relu:\n    name: {name}\n")
    assert message.startswith("s.yaml:5:11: error: name ") and "a number alone" in message


# ---------------------------------------------------------------- chunk


SHUFFLE_UNIT = HEAD + """
layers:
  - chunk: {parts: 2}
    name: halves
  - conv2d: {out: 4, kernel: 1}
    from: halves.1
    name: branch2
  - concat:
    from: [halves.0, branch2]
  - channel_shuffle: {groups: 2}
"""


def test_chunk_parts_are_read_by_name_and_compile_to_views():
    g = graph(SHUFFLE_UNIT)
    assert wiring(g) == {"halves.0": ["input"], "halves.1": ["input"], "branch2": ["halves.1"],
                         "concat1": ["halves.0", "branch2"], "shuffle1": ["concat1"]}
    net = build(SHUFFLE_UNIT)
    x = torch.randn(2, 8, 6, 6)
    x1, x2 = x.chunk(2, dim=1)
    out = torch.cat((x1, net.branch2(x2)), dim=1)
    n, c, h, w = out.shape
    expected = out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected)
    summary = archspec.summarize(spec(SHUFFLE_UNIT))
    assert summary.totals.params == 8 * 4 // 2 * 1 + 4


@pytest.mark.parametrize("layers, message", [
    ("  - chunk: {parts: 2}\n    name: halves\n  - relu\n",
     "s.yaml:6:5: error: relu1: the item before this one ('halves') gives 2 parts: say which this item reads, "
     "e.g. from: halves.0"),
    ("  - chunk: {parts: 2}\n    name: halves\n  - relu:\n    from: halves\n",
     "s.yaml:7:11: error: relu1: from: 'halves' gives 2 parts; read one of them: halves.0, halves.1"),
    ("  - chunk: {parts: 3}\n",
     "s.yaml:4:5: error: chunk1: 3 equal parts need a size divisible by 3 along axis 0, found 8×6×6"),
    ("  - relu\n  - chunk: {parts: 2}\n",
     "s.yaml:5:5: error: the last item ('chunk1') gives 2 parts; a spec's output is one tensor: add an item "
     "reading one of them, or a merge of them"),
])
def test_chunk_mistakes(layers, message):
    assert messages(HEAD + "layers:\n" + layers) == [message]


def test_one_part_of_a_chunk():
    g = graph(HEAD + "layers:\n  - chunk: {parts: 4, part: 3}\n")
    [node] = g.nodes
    assert (node.path, node.shape) == ("chunk1", (2, 6, 6))


# ---------------------------------------------------------------- squeeze-and-excitation, layer scale


SE = HEAD + """
blocks:
  squeeze_excitation:
    params: {c: int, squeeze: int}
    body:
      - adaptive_avgpool2d: {output: 1}
        name: avgpool
      - conv2d: {out: $squeeze, kernel: 1}
        name: fc1
      - relu
      - conv2d: {out: $c, kernel: 1}
        name: fc2
      - hardsigmoid:
        name: gate
      - mul:
        from: [gate, input]
layers:
  - squeeze_excitation: {c: 8, squeeze: 2}
    name: se
  - parallel:
      - []
      - [global_avgpool: {keepdims: true}, sigmoid]
    merge: mul
"""


def test_squeeze_and_excitation_with_mul():
    net = build(SE)
    x = torch.randn(2, 8, 6, 6)
    se = net.se
    gate = torch.nn.functional.hardsigmoid(se.fc2(torch.relu(se.fc1(x.mean(dim=(2, 3), keepdim=True)))))
    y = gate * x
    expected = y * torch.sigmoid(y.mean(dim=(2, 3), keepdim=True))
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected)
    assert list(net.state_dict()) == ["se.fc1.weight", "se.fc1.bias", "se.fc2.weight", "se.fc2.bias"]


def test_mul_refuses_shapes_that_do_not_broadcast():
    [message] = messages(HEAD + "layers:\n  - global_avgpool:\n    name: g\n  - mul:\n    from: [g, input]\n")
    assert "mul1: inputs differ in rank" in message or "do not broadcast" in message


def test_a_merge_of_too_many_branches():
    assert messages(HEAD + "layers:\n  - parallel: [[relu], [sigmoid], [tanh]]\n    merge: mul\n") == [
        "s.yaml:5:12: error: parallel1: merge: mul takes at most 2 branches, found 3"]


def test_layer_scale_is_a_parameter_at_its_own_path():
    text = HEAD + """
layers:
  - repeat: 1
    name: stage
    body:
      - residual:
          - conv2d: {out: 8, kernel: 7, padding: 3, groups: 8}
            name: block
          - layer_scale: {value: 0.5}
            name: layer_scale
          - drop_path: {p: 0.2}
            name: stochastic_depth
"""
    net = build(text)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == {
        "stage.0.block.weight": (8, 1, 7, 7), "stage.0.block.bias": (8,), "stage.0.layer_scale": (8, 1, 1)}
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(net(x), 0.5 * getattr(net.stage, "0").block(x) + x)  # drop_path: identity in eval
    summary = archspec.summarize(spec(text))
    assert summary.totals.params == sum(p.numel() for p in net.parameters())
    frozen = archspec.build(spec(text + "freeze: [stage]\n"))
    assert not any(p.requires_grad for p in frozen.parameters())


def test_drop_path_drops_whole_samples_while_training():
    net = archspec.build(spec(HEAD + "layers:\n  - drop_path: {p: 0.5}\n"), seed=0).train()
    torch.manual_seed(0)
    y = net(torch.ones(64, 8, 6, 6))
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert all(len(row.unique()) == 1 for row in per_sample)  # a sample is kept or dropped whole
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


# ---------------------------------------------------------------- a U-Net-style decoder


def test_a_small_u_net_decoder_compiles_and_agrees_with_the_analysis():
    text = """
archspec: 1
input: [3, 16, 16]
layers:
  - conv2d: {out: 8, kernel: 3, padding: 1}
    name: enc1
  - maxpool2d: {kernel: 2}
  - conv2d: {out: 16, kernel: 3, padding: 1}
    name: enc2
  - conv_transpose2d: {out: 8, kernel: 2, stride: 2}
    name: up
  - concat:
    from: [up, enc1]
  - conv2d: {out: 8, kernel: 3, padding: 1}
  - upsample: {scale: 2, mode: bilinear}
  - zero_pad2d: {padding: [0, 1, 0, 1]}
  - groupnorm: {groups: 2}
  - gelu: {approximate: tanh}
"""
    g = graph(text)
    assert g.node("up").shape == (8, 16, 16) and g.nodes[-1].shape == (8, 33, 33)
    net = build(text)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 8, 33, 33)
    assert archspec.summarize(spec(text)).totals.params == sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------- the language guide's examples


def _guide_examples() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "spec-language.md").read_text(encoding="utf-8")
    # the whole networks of the sections on squeeze-and-excitation and U-Net decoders
    text = text.split("## A squeeze-and-excitation block", 1)[1].split("## Imports", 1)[0]
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    return [b for b in blocks if b.startswith("archspec: 1")]


@pytest.mark.parametrize("text", _guide_examples(), ids=lambda t: t.split("name: ", 1)[-1].split("\n", 1)[0])
def test_the_guides_whole_specs_validate(text):
    assert archspec.validate(archspec.loads(text, "guide.yaml")) == []


def test_the_guides_squeeze_and_excitation_has_torchvisions_keys():
    [text] = [t for t in _guide_examples() if "squeeze_excitation" in t]
    net = archspec.build(archspec.loads(text, "guide.yaml"))
    assert [k for k in net.state_dict() if k.startswith("se.")] == [
        "se.fc1.weight", "se.fc1.bias", "se.fc2.weight", "se.fc2.bias"]
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_the_guides_u_net_decoder_gives_a_map_per_class():
    [text] = [t for t in _guide_examples() if "tiny_unet" in t]
    g = archspec.expand(archspec.loads(text, "guide.yaml"))
    assert g.node("head").shape == (2, 64, 64)
    assert g.node("up2").shape == (32, 32, 32)
