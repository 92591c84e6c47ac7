"""The spec language, Spec -> Graph: wiring, names, repeats, parallel branches, residuals, blocks,
parameters and overrides, and the messages of its mistakes."""
from __future__ import annotations

import textwrap

import pytest

import archspec
from archspec.errors import UsageError
from shared_specs import RESNET_BASIC_BLOCK

HEAD = "archspec: 1\ninput: [3, 32, 32]\n"

BASIC = "\narchspec: 1\ninput: [64, 56, 56]\n" + RESNET_BASIC_BLOCK + "layers:\n"


def spec(text: str) -> archspec.Spec:
    return archspec.loads(textwrap.dedent(text).lstrip("\n"), "s.yaml")


def graph(text: str, **params) -> archspec.Graph:
    return archspec.expand(spec(text), params)


def messages(text: str) -> list[str]:
    return [str(p) for p in archspec.validate(spec(text))]


def paths(g: archspec.Graph) -> list[str]:
    return [n.path for n in g.nodes]


def wiring(g: archspec.Graph) -> dict[str, list[str]]:
    return {n.path: n.inputs for n in g.nodes}


# ---------------------------------------------------------------- sequential wiring and auto names


def test_sequential_wiring_and_auto_names():
    g = graph(HEAD + """
layers:
  - conv2d: {out: 16, kernel: 3, padding: 1}
  - batchnorm2d
  - relu
  - conv2d: {out: 32, kernel: 3, stride: 2, padding: 1}
  - batchnorm2d
  - relu
  - flatten
  - linear: {out: 10}
""")
    assert wiring(g) == {
        "conv1": ["input"], "bn1": ["conv1"], "relu1": ["bn1"],
        "conv2": ["relu1"], "bn2": ["conv2"], "relu2": ["bn2"],
        "flatten1": ["relu2"], "fc1": ["flatten1"],
    }
    assert [n.shape for n in g.nodes][-3:] == [(32, 16, 16), (8192,), (10,)]
    assert g.output == "fc1"
    assert g.node("conv2").location == archspec.Location("s.yaml", 8, 5)


def test_aliases_share_their_layer_counter():
    g = graph(HEAD + "layers: [{conv: {out: 4, kernel: 1}}, {conv2d: {out: 4, kernel: 1}}, flatten, "
                     "{fc: {out: 3}}, {dense: {out: 2}}]\n")
    assert paths(g) == ["conv1", "conv2", "flatten1", "fc1", "fc2"]
    assert {n.type for n in g.nodes} == {"conv2d", "flatten", "linear"}


def test_explicit_names_and_auto_names_skip_taken_ones():
    g = graph(HEAD + """
layers:
  - conv2d: {out: 8, kernel: 1}
    name: conv2
  - conv2d: {out: 8, kernel: 1}
  - conv2d: {out: 8, kernel: 1}
  - relu
    """)
    assert paths(g) == ["conv2", "conv1", "conv3", "relu1"]


def test_block_whose_name_ends_in_a_digit_numbers_with_an_underscore():
    g = graph(HEAD + """
blocks:
  conv3:
    body: [{conv2d: {out: 8, kernel: 3, padding: 1}}, relu]
  stage:
    body: [{conv2d: {out: 8, kernel: 3, padding: 1}}, relu]
layers: [conv3, conv3, stage, stage]
""")
    assert paths(g) == ["conv3_1.conv1", "conv3_1.relu1", "conv3_2.conv1", "conv3_2.relu1",
                        "stage1.conv1", "stage1.relu1", "stage2.conv1", "stage2.relu1"]
    assert g.groups["conv3_2"].kind == "block" and g.groups["conv3_2"].label == "conv3"


def test_duplicate_names_are_refused_with_the_first_place():
    assert messages(HEAD + """
layers:
  - conv2d: {out: 8, kernel: 1}
    name: stem
  - relu
  - conv2d: {out: 8, kernel: 1}
    name: stem
""") == ["s.yaml:9:11: error: name 'stem' is used twice in the same namespace (first at s.yaml:6:11); "
         "names are unique within a spec, a block, a branch or a copy of a named repeat"]


