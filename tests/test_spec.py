"""Loading specs: block-library imports (relative, nested, cycles, missing, clashes) and the zoo."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import archspec
from archspec.errors import ArchspecError, SpecError
from archspec.spec import load, loads, resolve_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """Write {relative path: YAML text} under a temporary folder that is also the working directory."""
    monkeypatch.chdir(tmp_path)

    def write(files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return write


def messages(source) -> list[str]:
    return [str(p) for p in archspec.validate(source)]


LIB_RELU = """
archspec: 1
blocks:
  unit:
    params: {c: int}
    body: [{conv2d: {out: $c, kernel: 3, padding: 1}}, relu]
"""


# ---------------------------------------------------------------- imports


def test_relative_import(tree):
    tree({
        "nets/main.yaml": """
            archspec: 1
            imports: [../lib/units.yaml]
            input: [3, 8, 8]
            layers: [{unit: {c: 4}}, {unit: {c: 8}}]
        """,
        "lib/units.yaml": LIB_RELU,
    })
    spec = load("nets/main.yaml")
    assert set(spec.blocks) == {"unit"}
    assert [d.file for d in spec.documents] == ["nets/main.yaml", "lib/units.yaml"]
    g = archspec.expand(spec)
    assert [n.path for n in g.nodes] == ["unit1.conv1", "unit1.relu1", "unit2.conv1", "unit2.relu1"]
    # a node keeps the place it was written: in the library
    assert str(g.node("unit2.conv1").location) == "lib/units.yaml:5:12"


def test_imports_resolve_against_the_importing_file_not_the_working_directory(tree, monkeypatch):
    root = tree({
        "nets/main.yaml": """
            archspec: 1
            imports: [units.yaml]
            input: [3, 8, 8]
            layers: [{unit: {c: 4}}]
        """,
        "nets/units.yaml": LIB_RELU,
    })
    monkeypatch.chdir(root / "nets" / "..")
    assert messages("nets/main.yaml") == []
    monkeypatch.chdir("/")
    assert messages(root / "nets" / "main.yaml") == []


def test_nested_imports(tree):
    tree({
        "main.yaml": """
            archspec: 1
            imports: [lib/stage.yaml]
            input: [3, 8, 8]
            layers: [{stage: {c: 4}}]
        """,
        "lib/stage.yaml": """
            archspec: 1
            imports: [parts/unit.yaml]
            blocks:
              stage:
                params: {c: int}
                body: [{unit: {c: $c}}, {unit: {c: "${c * 2}"}}]
        """,
        "lib/parts/unit.yaml": LIB_RELU,
    })
    spec = load("main.yaml")
    assert set(spec.blocks) == {"stage", "unit"}
    assert [d.file for d in spec.documents] == ["main.yaml", "lib/stage.yaml", "lib/parts/unit.yaml"]
    g = archspec.expand(spec)
    assert g.node("stage1.unit2.conv1").shape == (8, 8, 8)


def test_a_library_imported_twice_is_read_once(tree):
    tree({
        "main.yaml": """
            archspec: 1
            imports: [a.yaml, b.yaml]
            input: [3, 8, 8]
            layers: [{unit: {c: 4}}, a_block, b_block]
        """,
        "a.yaml": "archspec: 1\nimports: [units.yaml]\nblocks:\n  a_block:\n    body: [relu]\n",
        "b.yaml": "archspec: 1\nimports: [units.yaml]\nblocks:\n  b_block:\n    body: [relu]\n",
        "units.yaml": LIB_RELU,
    })
    spec = load("main.yaml")
    assert [d.file for d in spec.documents] == ["main.yaml", "a.yaml", "units.yaml", "b.yaml"]
    assert messages("main.yaml") == []


def test_import_cycle_is_refused_naming_the_chain(tree):
    tree({
        "main.yaml": "archspec: 1\nimports: [lib/a.yaml]\ninput: [3, 8, 8]\nlayers: [relu]\n",
        "lib/a.yaml": "archspec: 1\nimports: [b.yaml]\nblocks:\n  a:\n    body: [relu]\n",
        "lib/b.yaml": "archspec: 1\nimports: [a.yaml]\nblocks:\n  b:\n    body: [relu]\n",
    })
    with pytest.raises(SpecError) as info:
        load("main.yaml")
    assert str(info.value) == ("lib/b.yaml:2:11: error: import cycle: main.yaml -> lib/a.yaml -> lib/b.yaml "
                               "-> lib/a.yaml")
    assert messages("main.yaml") == [str(info.value)]


def test_a_file_importing_itself(tree):
    tree({"main.yaml": "archspec: 1\nimports: [main.yaml]\ninput: [3, 8, 8]\nlayers: [relu]\n"})
    assert messages("main.yaml") == ["main.yaml:2:11: error: import cycle: main.yaml -> main.yaml"]


def test_missing_import_is_located(tree):
    tree({"main.yaml": "archspec: 1\ninput: [3, 8, 8]\nimports:\n  - lib/units.yaml\n  - lib/nope.yaml\n"
                       "layers: [relu]\n",
          "lib/units.yaml": LIB_RELU})
    assert messages("main.yaml") == [
        "main.yaml:5:5: error: cannot import 'lib/nope.yaml': no such file (lib/nope.yaml)"]


def test_a_block_defined_in_two_files(tree):
    tree({
        "main.yaml": """
            archspec: 1
            imports: [lib/one.yaml, lib/two.yaml]
            input: [3, 8, 8]
            layers: [relu]
        """,
        "lib/one.yaml": LIB_RELU,
        "lib/two.yaml": LIB_RELU,
    })
    assert messages("main.yaml") == [
        "lib/two.yaml:3:3: error: block 'unit' is defined twice (also at lib/one.yaml:3:3)"]


def test_a_block_defined_in_the_spec_and_a_library(tree):
    tree({
        "main.yaml": """
            archspec: 1
            imports: [units.yaml]
            input: [3, 8, 8]
            blocks:
              unit:
                body: [relu]
            layers: [unit]
        """,
        "units.yaml": LIB_RELU,
    })
    assert messages("main.yaml") == [
        "main.yaml:5:3: error: block 'unit' is defined twice (also at units.yaml:3:3)"]


def test_mistakes_inside_a_library_are_located_in_the_library(tree):
    tree({
        "main.yaml": "archspec: 1\nimports: [units.yaml]\ninput: [3, 8, 8]\nlayers: [{unit: {c: 4}}]\n",
        "units.yaml": """
            archspec: 1
            blocks:
              unit:
                params: {c: int}
                body: [{conv2d: {out: $c, kernel: 3, paddin: 1}}]
        """,
    })
    assert messages("main.yaml") == [
        "units.yaml:5:42: error: unknown key 'paddin' in conv2d (did you mean 'padding'?); expected one of out, "
        "kernel, stride, padding, dilation, groups, bias, weights"]


def test_yaml_error_inside_a_library(tree):
    tree({"main.yaml": "archspec: 1\nimports: [units.yaml]\ninput: [3, 8, 8]\nlayers: [relu]\n",
          "units.yaml": "archspec: 1\nblocks: {unit: {body: [relu}}\n"})
    problems = messages("main.yaml")
    assert len(problems) == 1 and problems[0].startswith("units.yaml:2:")
    assert "YAML syntax" in problems[0]


def test_imports_of_text_resolve_against_base_dir(tree):
    root = tree({"lib/units.yaml": LIB_RELU})
    text = "archspec: 1\nimports: [lib/units.yaml]\ninput: [3, 8, 8]\nlayers: [{unit: {c: 2}}]\n"
    spec = loads(text, "inline.yaml", base_dir=root)
    assert set(spec.blocks) == {"unit"}
    assert archspec.validate(spec) == []


# ---------------------------------------------------------------- the zoo


@pytest.mark.parametrize("name", ["vgg16", "vgg16.yaml"])
def test_zoo_lookup_from_another_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path(name) == (ROOT / "specs" / "vgg16.yaml").resolve()
    spec = load(name)
    assert spec.name == "vgg16"
    assert archspec.validate(name) == []
    assert archspec.summarize(name).totals.params == 138_357_544


def test_zoo_lookup_through_the_cli(invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("validate", "vgg16.yaml")
    assert (result.exit_code, result.stdout) == (0, "vgg16.yaml: ok\n")


def test_a_local_file_wins_over_the_zoo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vgg16.yaml").write_text("archspec: 1\nname: mine\ninput: [3, 8, 8]\nlayers: [relu]\n")
    assert load("vgg16.yaml").name == "mine"
    assert archspec.summarize("vgg16.yaml").totals.params == 0


def test_a_path_is_never_looked_up_in_the_zoo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArchspecError) as info:
        load("nets/vgg16.yaml")
    assert str(info.value) == "nets/vgg16.yaml: error: no such file, and no zoo spec of that name (did you mean 'vgg16'?)"


@pytest.mark.parametrize("name, suggestion", [("alexnt", "alexnet"), ("vgg16_bm.yaml", "vgg16_bn")])
def test_unknown_name_suggests_a_zoo_spec(name, suggestion, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert messages(name) == [f"{name}: error: no such file, and no zoo spec of that name "
                              f"(did you mean '{suggestion}'?)"]


def test_unknown_name_without_a_close_match(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert messages("zzzzzz.yaml") == ["zzzzzz.yaml: error: no such file, and no zoo spec of that name"]


def test_a_directory_is_not_a_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets").mkdir()
    assert messages("nets") == ["nets: error: not a file"]


def test_load_accepts_a_loaded_spec_and_a_path_object(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\nlayers: [relu]\n")
    spec = load(path)
    assert load(spec) is spec
    assert spec.file == str(path) and spec.name == "s"
    assert archspec.expand(spec).output == "relu1"



# ---------------------------------------------------------------- bundled block libraries


def _resnet50_layout(stage_args: str) -> str:
    """ResNet-50's layout importing the bundled library by name; stage_args adds to each stage."""
    stages = "".join(
        f"  - {{bottleneck_stage: {{c: {c}, n: {n}, stride: {s}{stage_args}}}, name: layer{k}}}\n"
        for k, (c, n, s) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1))
    return ("archspec: 1\ninput: [3, 224, 224]\nimports: [resnet]\nlayers:\n"
            "  - {conv2d: {out: 64, kernel: 7, stride: 2, padding: 3, bias: false}, name: conv1}\n"
            "  - {batchnorm2d: {}, name: bn1}\n  - relu\n  - {maxpool2d: {kernel: 3, stride: 2, padding: 1}}\n"
            + stages + "  - global_avgpool\n  - {linear: {out: 1000}, name: fc}\n")


