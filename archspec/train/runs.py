"""A run folder: everything one training run leaves behind, each file written atomically.

``runs/NAME/`` holds config.yaml (the resolved options), spec/ (a copy of the spec and its
imports as trained), metrics.csv (one row per epoch), curves.png, confusion.png,
best.safetensors and last.safetensors (weights, with the classes and normalisation in their
metadata), checkpoint.safetensors (for --resume) and report.json (the test report).

A run folder is born whole: its first files (config, spec copy, a checkpoint of the state before
the first epoch) are written into a draft folder beside it, which one rename makes the run
folder. The rename fails if another run took the name first, so two runs started at once never
share a folder, and a run killed at any moment either left no folder or one ``--resume`` takes
up. A new run never overwrites an earlier one: it takes the next free NAME-2, NAME-3...
While a process trains in a folder it holds the lock on its ``run.lock``.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ArchspecError, Location, UsageError
from ..files import atomic_write, read_regular, remove_stale_temporaries

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "time_s",
                  "images_per_s")
RUN_FILES = ("config.yaml", "metrics.csv", "checkpoint.safetensors", "last.safetensors", "best.safetensors")
LOCK = "run.lock"
SPEC_COPY = "spec"
MAX_CONFIG_BYTES = 1 << 20
_TAKEN = {errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR}


def folder_name(name: str) -> str:
    """A spec's name as one harmless path component: never '..', never a separator, never hidden."""
    safe = re.sub(r"[^\w.+-]+", "_", name, flags=re.ASCII).strip("._") or "run"
    return safe[:100]


def fresh_folder(wanted: Path) -> Path:
    """``wanted``, or the first of wanted-2, wanted-3... that holds no earlier run (a guess: see ``create``)."""
    candidate, n = wanted, 1
    while candidate.exists() and any((candidate / f).exists() for f in RUN_FILES):
        n += 1
        candidate = wanted.with_name(f"{wanted.name}-{n}")
    return candidate


def folder_of_launch(wanted: Path, launch_id: str) -> Path | None:
    """The run folder (``wanted`` or wanted-N) that a launch with this id started, if there is one.

    Restarted workers (torchrun --max-restarts) and a job started again after preemption carry
    the same id, and continue that run instead of opening a new folder.
    """
    candidate, n = wanted, 1
    while candidate.exists():
        config = candidate / "config.yaml"
        if config.exists():
            import yaml

            try:
                with open(config, encoding="utf-8") as f:
                    saved = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError):
                saved = {}
            if isinstance(saved, dict) and (saved.get("launch") or {}).get("id") == launch_id:
                return candidate
        n += 1
        candidate = wanted.with_name(f"{wanted.name}-{n}")
    return None