@pytest.mark.parametrize("name, message", [
    ("1conv", "name '1conv' is not a valid name: use letters, digits and _, not starting with a digit, "
                       "with single hyphens between them (as torchvision's block1-0), or a number alone "
                       "(as torchvision's features.0)"),
    ("a.b", "name 'a.b' is not a valid name: use letters, digits and _, not starting with a digit, "
                       "with single hyphens between them (as torchvision's block1-0), or a number alone "
                       "(as torchvision's features.0)"),
    ("input", "'input' is reserved for the input of a block or spec"),
    ("class", "name 'class' is not a valid name: use letters, digits and _, not starting with a digit, "
                       "with single hyphens between them (as torchvision's block1-0), or a number alone "
                       "(as torchvision's features.0)"),
])
def test_invalid_names(name, message):
    assert messages(HEAD + f"layers:\n  - relu\n  - {{relu: , name: {name}}}\n") == [f"s.yaml:5:20: error: {message}"]


# ---------------------------------------------------------------- from: graphs


def test_from_a_name_a_list_and_input():
    g = graph(HEAD + """
layers:
  - conv2d: {out: 8, kernel: 3, padding: 1}
    name: a
  - conv2d: {out: 16, kernel: 1}
    from: input
    name: b
  - concat:
    from: [a, b, input]
  - conv2d: {out: 8, kernel: 1}
    name: c
  - add:
    from: [a, c]
""")
    assert wiring(g) == {"a": ["input"], "b": ["input"], "concat1": ["a", "b", "input"],
                         "c": ["concat1"], "add1": ["a", "c"]}
    assert g.node("concat1").shape == (27, 32, 32)
    assert g.node("add1").shape == (8, 32, 32)


def test_from_input_inside_a_block_is_the_block_input():
    g = graph(HEAD + """
blocks:
  twice:
    body:
      - conv2d: {out: 3, kernel: 1}
      - add:
        from: [conv1, input]
layers: [relu, twice]
""")
    assert wiring(g)["twice1.add1"] == ["twice1.conv1", "relu1"]


def test_block_bodies_do_not_see_the_callers_names():
    assert messages(HEAD + """
blocks:
  peek:
    body:
      - add:
        from: [input, outside]
layers:
  - relu
    """.rstrip() + "\n  - {relu: , name: outside}\n  - peek\n") == [
        "s.yaml:8:23: error: peek1: from: undefined name 'outside'"]


def test_undefined_from_name_suggests_a_close_one():
    assert messages(HEAD + """
layers:
  - {conv2d: {out: 8, kernel: 1}, name: stem}
  - {relu: , from: steam}
""") == ["s.yaml:6:20: error: relu1: from: undefined name 'steam' (did you mean 'stem'?)"]


def test_forward_reference_is_refused_as_a_cycle():
    assert messages(HEAD + """
layers:
  - {relu: , name: a, from: b}
  - {relu: , name: b, from: a}
""") == ["s.yaml:5:29: error: a: from: undefined name 'b' (inputs must come from earlier items, "
         "so graphs cannot have cycles)"]


def test_merge_needs_two_inputs():
    assert messages(HEAD + "layers:\n  - relu\n  - add\n") == [
        "s.yaml:5:5: error: add1: add takes at least 2 inputs, found 1: name them with from: [a, b]"]


def test_single_input_layer_given_two():
    assert messages(HEAD + "layers:\n  - {relu: , name: a}\n  - {relu: , from: [a, input]}\n") == [
        "s.yaml:5:5: error: relu1: relu takes 1 input, found 2"]


# ---------------------------------------------------------------- repeat


def test_unnamed_repeat_is_written_out_in_place():
    g = graph(HEAD + """
layers:
  - repeat: 3
    body:
      - conv2d: {out: 8, kernel: 3, padding: 1}
      - relu
  - flatten
""")
    assert paths(g) == ["conv1", "relu1", "conv2", "relu2", "conv3", "relu3", "flatten1"]
    assert wiring(g)["conv2"] == ["relu1"]


