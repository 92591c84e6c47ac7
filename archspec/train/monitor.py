"""Which epoch is best: one rule for the trainer, the terminal line, the curves' subtitle and the report.

The watched metric is early stopping's (``val_loss`` when there is none); lower is better for a
loss, higher for an accuracy; an improvement smaller than ``min_delta`` does not count. Without a
validation split the learning loss stands in, so the latest improving epoch is the best we know.
Torch-free, so plots and reports can replay the rule over metrics.csv.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Monitor:
    metric: str = "val_loss"
    min_delta: float = 0.0
    best_score: float | None = None  # lower is better (accuracies negated)
    best_epoch: int | None = None
    bad_epochs: int = 0  # epochs since the last improvement

    @classmethod
    def for_config(cls, config) -> "Monitor":
        es = config.early_stopping
        return cls(es.metric, es.min_delta) if es else cls()

    def watched(self, row: dict[str, Any]) -> tuple[str, float | None]:
        """The metric this row is judged by and its value (the learning loss without validation)."""
        value = _number(row.get(self.metric))
        if value is None:
            return "train_loss", _number(row.get("train_loss"))
        return self.metric, value

    def update(self, row: dict[str, Any]) -> bool:
        """Take one epoch's row; True when it is the best so far."""
        metric, value = self.watched(row)
        if value is None:
            self.bad_epochs += 1
            return False
        score = value if metric.endswith("loss") else -value
        if self.best_score is None or score < self.best_score - self.min_delta:
            self.best_score, self.best_epoch, self.bad_epochs = score, int(float(row["epoch"])), 0
            return True
        self.bad_epochs += 1
        return False


def _number(value) -> float | None:
    """A finite float from a row's cell (a number, or a string read back from metrics.csv), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def best_epoch(rows: list[dict[str, Any]], metric: str = "val_loss", min_delta: float = 0.0) -> int | None:
    """The best epoch of a whole history, by the rule the trainer applies epoch by epoch."""
    monitor = Monitor(metric, min_delta)
    for row in rows:
        monitor.update(row)
    return monitor.best_epoch