def _write_text(path: Path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_write(path, write)


@dataclass
class Run:
    folder: Path
    _lock_fd: int | None = field(default=None, repr=False)

    def path(self, name: str) -> Path:
        return self.folder / name

    # --------------------------------------------------------------- birth, lock, clean-up

    @classmethod
    def create(cls, wanted: Path, fill: Callable[["Run"], None]) -> "Run":
        """Make the run folder ``wanted`` (or wanted-2, -3...) whole: ``fill`` writes its first files
        into a locked draft beside it, and one atomic rename puts the draft in place."""
        wanted = Path(wanted)
        parent = wanted.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale_drafts(parent)
            draft = cls(Path(tempfile.mkdtemp(dir=parent, prefix=f".{wanted.name}.", suffix=".tmp")))
        except OSError as exc:
            raise ArchspecError(f"cannot create the run folder: {exc.strerror}", Location(str(wanted))) from None
        try:
            draft.lock()
            fill(draft)
            candidate, n = wanted, 1
            while True:
                try:
                    os.rename(draft.folder, candidate)  # fails if another run holds the name
                    draft.folder = candidate
                    return draft
                except OSError as exc:
                    if exc.errno not in _TAKEN:
                        raise ArchspecError(f"cannot create the run folder: {exc.strerror}",
                                            Location(str(candidate))) from None
                n += 1
                candidate = wanted.with_name(f"{wanted.name}-{n}")
        except BaseException:
            shutil.rmtree(draft.folder, ignore_errors=True)
            draft.unlock()
            raise

    def lock(self) -> None:
        """Hold this folder's lock for the life of the process; refuse if another process holds it."""
        import fcntl

        fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UsageError("another archspec process is training in this run folder now",
                             Location(str(self.folder))) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clean(self) -> list[Path]:
        """Remove what interrupted writes left behind (call while holding the lock)."""
        return remove_stale_temporaries(self.folder)

    # --------------------------------------------------------------- the spec as trained

    def copy_spec(self, spec) -> str:
        """Copy the spec's documents into spec/, keeping their relative places so imports still resolve;
        returns the copy of the main document, relative to the run folder."""
        import yaml

        documents = [d for d in spec.documents if d.path is not None]
        if spec.document.path is None:  # a spec given as text: its data is all there is
            target = self.path(SPEC_COPY) / f"{folder_name(spec.name)}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_text(target, yaml.safe_dump(spec.document.data, sort_keys=False, allow_unicode=True))
            main = target
        else:
            root = Path(os.path.commonpath([d.path.parent for d in documents]))
            main = None
            for document in documents:
                target = self.path(SPEC_COPY) / document.path.relative_to(root)
                data = read_regular(document.path, MAX_CONFIG_BYTES, "spec")
                atomic_write(target, lambda tmp, data=data: Path(tmp).write_bytes(data))
                if document is spec.document:
                    main = target
        return str(main.relative_to(self.folder))

    def spec_digests(self) -> dict[str, str]:
        """sha256 of every file of the spec copy, by its path inside spec/."""
        root = self.path(SPEC_COPY)
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    # --------------------------------------------------------------- config

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        _write_text(self.path("config.yaml"), yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def read_config(self) -> dict[str, Any]:
        """config.yaml, checked: a regular file of YAML whose spec, params and train options make sense."""
        from ..loader import parse_yaml

        path = self.path("config.yaml")
        where = Location(str(path))
        raw = read_regular(path, MAX_CONFIG_BYTES, "run config")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ArchspecError("this run config is not UTF-8 text", where) from None
        document = parse_yaml(text, str(path))
        data = document.data
        if not isinstance(data, dict):
            raise ArchspecError("this run config is not a table of settings (was it written by archspec train?)",
                                where)
        for key, kind, label in (("spec", str, "a path"), ("params", dict, "a table"), ("train", dict, "a table")):
            if not isinstance(data.get(key), kind):
                raise ArchspecError(f"'{key}' should be {label}", document.locate((key,)))
        copy = data.get("spec_copy")
        if copy is not None:
            inside = isinstance(copy, str) and not Path(copy).is_absolute() and ".." not in Path(copy).parts
            if not inside or not (self.folder / copy).is_file():
                raise ArchspecError("'spec_copy' should name the spec's copy inside this run folder",
                                    document.locate(("spec_copy",)))
        return data

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in METRIC_COLUMNS})
        _write_text(self.path("metrics.csv"), buffer.getvalue())

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        _write_text(self.path(name), json.dumps(data, indent=2, allow_nan=False) + "\n")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def remove_stale_drafts(parent: Path, older_than_s: float = 60.0) -> list[Path]:
    """Remove draft run folders (``.NAME.xxxx.tmp``) whose process died before renaming them:
    a live draft's lock is held (and a draft younger than a minute may not have taken it yet)."""
    import fcntl
    import time

    removed = []
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_dir()
                   and time.time() - e.stat().st_mtime >= older_than_s]
    except OSError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry / LOCK, os.O_RDWR)
        except OSError:
            continue  # not one of ours, or already gone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its process is still writing it
        finally:
            os.close(fd)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """metrics.csv back as rows of numbers (empty cells as None)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: (None if v == "" else int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]