def test_named_repeat_numbers_its_copies():
    g = graph(HEAD + """
layers:
  - repeat: 2
    name: layer1
    body:
      - conv2d: {out: 8, kernel: 3, padding: 1}
      - relu
""")
    assert paths(g) == ["layer1.0.conv1", "layer1.0.relu1", "layer1.1.conv1", "layer1.1.relu1"]
    assert wiring(g)["layer1.1.conv1"] == ["layer1.0.relu1"]
    assert g.groups["layer1"].kind == "repeat" and g.groups["layer1.1"].kind == "iteration"


def test_named_repeat_of_a_block_gives_torchvision_paths():
    g = graph(BASIC + """
  - repeat: 2
    name: layer1
    body:
      - basic: {c: 64}
""")
    assert "layer1.0.conv1" in paths(g) and "layer1.1.bn2" in paths(g)
    assert g.groups["layer1.0"].kind == "block"


def test_repeat_index():
    g = graph(HEAD + """
layers:
  - repeat: 3
    body:
      - conv2d: {out: "${8 * (i + 1)}", kernel: 3, stride: "${2 if i == 0 else 1}", padding: 1}
""")
    assert [(n.args["out"], n.args["stride"]) for n in g.nodes] == [(8, (2, 2)), (16, (1, 1)), (24, (1, 1))]
    assert [n.shape for n in g.nodes] == [(8, 16, 16), (16, 16, 16), (24, 16, 16)]


def test_repeat_index_with_another_name_and_nested_repeats():
    g = graph(HEAD + """
layers:
  - repeat: 2
    index: s
    name: stage
    body:
      - repeat: 2
        body:
          - conv2d: {out: "${10 * s + i + 1}", kernel: 1}
""")
    assert [(n.path, n.args["out"]) for n in g.nodes] == [
        # each copy's body is one item, the inner repeat, so the copy *is* that repeat: stage.0.1
        ("stage.0.0", 1), ("stage.0.1", 2), ("stage.1.0", 11), ("stage.1.1", 12)]


def test_repeat_zero_times_is_the_identity():
    g = graph(HEAD + "layers:\n  - repeat: 0\n    body: [relu]\n  - flatten\n")
    assert wiring(g) == {"flatten1": ["input"]}


def test_names_inside_an_unnamed_repeat_collide():
    assert messages(HEAD + """
layers:
  - repeat: 2
    body:
      - {conv2d: {out: 8, kernel: 1}, name: c}
""") == ["s.yaml:7:45: error: name 'c' is used twice in the same block (inside an unnamed repeat, every copy "
         "shares one namespace: name the repeat)"]


@pytest.mark.parametrize("count, message", [
    ("-1", "repeat: expected an integer >= 0, found -1"),
    ("20000", "repeat: 20,000 copies is more than the 10,000 archspec allows"),
    ("'${1.5}'", "repeat: expected a count >= 0, found 1.5"),
])
def test_bad_repeat_counts(count, message):
    problems = messages(HEAD + f"layers:\n  - repeat: {count}\n    body: [relu]\n")
    assert problems and problems[-1] == f"s.yaml:4:13: error: {message}"


# ---------------------------------------------------------------- parallel


def test_parallel_concat_adds_channels_and_names_branches():
    g = graph(HEAD + """
layers:
  - parallel:
      - [{conv2d: {out: 8, kernel: 1}}]
      - [{conv2d: {out: 4, kernel: 1}}, {conv2d: {out: 16, kernel: 3, padding: 1}}]
      - name: pool
        body: [{maxpool2d: {kernel: 3, stride: 1, padding: 1}}, {conv2d: {out: 2, kernel: 1}}]
""")
    assert paths(g) == ["parallel1.branch1", "parallel1.branch2.conv1", "parallel1.branch2.conv2",
                        "parallel1.pool.pool1", "parallel1.pool.conv1", "parallel1.concat"]
    assert g.node("parallel1.concat").inputs == ["parallel1.branch1", "parallel1.branch2.conv2",
                                                 "parallel1.pool.conv1"]
    assert g.node("parallel1.concat").shape == (8 + 16 + 2, 32, 32)
    assert {g.groups[p].kind for p in ("parallel1", "parallel1.branch2", "parallel1.pool")} == {"parallel", "branch"}


