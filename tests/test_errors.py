"""The broken-spec corpus: every file in tests/broken/ states the exact messages `archspec validate`
must print for it, as comment lines at its top (a file with warnings only is valid: exit code 0):

    # expect: broken/unknown_arg.yaml:5:34: error: unknown key 'strides' in conv2d ...

Paths in messages are relative to tests/, where the CLI runs (so they read as a user would see
them). Each message's line numbers count the expect lines themselves. The test asserts exit code 1,
exactly those lines on stderr, in that order, nothing on stdout and no traceback.

Command-line mistakes (exit code 2) and the `<file>: ok` of a valid spec are checked below.
"""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BROKEN = TESTS / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))
EXPECT = "# expect: "

# Every kind of mistake the corpus must cover, and the file that covers it.
REQUIRED = {
    "YAML syntax error": "yaml_syntax.yaml",
    "unknown top-level key (did you mean)": "unknown_top_key.yaml",
    "unknown layer argument (did you mean)": "unknown_arg.yaml",
    "wrong type": "wrong_type.yaml",
    "missing required argument": "missing_arg.yaml",
    "bad enum value (did you mean)": "bad_enum.yaml",
    "unknown layer type (did you mean)": "unknown_layer.yaml",
    "undefined from: name": "undefined_from.yaml",
    "forward reference (a cycle)": "forward_reference.yaml",
    "undefined expression name": "undefined_expression_name.yaml",
    "concat of different shapes": "concat_shapes.yaml",
    "add of different shapes": "add_shapes.yaml",
    "residual without projection": "residual_without_projection.yaml",
    "kernel larger than padded input": "kernel_too_large.yaml",
    "zero or negative size": "zero_size.yaml",
    "linear on a 4-D tensor": "linear_without_flatten.yaml",
    "groups not dividing channels": "groups_not_dividing.yaml",
    "absurd tensor size": "absurd_size.yaml",
    "repeat count too big": "repeat_too_big.yaml",
    "recursive block": "recursive_block.yaml",
    "block parameter missing": "block_param_missing.yaml",
    "block parameter unknown": "block_param_unknown.yaml",
    "block parameter of the wrong type": "block_param_type.yaml",
    "import cycle": "import_cycle.yaml",
    "duplicate key": "duplicate_key.yaml",
    "alias bomb": "alias_bomb.yaml",
    "several mistakes in one file": "several_mistakes.yaml",
}


def expected(path: Path) -> list[str]:
    return [line[len(EXPECT):] for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(EXPECT)]


@pytest.fixture
def in_tests(monkeypatch):
    monkeypatch.chdir(TESTS)


def test_corpus_is_complete():
    names = {p.name for p in CORPUS}
    assert len(CORPUS) >= 25
    missing = {what: name for what, name in REQUIRED.items() if name not in names}
    assert not missing
    for path in CORPUS:
        assert expected(path), f"{path.name} states no '# expect:' line"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_broken_spec(path: Path, invoke, in_tests):
    result = invoke("validate", f"broken/{path.name}")
    lines = expected(path)
    if any(": error: " in line for line in lines):
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
    else:  # only warnings: valid, and said to be
        assert result.exit_code == 0, result.output
        assert result.stdout == f"broken/{path.name}: ok\n"
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == lines


def test_several_mistakes_are_reported_at_once_in_line_order():
    lines = expected(BROKEN / "several_mistakes.yaml")
    assert len(lines) >= 5
    positions = [tuple(int(n) for n in line.split(": ")[0].split(":")[1:3]) for line in lines]
    assert positions == sorted(positions)


def test_api_reports_the_same_problems(in_tests):
    import archspec

    for name in ("several_mistakes.yaml", "zero_size.yaml", "unknown_layer.yaml"):
        problems = archspec.validate(f"broken/{name}")
        assert [str(p) for p in problems] == expected(BROKEN / name)


def test_several_files_in_one_call(invoke, in_tests, tmp_path):
    result = invoke("validate", "broken/wrong_type.yaml", "../specs/vgg16.yaml", "broken/bad_enum.yaml")
    assert result.exit_code == 1
    assert result.stdout == "../specs/vgg16.yaml: ok\n"
    assert result.stderr.splitlines() == expected(BROKEN / "wrong_type.yaml") + expected(BROKEN / "bad_enum.yaml")


# ---------------------------------------------------------------- valid specs


def test_valid_spec_prints_ok(invoke, in_tests):
    result = invoke("validate", "../specs/vgg16.yaml")
    assert result.exit_code == 0
    assert result.stdout == "../specs/vgg16.yaml: ok\n"
    assert result.stderr == ""


def test_valid_spec_from_the_zoo_prints_ok(invoke):
    result = invoke("validate", "vgg16.yaml")
    assert result.exit_code == 0
    assert result.stdout == "vgg16.yaml: ok\n"


def test_valid_inline_spec_prints_ok(invoke, spec_file):
    path = spec_file("""
        archspec: 1
        input: [3, 8, 8]
        layers: [{conv2d: {out: 4, kernel: 3}}, relu]
    """)
    result = invoke("validate", str(path))
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{path}: ok\n", "")


def test_set_override_applies_to_validate(invoke, in_tests):
    assert invoke("validate", "../specs/vgg16.yaml", "--set", "classes=10").exit_code == 0


# ---------------------------------------------------------------- command-line mistakes: exit code 2


def test_unknown_option(invoke):
    result = invoke("validate", "--frobnicate", "vgg16.yaml")
    assert result.exit_code == 2
    assert "No such option" in result.stderr and "--frobnicate" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_command(invoke):
    result = invoke("validat", "vgg16.yaml")
    assert result.exit_code == 2
    assert "No such command 'validat'" in result.stderr


def test_missing_argument(invoke):
    result = invoke("validate")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_set_of_an_unknown_parameter(invoke):
    result = invoke("validate", "vgg16.yaml", "--set", "clases=10")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == ("error: --set clases: the spec has no parameter 'clases' (did you mean 'classes'?); "
                             "its parameters are classes\n")


def test_set_of_a_wrong_type(invoke):
    result = invoke("summary", "vgg16.yaml", "--set", "classes=many")
    assert result.exit_code == 2
    assert result.stderr == "error: --set classes: expected a number like the default 1000, found 'many'\n"


def test_set_without_equals(invoke):
    result = invoke("validate", "vgg16.yaml", "--set", "classes")
    assert result.exit_code == 2
    assert result.stderr == "error: --set expects name=value, found 'classes'\n"


def test_batch_zero(invoke):
    result = invoke("summary", "vgg16.yaml", "--batch", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--batch'" in result.stderr
    assert "Traceback" not in result.output


def test_missing_file_is_a_spec_error_not_a_traceback(invoke, in_tests):
    result = invoke("validate", "broken/no_such_spec.yaml")
    assert result.exit_code == 1
    assert result.stderr == "broken/no_such_spec.yaml: error: no such file, and no zoo spec of that name\n"


def test_summary_of_a_broken_spec_exits_1_with_the_same_messages(invoke, in_tests):
    result = invoke("summary", "broken/several_mistakes.yaml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected(BROKEN / "several_mistakes.yaml")
