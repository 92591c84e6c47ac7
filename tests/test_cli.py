"""The archspec command line: every summary format and option, validate, schema, zoo, exit codes
(0 ok, 1 spec wrong, 2 command line wrong), errors on stderr without tracebacks, and pipes."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VGG16 = str(ROOT / "specs" / "vgg16.yaml")
ARCHSPEC = str(Path(sys.executable).parent / "archspec")

SMALL = """
archspec: 1
name: small
input: [1, 28, 28]
params: {classes: 10, width: 16}
layers:
  - conv2d: {out: $width, kernel: 3}
  - relu
  - maxpool2d: {kernel: 2}
  - flatten
  - linear: {out: $classes}
"""

BROKEN = """
archspec: 1
input: [3, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 9}
  - relu
  - linear: {out: 3}
"""


@pytest.fixture
def small(spec_file):
    return str(spec_file(SMALL, "small.yaml"))


@pytest.fixture
def broken(spec_file):
    return str(spec_file(BROKEN, "broken.yaml"))


def no_traceback(result):
    assert "Traceback" not in result.output and "Traceback" not in result.stderr


# ------------------------------------------------------------------ summary


def test_summary_table(invoke):
    r = invoke("summary", VGG16)
    assert r.exit_code == 0, r.output
    assert "138,357,544" in r.stdout and "15.47 GMACs" in r.stdout and "30.94 GFLOPs" in r.stdout
    assert "block5.pool1" in r.stdout and r.stderr == ""


def test_summary_markdown(invoke, small):
    r = invoke("summary", small, "--format", "markdown")
    assert r.exit_code == 0
    assert r.stdout.startswith("**small**")
    assert "| conv1 | conv2d 3×3, 16 | 16×26×26 | 160 |" in r.stdout


def test_summary_csv(invoke, small):
    r = invoke("summary", small, "-f", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["path"] for row in rows] == ["conv1", "relu1", "pool1", "flatten1", "fc1"]
    assert rows[-1]["params"] == str(16 * 13 * 13 * 10 + 10)


def test_summary_json_parses_with_documented_keys(invoke, small):
    r = invoke("summary", small, "--format", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert {"name", "input", "batch", "dtype", "layers", "totals"} <= set(d)
    for layer in d["layers"]:
        assert {"path", "type", "output_shape", "params", "trainable", "activations", "macs",
                "receptive_field"} <= set(layer)
    assert {"params", "trainable_params", "param_bytes", "activation_bytes", "saved_bytes", "macs",
            "training_bytes"} <= set(d["totals"])
    assert d["name"] == "small" and d["input"] == [1, 28, 28]


def json_summary(invoke, *args):
    r = invoke("summary", *args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_explain(invoke):
    r = invoke("summary", VGG16, "--explain")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "INPUT: [224x224x3] memory: 224*224*3=150K weights: 0"
    assert any("FC: [1x1x4096] memory: 4096 weights: 7*7*512*4096 = 102,760,448" in line for line in lines)


def test_depth(invoke):
    d = json_summary(invoke, VGG16, "--depth", "0")
    assert [row["path"] for row in d["layers"]][:6] == ["block1", "block2", "block3", "block4", "block5", "avgpool1"]
    assert d["depth"] == 0
    table = invoke("summary", VGG16, "-d", "0").stdout
    assert "stage 5 layers" in table and "block1.conv1" not in table


def test_batch(invoke, small):
    one, eight = json_summary(invoke, small), json_summary(invoke, small, "--batch", "8")
    assert eight["batch"] == 8
    assert eight["totals"]["macs"] == 8 * one["totals"]["macs"]
    assert eight["totals"]["params"] == one["totals"]["params"]
    assert "batch 8" in invoke("summary", small, "-b", "8").stdout


def test_dtype(invoke, small):
    d32, d16 = json_summary(invoke, small), json_summary(invoke, small, "--dtype", "float16")
    assert d16["dtype"] == "float16"
    assert 2 * d16["totals"]["param_bytes"] == d32["totals"]["param_bytes"]


def test_optimizer(invoke, small):
    sgd, adam = json_summary(invoke, small, "--optimizer", "sgd"), json_summary(invoke, small, "--optimizer", "adam")
    assert sgd["totals"]["optimizer_bytes"] == 0
    assert adam["totals"]["optimizer_bytes"] == 2 * adam["totals"]["param_bytes"]
    assert "Optimizer state (momentum)" in invoke("summary", small, "--optimizer", "momentum").stdout


def test_set(invoke, small):
    d = json_summary(invoke, small, "--set", "classes=3", "--set", "width=8")
    assert d["layers"][-1]["output_shape"] == [3]
    assert d["layers"][0]["output_shape"] == [8, 26, 26]
    zoo = json_summary(invoke, "vgg16.yaml", "--set", "classes=10")  # a zoo spec by name
    assert zoo["layers"][-1]["params"] == 4096 * 10 + 10


# ------------------------------------------------------------------ validate, schema, zoo


def test_validate_several_files(invoke, small):
    r = invoke("validate", small, VGG16)
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [f"{small}: ok", f"{VGG16}: ok"]


def test_validate_reports_each_problem_located(invoke, small, broken):
    r = invoke("validate", small, broken)
    assert r.exit_code == 1
    assert f"{small}: ok" in r.stdout
    assert "broken.yaml:4:5: error: conv1: kernel 9×9 is larger than its padded input 8×8" in r.stderr
    no_traceback(r)


def test_schema(invoke, tmp_path):
    from archspec.schema import schema_json

    r = invoke("schema")
    assert r.exit_code == 0
    assert r.stdout == schema_json()
    assert json.loads(r.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    out = tmp_path / "s.json"
    assert invoke("schema", "-o", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8") == schema_json()


def test_zoo(invoke):
    from archspec import zoo

    r = invoke("zoo")
    assert r.exit_code == 0
    names = zoo.names()
    assert "vgg16" in names
    for name in names:
        assert name in r.stdout
    assert "138,357,544" in r.stdout


# ------------------------------------------------------------------ exit codes and errors


@pytest.mark.parametrize("args, code, message", [
    (["summary", "nosuch.yaml"], 1, "no such file"),
    (["summary", "{broken}"], 1, "kernel 9×9 is larger"),
    (["validate", "{broken}"], 1, "broken.yaml:4:5: error"),
    (["summary", "{small}", "--set", "nope=3"], 2, "no parameter 'nope'"),
    (["summary", "{small}", "--set", "classes"], 2, "--set expects name=value"),
    (["summary", "{small}", "--batch", "0"], 2, "--batch"),
    (["summary", "{small}", "--dtype", "float8"], 2, "--dtype"),
    (["summary", "{small}", "--optimizer", "lion"], 2, "--optimizer"),
    (["summary", "{small}", "--format", "yaml"], 2, "--format"),
    (["summary"], 2, "Missing argument"),
    (["frobnicate"], 2, "No such command"),
])
def test_exit_codes_and_stderr(invoke, small, broken, args, code, message):
    args = [a.format(small=small, broken=broken) for a in args]
    r = invoke(*args)
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert r.stdout == ""
    no_traceback(r)


def test_yaml_syntax_error_is_located(invoke, spec_file):
    path = spec_file("archspec: 1\ninput: [3, 8, 8\nlayers: [relu]\n", "syntax.yaml")
    r = invoke("validate", str(path))
    assert r.exit_code == 1
    assert "syntax.yaml:" in r.stderr and "YAML" in r.stderr
    no_traceback(r)


def run(cmd: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=60)


def test_console_script_exit_codes(broken):
    ok = run(f"'{ARCHSPEC}' validate '{VGG16}'")
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = run(f"'{ARCHSPEC}' validate '{broken}'")
    assert bad.returncode == 1 and "error:" in bad.stderr and "Traceback" not in bad.stderr
    usage = run(f"'{ARCHSPEC}' summary '{VGG16}' --batch x")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


@pytest.mark.parametrize("flag", ["--format table", "--format csv", "--format markdown", "--format json",
                                  "--explain"])
def test_piping_into_head_does_not_crash(spec_file, flag):
    # 600 rows: far more than a pipe buffer holds, so head really closes the pipe mid-write
    big = spec_file("""
        archspec: 1
        input: [3, 8, 8]
        layers:
          - repeat: 600
            body: [relu]
    """, "big.yaml")
    r = run(f"'{ARCHSPEC}' summary '{big}' {flag} | head -3")
    assert len(r.stdout.splitlines()) == 3
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_piping_vgg16_into_head():
    r = run(f"'{ARCHSPEC}' summary '{VGG16}' | head -3")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3 and r.stderr == ""


# ------------------------------------------------------------------ warnings


def test_a_warning_is_printed_once_and_fails_nothing(invoke, spec_file, tmp_path):
    # the broken spec's layers, fixed, on an input in Keras' order
    text = BROKEN.replace("[3, 8, 8]", "[28, 28, 1]").replace("kernel: 9", "kernel: 1").replace("relu", "flatten")
    path = str(spec_file(text, "keras.yaml"))
    warning = f"{path}:2:8: warning: input [28, 28, 1] is read as 28 channels of 28×1"
    for args in (["validate", path], ["summary", path], ["summary", path, "--explain"],
                 ["draw", path, "-o", str(tmp_path / "k.svg")]):
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        no_traceback(r)
        assert [line for line in r.stderr.splitlines() if "warning" in line] == [
            line for line in r.stderr.splitlines() if line.startswith(warning)] and r.stderr.count(warning) == 1, args
    d = json_summary(invoke, path)
    assert d["warnings"] == [{"message": "input [28, 28, 1] is read as 28 channels of 28×1 (the order is C, H, W, as "
                                         "in PyTorch, not Keras' H, W, C); did you mean [1, 28, 28]?",
                              "location": f"{path}:2:8"}]
    assert json_summary(invoke, VGG16)["warnings"] == []