def test_parallel_add_and_a_named_parallel():
    g = graph(HEAD + """
layers:
  - parallel:
      - [{conv2d: {out: 8, kernel: 1}}]
      - [{conv2d: {out: 8, kernel: 3, padding: 1}}]
    merge: add
    name: mix
  - relu
""")
    assert paths(g) == ["mix.branch1", "mix.branch2", "mix.add", "relu1"]
    assert g.node("mix.add").type == "add" and g.node("mix.add").shape == (8, 32, 32)
    assert wiring(g)["relu1"] == ["mix.add"]


def test_parallel_branch_may_be_a_single_layer_and_an_empty_branch_is_the_input():
    g = graph(HEAD + "layers:\n  - parallel:\n      - {conv2d: {out: 5, kernel: 1}}\n      - []\n")
    assert g.node("parallel1.concat").inputs == ["parallel1.branch1", "input"]
    assert g.node("parallel1.concat").shape == (8, 32, 32)


def test_parallel_concat_of_different_sizes():
    assert messages(HEAD + """
layers:
  - parallel:
      - [{conv2d: {out: 8, kernel: 1}}]
      - [{conv2d: {out: 8, kernel: 3}}]
""") == ["s.yaml:5:5: error: parallel1.concat: inputs differ in shape outside axis 0: 8×32×32, 8×30×30"]


def test_parallel_add_of_different_channels():
    assert messages(HEAD + """
layers:
  - parallel:
      - [{conv2d: {out: 8, kernel: 1}}]
      - [{conv2d: {out: 4, kernel: 1}}]
    merge: add
""") == ["s.yaml:5:5: error: parallel1.add: inputs differ in shape: 8×32×32, 4×32×32"]


def test_single_item_namespaces_collapse():
    g = graph(HEAD + """
blocks:
  unit:
    body: [{conv2d: {out: 8, kernel: 1}}]
  wrap:
    body: [unit]
layers:
  - unit
  - {unit: , name: named}
  - wrap
  - repeat: 2
    name: rep
    body: [relu]
""")
    assert paths(g) == ["unit1", "named", "wrap1", "rep.0", "rep.1"]


# ---------------------------------------------------------------- residual


def test_residual_without_shape_change_has_no_downsample():
    g = graph(BASIC + "  - {basic: {c: 64}, name: block}\n")
    assert paths(g) == ["block.conv1", "block.bn1", "block.relu1", "block.conv2", "block.bn2", "block.add1",
                        "block.relu2"]
    assert not [p for p in paths(g) if "downsample" in p]
    assert g.node("block.add1").inputs == ["block.bn2", "input"]


def test_residual_with_stride_2_has_a_projection_shortcut():
    g = graph(BASIC + "  - {basic: {c: 128, stride: 2}, name: block}\n")
    assert [p for p in paths(g) if "downsample" in p] == ["block.downsample.conv1", "block.downsample.bn1"]
    assert g.node("block.downsample.conv1").inputs == ["input"]
    assert g.node("block.downsample.conv1").args["stride"] == (2, 2)
    assert g.node("block.add1").inputs == ["block.bn2", "block.downsample.bn1"]
    assert g.node("block.add1").shape == (128, 28, 28)
    assert g.groups["block.downsample"].kind == "shortcut"


def test_resnet_stage_projects_only_its_first_block():
    g = graph(BASIC + """
  - repeat: 3
    name: layer2
    body:
      - basic: {c: 128, stride: "${2 if i == 0 else 1}"}
""")
    assert sorted({p.split(".")[1] for p in paths(g) if "downsample" in p}) == ["0"]
    assert g.node("layer2.2.add1").shape == (128, 28, 28)


def test_channel_change_alone_also_takes_the_projection():
    g = graph(BASIC + "  - {basic: {c: 32}, name: block}\n")
    assert "block.downsample.conv1" in paths(g)


