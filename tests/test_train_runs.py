"""Run folders: born whole by one rename, never shared, locked while trained, their config read with checks."""
from __future__ import annotations

import os
import threading
import time

import pytest

from archspec.errors import ArchspecError, UsageError
from archspec.train.runs import Run, folder_name, remove_stale_drafts


def _fill(run: Run) -> None:
    run.write_config({"spec": "x.yaml", "params": {}, "train": {}, "who": threading.get_ident()})
    time.sleep(0.01)  # widen the window in which a check-then-create would let two runs share a name


def test_runs_started_at_once_never_share_a_folder(tmp_path):
    made: list[Run] = []
    threads = [threading.Thread(target=lambda: made.append(Run.create(tmp_path / "r", _fill))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.folder.name for r in made) == ["r", "r-2", "r-3", "r-4", "r-5", "r-6"]
    for run in made:  # each folder holds the config its own creator wrote
        assert run.read_config()["who"] in {t.ident for t in threads}
        run.unlock()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_empty_folder_given_as_out_is_taken(tmp_path):
    (tmp_path / "r").mkdir()
    run = Run.create(tmp_path / "r", _fill)
    assert run.folder == tmp_path / "r" and run.path("config.yaml").is_file()
    run.unlock()


def test_a_failed_birth_leaves_nothing(tmp_path):
    def fail(run):
        _fill(run)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Run.create(tmp_path / "r", fail)
    assert list(tmp_path.iterdir()) == []


def test_a_locked_folder_is_refused_and_released(tmp_path):
    run = Run.create(tmp_path / "r", _fill)
    with pytest.raises(UsageError, match="another archspec process is training"):
        Run(tmp_path / "r").lock()
    run.unlock()
    Run(tmp_path / "r").lock()


def test_abandoned_drafts_and_temporaries_are_removed(tmp_path):
    draft = tmp_path / ".r.abc123.tmp"
    draft.mkdir()
    (draft / "run.lock").touch()
    old = time.time() - 3600
    os.utime(draft, (old, old))
    young = tmp_path / ".q.abc123.tmp"
    young.mkdir()
    (young / "run.lock").touch()
    assert remove_stale_drafts(tmp_path) == [draft]
    assert young.exists()
    run = Run.create(tmp_path / "r", _fill)
    leftover = run.path(".checkpoint.safetensors.x1y2z3ab.tmp")
    leftover.write_bytes(b"half")
    assert run.clean() == [leftover] and not leftover.exists()
    run.unlock()


@pytest.mark.parametrize("name, folder", [
    ("../../../x", "x"), ("/tmp/x", "tmp_x"), ("..", "run"), ("", "run"), (".hidden", "hidden"),
    ("a b\x1b[31m", "a_b_31m"), ("resnet-18_v2.1", "resnet-18_v2.1"),
])
def test_a_spec_name_is_one_harmless_folder_name(name, folder):
    assert folder_name(name) == folder


@pytest.mark.parametrize("text, message", [
    ("- just\n- a list\n", "not a table of settings"),
    ("spec: 5\nparams: {}\ntrain: {}\n", "'spec' should be a path"),
    ("spec: x.yaml\nparams: []\ntrain: {}\n", "'params' should be a table"),
    ("spec: x.yaml\nparams: {}\ntrain: {}\nspec_copy: ../../etc/passwd\n", "'spec_copy' should name"),
    ("spec: x.yaml\nparams: {\n", "YAML syntax"),
    ("spec: x.yaml\x07\n", "not allowed in YAML text"),
])
def test_a_broken_run_config_is_one_message(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ArchspecError, match=message):
        Run(tmp_path).read_config()


def test_a_run_config_that_is_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "config.yaml")
    with pytest.raises(ArchspecError, match="not a regular file"):
        Run(tmp_path).read_config()
