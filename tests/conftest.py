"""Shared fixtures: a CLI runner, spec files written from text, and golden-file comparison.

Rewrite golden files with ``python -m pytest --update-golden`` after an intended change.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_folder(tmp_path_factory):
    """The command line remembers valid documents (archspec/validity.py): in the tests' own folder,
    never the user's ~/.cache; subprocesses inherit the variable."""
    import os

    previous = os.environ.get("ARCHSPEC_CACHE_DIR")
    os.environ["ARCHSPEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("ARCHSPEC_CACHE_DIR", None)
    else:
        os.environ["ARCHSPEC_CACHE_DIR"] = previous


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the archspec CLI in-process: invoke("summary", "vgg16.yaml") -> click Result."""
    from archspec.cli import main

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def spec_file(tmp_path):
    """Write a spec (dedented YAML text) to a file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def golden(request):
    """golden("name.txt", text): compare with tests/golden/name.txt, or rewrite it with --update-golden."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"missing golden file {path}; create it with pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"

    return check