def test_residual_without_shortcut_whose_shape_changes():
    assert messages("""
archspec: 1
input: [64, 56, 56]
layers:
  - relu
  - residual:
      - conv2d: {out: 128, kernel: 3, stride: 2, padding: 1}
      - relu
""") == ["s.yaml:5:5: error: add1: inputs differ in shape: main is 128×28×28, shortcut is 64×56×56 "
         "(did you forget a shortcut: a projection with stride 2? Or shortcut: none, for a connection only where the shape is unchanged)"]


def test_residual_without_shortcut_whose_channels_change():
    assert messages("""
archspec: 1
input: [64, 56, 56]
layers:
  - residual:
      - conv2d: {out: 128, kernel: 1}
""") == ["s.yaml:4:5: error: add1: inputs differ in shape: main is 128×56×56, shortcut is 64×56×56 "
         "(did you forget a shortcut: a projection to the main path's shape? Or shortcut: none, for a connection only where the shape is unchanged)"]


def test_residual_whose_projection_is_wrong():
    assert messages("""
archspec: 1
input: [64, 56, 56]
layers:
  - residual:
      - conv2d: {out: 128, kernel: 3, stride: 2, padding: 1}
    shortcut:
      - conv2d: {out: 128, kernel: 1}
""") == ["s.yaml:4:5: error: add1: inputs differ in shape: main is 128×28×28, shortcut is 128×56×56 "
         "(the shortcut's projection does not produce the main path's shape)"]


def test_two_residuals_in_one_namespace_number_their_shortcuts():
    g = graph("""
archspec: 1
input: [8, 16, 16]
layers:
  - residual: [{conv2d: {out: 16, kernel: 1}}]
    shortcut: [{conv2d: {out: 16, kernel: 1}}]
  - residual: [{conv2d: {out: 32, kernel: 1}}]
    shortcut: [{conv2d: {out: 32, kernel: 1}}]
""")
    assert paths(g) == ["conv1", "downsample.conv1", "add1", "conv2", "downsample2.conv1", "add2"]


# ---------------------------------------------------------------- block parameters


BLOCKS = HEAD + """
blocks:
  unit:
    params:
      c: int
      stride: 1
      act: {type: str, default: relu, doc: the activation}
      scale: {type: float, default: 1.0}
    body:
      - conv2d: {out: $c, kernel: 3, stride: $stride, padding: 1}
      - {relu: , name: act_relu}
layers:
"""


def test_block_params_required_defaults_and_long_form():
    g = graph(BLOCKS + "  - unit: {c: 16}\n  - unit: {c: 32, stride: 2, scale: 2}\n")
    assert [(n.path, n.shape) for n in g.nodes] == [
        ("unit1.conv1", (16, 32, 32)), ("unit1.act_relu", (16, 32, 32)),
        ("unit2.conv1", (32, 16, 16)), ("unit2.act_relu", (32, 16, 16))]


def test_block_param_arguments_may_be_expressions_of_the_callers_params():
    g = graph(BLOCKS.replace("input: [3, 32, 32]\n", "input: [3, 32, 32]\nparams: {width: 8}\n")
              + "  - unit: {c: '${width * 4}'}\n")
    assert g.node("unit1.conv1").shape == (32, 32, 32)


@pytest.mark.parametrize("call, message", [
    ("unit: {stride: 2}", "s.yaml:15:5: error: unit1: block 'unit' needs parameter 'c' (int)"),
    ("unit", "s.yaml:15:5: error: unit1: block 'unit' needs parameter 'c' (int)"),
    ("unit: {c: 8, strid: 2}",
     "s.yaml:15:18: error: unit1: block 'unit' has no parameter 'strid' (did you mean 'stride'?); "
     "it takes c, stride, act, scale"),
    ("unit: {c: wide}", "s.yaml:15:15: error: unit1: block 'unit' parameter 'c': expected int, found 'wide'"),
    ("unit: {c: 8, stride: 1.5}",
     "s.yaml:15:26: error: unit1: block 'unit' parameter 'stride': expected int, found 1.5"),
    ("unit: {c: true}", "s.yaml:15:15: error: unit1: block 'unit' parameter 'c': expected int, found True"),
    ("unit: {c: 8, act: 3}", "s.yaml:15:23: error: unit1: block 'unit' parameter 'act': expected str, found 3"),
    ("unit: {c: 8, scale: x}",
     "s.yaml:15:25: error: unit1: block 'unit' parameter 'scale': expected float, found 'x'"),
    ("unit: 16", "s.yaml:15:11: error: unit1: unit: expected a mapping of block parameters, found 16"),
])
def test_block_param_mistakes(call, message):
    assert messages(BLOCKS + f"  - {call}\n") == [message]


