"""docs/layers.md is generated from the layer catalogue, and `archspec schema` writes it."""
from __future__ import annotations

import json
import re
from pathlib import Path

from archspec.layers import ALIASES, REGISTRY
from archspec.reference import REGENERATE, layers_markdown, schema_text
from archspec.schema import schema_json

ROOT = Path(__file__).resolve().parent.parent
LAYERS_MD = ROOT / "docs" / "layers.md"


def test_layers_md_is_the_generated_text():
    committed = LAYERS_MD.read_text(encoding="utf-8") if LAYERS_MD.exists() else ""
    assert committed == layers_markdown(), (
        f"docs/layers.md is out of date with the layer catalogue; regenerate it with `{REGENERATE}`")


def test_every_type_and_alias_is_documented():
    text = layers_markdown()
    headings = set(re.findall(r"^### `([a-z0-9_]+)`$", text, flags=re.M))
    assert headings == set(REGISTRY)
    for alias, target in ALIASES.items():
        assert f"| `{alias}` | [`{target}`](#{target}) |" in text
        section = text.split(f"### `{target}`", 1)[1].split("\n### ", 1)[0]
        assert f"`{alias}`" in section, f"alias {alias} missing from the {target} section"


def test_every_argument_is_in_its_table():
    text = layers_markdown()
    for name, layer in REGISTRY.items():
        section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        for arg in layer.args:
            assert f"| `{arg}` |" in section, f"{name}.{arg} missing"
        if layer.args:
            assert "| argument | kind | default | description |" in section
        assert f"**Auto name:** `{layer.stem}`" in section
        assert "**Saved for backward:**" in section and "(could not be probed)" not in section
        assert "**Example:**" in section


def test_kind_text_comes_from_the_schema():
    assert schema_text({"type": "integer", "minimum": 1}) == "integer ≥ 1"
    assert schema_text({"type": "number", "minimum": 0, "maximum": 1}) == "number in [0, 1]"
    assert schema_text({"enum": ["floor", "ceil"]}) == "`floor`, `ceil`"
    pair = {"oneOf": [{"type": "integer", "minimum": 1},
                      {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}]}
    assert schema_text(pair) == "integer ≥ 1 or a list of 2 × integer ≥ 1"


def test_generation_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys; from archspec.reference import layers_markdown; layers_markdown(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_schema_command_formats(invoke, tmp_path):
    result = invoke("schema", "--format", "markdown")
    assert result.exit_code == 0
    assert result.output == layers_markdown()
    default = invoke("schema")
    assert default.exit_code == 0 and default.output == schema_json()
    json.loads(default.output)
    assert invoke("schema", "--format", "json").output == schema_json()
    out = tmp_path / "layers.md"
    result = invoke("schema", "-f", "markdown", "-o", str(out))
    assert result.exit_code == 0 and result.output == ""
    assert out.read_text(encoding="utf-8") == layers_markdown()


def test_schema_command_refuses_an_unknown_format(invoke):
    result = invoke("schema", "--format", "html")
    assert result.exit_code == 2


def test_tutorial_shows_what_the_tool_prints(invoke, monkeypatch, tmp_path):
    """Every `$ archspec ... vgg16.yaml ...` block of docs/tutorial-vgg.md is the command's real output."""
    import shlex

    monkeypatch.chdir(tmp_path)  # vgg16.yaml is the bundled spec
    monkeypatch.setenv("COLUMNS", "160")
    text = (ROOT / "docs" / "tutorial-vgg.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n\$ (archspec summary vgg16\.yaml[^\n]*)\n(.*?)\n```", text, flags=re.S)
    assert len(blocks) >= 4
    for command, shown in blocks:
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code == 0, command
        printed = "\n".join(line.rstrip() for line in result.output.rstrip("\n").splitlines())
        assert printed == shown, (
            f"docs/tutorial-vgg.md shows an out-of-date output of `{command}`: run it and paste its "
            "output (trailing spaces trimmed), then check the figures quoted in the prose")


def test_tutorial_quotes_the_current_vgg16_spec():
    spec = (ROOT / "specs" / "vgg16.yaml").read_text(encoding="utf-8").rstrip("\n")
    assert spec in (ROOT / "docs" / "tutorial-vgg.md").read_text(encoding="utf-8"), (
        "specs/vgg16.yaml changed: update its copy in docs/tutorial-vgg.md (section 4)")


def test_spec_language_opening_example_is_valid(tmp_path):
    import archspec

    text = (ROOT / "docs" / "spec-language.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)\n```", text, flags=re.S).group(1)
    path = tmp_path / "small.yaml"
    path.write_text(example + "\n", encoding="utf-8")
    assert archspec.validate(path) == []
