"""Valid documents remembered between command-line runs: a pure cache that never hides a problem."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archspec import schema, validity
from archspec.spec import load

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
archspec: 1
name: tiny
input: [1, 8, 8]
layers:
  - conv2d: {out: 4, kernel: 3}
  - relu
"""


@pytest.fixture
def remembered(tmp_path, monkeypatch):
    """The on-disk memory switched on, in a folder of its own, for this test only."""
    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(validity, "_store", None)
    validity.remember_between_runs()
    return validity.store()


def problems_of(path: Path):
    return [p for document in load(str(path)).documents for p in schema.check_document(document)]


def test_a_valid_document_is_remembered_and_a_broken_one_never(remembered, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(GOOD)
    assert problems_of(spec) == []
    assert len(remembered._load()) == 1

    spec.write_text(GOOD.replace("kernel: 3", "kernal: 3"))  # the edit changes the digest
    first, second = problems_of(spec), problems_of(spec)
    assert first and [str(p) for p in first] == [str(p) for p in second]
    assert any("kernal" in str(p) for p in first)
    assert len(remembered._load()) == 1


def test_the_schema_is_part_of_the_digest():
    data = {"name": "x", "input": [1, 2, 2], "layers": ["relu"]}
    assert validity.digest("schema one", data) != validity.digest("schema two", data)
    assert validity.digest("s", data) == validity.digest("s", dict(reversed(list(data.items()))))
    assert validity.digest("s", {"a": 1}) != validity.digest("s", {"a": 1.0}) != validity.digest("s", {"a": True})
    assert validity.digest("s", {1: "a", "b": 2}) is None  # keys JSON cannot order: not remembered


def test_the_memory_keeps_a_bounded_number_of_digests(tmp_path):
    store = validity.KnownValid(tmp_path / "v.txt")
    for i in range(validity.KEEP + 40):
        store.add(f"{i:064x}")
    again = validity.KnownValid(tmp_path / "v.txt")
    assert len(again._load()) == validity.KEEP
    assert f"{validity.KEEP + 39:064x}" in again and f"{0:064x}" not in again


@pytest.mark.parametrize("kind", ["binary", "huge", "folder", "fifo", "foreign text"])
def test_a_file_that_is_not_ours_is_ignored(tmp_path, kind):
    path = tmp_path / "v.txt"
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "huge":
        path.write_text(f"{1:064x}\n" * (validity.KEEP * 4))
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this platform")
        os.mkfifo(path)  # opening it for reading would block: it must not be opened
    else:
        path.write_text("root:x:0:0:root:/root:/bin/bash\n" + f"{7:064x}\n")
    store = validity.KnownValid(path)
    assert f"{1:064x}" not in store
    if kind == "foreign text":
        assert store._load() == [f"{7:064x}"]  # only well-formed digests count


def test_a_folder_that_cannot_be_written_only_costs_the_check(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = validity.KnownValid(blocker / "sub" / "v.txt")
    store.add(f"{3:064x}")  # no exception, nothing written
    assert not (blocker / "sub").exists()


def test_an_empty_setting_turns_it_off(monkeypatch):
    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", "")
    assert validity.default_path() is None
    monkeypatch.delenv("ARCHSPEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert validity.default_path() == Path("/somewhere/archspec") / validity.FILE_NAME


PROBE = textwrap.dedent("""
    import io, sys, contextlib
    from archspec.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(sys.argv[1:], standalone_mode=False)
    print(repr(("jsonschema" in sys.modules, rc, out.getvalue())))
""")


def run_cli(*args: str, cache: Path) -> tuple:
    env = dict(os.environ, ARCHSPEC_CACHE_DIR=str(cache))
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])


def test_the_second_run_of_an_unchanged_spec_does_not_import_jsonschema(tmp_path):
    first = run_cli("summary", "specs/resnet18.yaml", cache=tmp_path)
    second = run_cli("summary", "specs/resnet18.yaml", cache=tmp_path)  # resnet18 imports a block library
    assert first[0] is True and second[0] is False
    assert first[1:] == second[1:] and "11,689,512" in second[2]