def test_block_takes_no_parameters():
    assert messages(HEAD + "blocks:\n  b:\n    body: [relu]\nlayers:\n  - b: {c: 1}\n") == [
        "s.yaml:7:9: error: b1: block 'b' has no parameter 'c'; it takes none"]


def test_block_body_reads_spec_params():
    g = graph(HEAD + """
params: {width: 12}
blocks:
  b:
    body: [{conv2d: {out: $width, kernel: 1}}]
layers: [b]
""", width=20)
    assert g.node("b1").shape == (20, 32, 32)


def test_undefined_name_in_a_block_lists_what_is_defined():
    assert messages(BLOCKS + "  - unit: {c: 8}\n".replace("unit: {c: 8}", "unit: {c: '${c}'}")) == [
        "s.yaml:15:15: error: unit1: undefined name 'c' in '${c}'; no parameters are defined here"]


def test_recursive_blocks_are_refused():
    assert messages(HEAD + """
blocks:
  a:
    body: [relu, b]
  b:
    body: [a]
  self:
    body: [self]
layers: [a, {self: , from: input}]
""") == ["s.yaml:8:12: error: a1.b1: block 'a' calls itself (a -> b -> a)",
         "s.yaml:10:12: error: self1: block 'self' calls itself (self -> self)"]


def test_deep_but_finite_block_chains_are_refused_not_crashing():
    chain = "".join(f"  b{k}:\n    body: [b{k - 1}]\n" for k in range(1, 400))
    problems = archspec.validate(spec(HEAD + "blocks:\n  b0:\n    body: [relu]\n" + chain + "layers: [b399]\n"))
    assert len(problems) == 1
    assert "nest more than 100 deep here; archspec refuses it" in problems[0].message


def test_exponential_blocks_are_refused_after_bounded_work(monkeypatch):
    # 2**39 layers if unrolled: the expander must stop at its limit, so the nodes it builds are
    # bounded by that limit (work counted, not timed)
    from archspec import graph

    built = [0]
    init = graph.Node.__init__

    def counting(self, *args, **kwargs):
        built[0] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(graph.Node, "__init__", counting)
    chain = "".join(f"  b{k}:\n    body: [b{k - 1}, b{k - 1}]\n" for k in range(1, 40))
    text = HEAD + "blocks:\n  b0:\n    body: [relu]\n" + chain + "layers: [b39]\n"
    problems = archspec.validate(spec(text))
    assert built[0] <= 100_002
    assert [p.message for p in problems] == ["the spec expands to more than 100,000 layers; archspec refuses it"]


# ---------------------------------------------------------------- spec params and overrides


SMALL = HEAD + """
params: {classes: 1000, width: 16, mid: "${width * 2}"}
layers:
  - conv2d: {out: $width, kernel: 3, padding: 1}
  - conv2d: {out: $mid, kernel: 1}
  - global_avgpool
  - linear: {out: $classes}
"""


def test_spec_params_and_overrides(spec_file):
    path = spec_file(SMALL)
    default = archspec.summarize(path)
    small = archspec.summarize(path, classes=10)
    assert default.rows[-1].output_shape == (1000,)
    assert small.rows[-1].output_shape == (10,)
    assert default.totals.params - small.totals.params == 990 * (32 + 1)


def test_params_may_refer_to_earlier_params_and_see_overrides():
    g = graph(SMALL, width=8)
    assert g.node("conv2").shape == (16, 32, 32)
    assert g.params == {"classes": 1000, "width": 8, "mid": 16}


