"""A run folder: everything one training run leaves behind, each file written atomically.

``runs/NAME/`` holds config.yaml (the resolved options), metrics.csv (one row per epoch),
curves.png, confusion.png, best.safetensors and last.safetensors (weights, with the classes and
normalisation in their metadata), checkpoint.safetensors (for --resume) and report.json (the
test report). A new run never overwrites an earlier one: it takes the next free NAME-2, NAME-3...
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "time_s",
                  "images_per_s")
RUN_FILES = ("config.yaml", "metrics.csv", "checkpoint.safetensors", "last.safetensors", "best.safetensors")


def fresh_folder(wanted: Path) -> Path:
    """``wanted``, or the first of wanted-2, wanted-3... that holds no earlier run."""
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

    def path(self, name: str) -> Path:
        return self.folder / name

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        _write_text(self.path("config.yaml"), yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    def read_config(self) -> dict[str, Any]:
        import yaml

        with open(self.path("config.yaml"), encoding="utf-8") as f:
            return yaml.safe_load(f) or {}

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


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """metrics.csv back as rows of numbers (empty cells as None)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: (None if v == "" else int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]