@pytest.mark.parametrize("stage_args, params, gmacs", [
    # torchvision's published figures (the model pages of torchvision.models): parameters, GFLOPS
    ("", 25_557_032, 4.09),  # resnet50
    (", groups: 32, width_per_group: 4", 25_028_904, 4.23),  # resnext50_32x4d
    (", width_per_group: 128", 68_883_240, 11.4),  # wide_resnet50_2
])
def test_the_bundled_resnet_library_imports_by_name_from_anywhere(tmp_path, monkeypatch, stage_args, params, gmacs):
    monkeypatch.chdir(tmp_path)  # no lib/ folder here: the name finds the library shipped with the package
    path = tmp_path / "net.yaml"
    path.write_text(_resnet50_layout(stage_args), encoding="utf-8")
    totals = archspec.summarize(str(path)).totals
    assert totals.params == params
    assert round(totals.macs / 1e9, 2 if gmacs < 10 else 1) == gmacs


def test_a_local_file_wins_over_a_bundled_library_of_the_same_name(tmp_path):
    (tmp_path / "resnet").write_text("archspec: 1\nblocks:\n  mine:\n    body: [relu]\n", encoding="utf-8")
    path = tmp_path / "net.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\nimports: [resnet]\nlayers: [mine]\n", encoding="utf-8")
    assert archspec.validate(str(path)) == []


def test_an_unknown_library_name_lists_the_bundled_ones(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\nimports: [resnt]\nlayers: [relu]\n", encoding="utf-8")
    [problem] = archspec.validate(str(path))
    assert problem.message.startswith("cannot import 'resnt': no such file (")
    assert problem.message.endswith("and no bundled library of that name (did you mean 'resnet'?)")