def test_unknown_override_is_a_usage_error(spec_file):
    path = spec_file(SMALL)
    with pytest.raises(UsageError) as info:
        archspec.summarize(path, clases=10)
    assert str(info.value) == ("error: --set clases: the spec has no parameter 'clases' (did you mean 'classes'?); "
                               "its parameters are classes, width, mid")
    with pytest.raises(UsageError):
        archspec.validate(path, {"nope": 1})


def test_override_of_the_wrong_type_is_a_usage_error():
    with pytest.raises(UsageError, match="expected a number like the default 1000, found 'ten'"):
        graph(SMALL, classes="ten")


def test_override_on_a_spec_without_params():
    with pytest.raises(UsageError, match="it declares none"):
        graph(HEAD + "layers: [relu]\n", classes=3)


def test_parse_overrides():
    from archspec.expand import parse_overrides

    assert parse_overrides(["classes=10", "width=0.5", "name=wide", "flag=true", "empty="]) == {
        "classes": 10, "width": 0.5, "name": "wide", "flag": True, "empty": ""}
    with pytest.raises(UsageError):
        parse_overrides(["classes"])
    with pytest.raises(UsageError):
        parse_overrides(["x=[1, 2]"])


def test_input_may_use_params():
    g = graph("archspec: 1\nparams: {size: 64}\ninput: [3, $size, $size]\nlayers: [relu]\n", size=96)
    assert g.input_shape == (3, 96, 96)


def test_input_made_zero_by_a_param_is_located_at_the_dimension():
    assert messages("archspec: 1\nparams: {size: 64}\ninput: [3, $size, 8]\nlayers: [relu]\n".replace(
        "size: 64", "size: 0")) == ["s.yaml:3:12: error: input: expected an integer >= 1, found 0"]


# ---------------------------------------------------------------- trainable


def test_trainable_false_is_counted_as_non_trainable(spec_file):
    path = spec_file(HEAD + """
blocks:
  stem:
    body:
      - conv2d: {out: 8, kernel: 3}
      - batchnorm2d
layers:
  - {stem: , trainable: false}
  - conv2d: {out: 4, kernel: 1}
""")
    g = archspec.expand(path)
    assert {n.path: n.trainable for n in g.nodes} == {"stem1.conv1": False, "stem1.bn1": False, "conv1": True}
    totals = archspec.summarize(path).totals
    frozen = 3 * 3 * 3 * 8 + 8 + 2 * 8
    assert totals.non_trainable_params == frozen
    assert totals.trainable_params == 8 * 4 + 4
    assert totals.params == frozen + 36


def test_trainable_must_be_a_boolean():
    problems = messages(HEAD + "layers:\n  - {relu: , trainable: no way}\n")
    assert problems == ["s.yaml:4:25: error: expected true or false, found string 'no way'"]


# ---------------------------------------------------------------- item shapes and layer mistakes


@pytest.mark.parametrize("item, message", [
    ("{}", "s.yaml:4:5: error: expected a layer (a name, or a mapping like {conv2d: {out: 64, kernel: 3}}), "
           "found an empty mapping"),
    ("{name: x}", "s.yaml:4:5: error: item names no layer type or block"),
    ("{relu: , dropout: {p: 0.1}}",
     "s.yaml:4:14: error: unexpected key 'dropout' beside 'relu'; an item has one layer or block key plus doc, "
     "from, if, init, name, trainable"),
    ("reul", "s.yaml:4:5: error: unknown layer type or block 'reul' (did you mean 'relu', which computes max(0, x)?)"),
    ("{conv2d: {out: 8, kernal: 3}}",
     "s.yaml:4:14: error: conv2d needs 'kernel' (window size: an integer or [height, width])\n"
     "s.yaml:4:23: error: unknown key 'kernal' in conv2d (did you mean 'kernel'?); expected one of out, kernel, "
     "stride, padding, dilation, groups, bias, weights"),
    ("{linear: {out: 10}}", "s.yaml:4:5: error: fc1: linear expects a flat input (features,), found 3×32×32: "
                            "add a flatten (or a global pooling) before it"),
    ("{conv2d: {out: 8, kernel: 40}}",
     "s.yaml:4:5: error: conv1: kernel 40×40 is larger than its padded input 32×32 (input 3×32×32)"),
    ("{conv2d: {out: 8, kernel: 3, groups: 2}}",
     "s.yaml:4:5: error: conv1: groups=2 must divide both the input channels (3) and out (8)"),
    ("{conv2d: {out: 100000000, kernel: 1}}",
     "s.yaml:4:5: error: conv1: tensor of 100000000×32×32 per sample is absurdly large; archspec refuses it"),
])
def test_item_mistakes(item, message):
    assert messages(HEAD + f"layers:\n  - {item}\n") == message.split("\n")


