"""archspec.data.sources: the table of data sources, and everything generated from it."""
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.data import sources
from archspec.errors import ArchspecError

ROOT = Path(__file__).resolve().parent.parent


def test_docs_show_the_table():
    assert sources.markdown_table() in (ROOT / "docs" / "data.md").read_text(encoding="utf-8")


def test_every_listed_form_is_in_the_help_the_schema_and_the_message(tmp_path):
    from archspec.train.config import train_schema

    help_text = sources.help_text()
    description = train_schema()["properties"]["data"]["description"]
    with pytest.raises(ArchspecError) as info:
        sources.find(str(tmp_path / "nothing-here"))
    for row in sources.SOURCES:
        if row.listed:
            assert row.syntax in help_text and row.syntax in description and row.syntax in str(info.value)


def test_rows_are_found_by_their_forms(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(b"")
    cases = {"digits": "digits", "synthetic": "synthetic", "synthetic:10:2": "synthetic",
             f"mnist:{tmp_path}": "mnist", f"fashion-mnist:{tmp_path}": "fashion-mnist",
             f"emnist-letters:{tmp_path}": "emnist", f"cifar100-coarse:{tmp_path}": "cifar100-coarse",
             f"cifar100:{tmp_path}": "cifar100", "list.csv": "csv", str(tmp_path): "cifar10-folder"}
    for value, name in cases.items():
        assert sources.find(value)[0].name == name, value


def test_the_table_imports_no_reader_and_no_torch():
    code = ("import sys; from archspec.data import sources; sources.help_text(); sources.find('digits');"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('archspec.data.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['archspec.data.sources']"


def test_every_opener_exists():
    import importlib

    for row in sources.SOURCES:
        for reference in filter(None, (row.opener, row.has_test)):
            module, name = reference.split(":")
            assert callable(getattr(importlib.import_module(module), name)), reference