def test_a_failed_layer_does_not_cascade():
    problems = messages(HEAD + """
layers:
  - conv2d: {out: 8, kernel: 99}
  - conv2d: {out: 8, kernel: 3}
  - flatten
  - linear: {out: 10}
""")
    assert len(problems) == 1 and "kernel 99×99" in problems[0]


def test_a_mistake_inside_a_repeated_block_is_reported_once():
    problems = messages(HEAD + """
blocks:
  b:
    body: [{conv2d: {out: 8, kernel: 3, groups: 3}}]
layers:
  - repeat: 5
    body: [b]
""")
    assert len(problems) == 1


def test_graph_output_and_metadata():
    g = graph(HEAD + "name: tiny\ndoc: a test\nlayers: [relu, flatten]\n")
    assert (g.name, g.doc, g.output, g.input_shape, g.file) == ("tiny", "a test", "flatten1", (3, 32, 32), "s.yaml")


def test_vgg16_expands():
    g = archspec.expand("vgg16.yaml")
    assert len([n for n in g.nodes if n.type == "conv2d"]) == 13
    assert g.node("block1.conv1").shape == (64, 224, 224)
    assert g.node("block5.pool1").shape == (512, 7, 7)
    assert g.node("fc3").shape == (1000,)


# ---------------------------------------------------------------- warnings: valid, likely not meant


@pytest.mark.parametrize("shape, meant", [
    ((32, 32, 3), (3, 32, 32)), ((28, 28, 1), (1, 28, 28)), ((224, 224, 3), (3, 224, 224)), ((64, 64, 4), (4, 64, 64)),
    ((3, 224, 224), None), ((64, 8, 8), None), ((512, 7, 7), None), ((4, 4, 3), None), ((32, 32, 5), None),
    ((784,), None), ((3, 32), None),
])
def test_a_channels_last_input_is_guessed_only_where_it_looks_like_an_image(shape, meant):
    from archspec.expand import channels_last_guess

    assert channels_last_guess(shape) == meant


KERAS_ORDER = """
    archspec: 1
    input: [$size, $size, 3]
    params: {size: 32}
    layers: [{conv2d: {out: 4, kernel: 3}}, flatten, {linear: {out: 2}}]
"""


def test_a_channels_last_input_is_a_warning_not_an_error():
    from archspec.errors import SpecWarning

    with pytest.warns(SpecWarning) as caught:
        g = graph(KERAS_ORDER)
    assert g.input_shape == (32, 32, 3)  # taken as written
    assert [str(w) for w in g.warnings] == [
        "s.yaml:2:8: warning: input [32, 32, 3] is read as 32 channels of 32×3 (the order is C, H, W, as in PyTorch, "
        "not Keras' H, W, C); did you mean [3, 32, 32]?"]
    assert [w.message.problem for w in caught] == g.warnings
    with pytest.warns(SpecWarning):
        assert messages(KERAS_ORDER) == []  # valid
    assert graph(KERAS_ORDER, size=4).warnings == []  # [4, 4, 3] is no image


def test_warnings_come_with_the_errors_in_file_order():
    from archspec.errors import SpecError

    with pytest.raises(SpecError) as info:
        graph(KERAS_ORDER.replace("kernel: 3", "kernel: 5"))
    problems = info.value.problems
    assert [p.severity for p in problems] == ["warning", "error"]
    assert info.value.problem is problems[1]  # the first error is the error
    assert "kernel 5×5 is larger than its padded input 32×3" in problems[1].message
