"""``archspec.train(spec, data=..., epochs=..., **options)``: the trainer from Python, a notebook's way in.

    run = archspec.train("specs/lenet_digits.yaml", epochs=5, lr=0.01, on_epoch_end=show)
    run.metrics[-1]["val_acc"], run.best_epoch, run.paths["curves.png"], run.model()

Options are ``TrainConfig``'s fields (docs/training.md), checked like the command line's; the
run folder, its files and the test report are the same as ``archspec train`` leaves.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import Location
from .callbacks import Callback, FunctionCallback
from .config import check_options


@dataclass
class TrainingRun:
    """What a finished run left: its metrics, files, best epoch and test report."""

    folder: Path
    metrics: list[dict[str, Any]]  # one row per epoch, as metrics.csv
    best_epoch: int
    stopped: str  # "completed", "early stopping at epoch N: ...", "<reason> at epoch N"
    test: dict[str, Any] | None  # report.json: accuracy, loss, per-class accuracy, confusion matrix
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, Path]:
        """Every file of the run folder by name (curves.png, best.safetensors, report.json, ...)."""
        return {p.name: p for p in sorted(self.folder.iterdir()) if p.is_file()}

    @property
    def best_weights(self) -> Path:
        return self.folder / "best.safetensors"

    def model(self, weights: str = "best"):
        """The spec's torch.fx module with the run's best (or ``"last"``) weights loaded, in inference mode."""
        from ..compiler import compile_graph
        from ..pipeline import expand
        from ..weights import load_weights

        module = compile_graph(expand(self.spec, self.params), seed=0)
        load_weights(module, self.folder / f"{weights}.safetensors")
        return module.train(False)


def train(spec, data: str | None = None, epochs: int | None = None, *, params: dict[str, Any] | None = None,
          callbacks: list[Callback] | tuple = (), on_epoch_end: Callable | None = None,
          on_step_end: Callable | None = None, verbose: bool = True, resume: str | None = None,
          **options: Any) -> TrainingRun:
    """Train ``spec`` (a path or a zoo name) and return the run.

    ``data``, ``epochs`` and ``options`` are training options (``lr=0.01``, ``batch_size="auto"``,
    ``augment={"mirror": True}``, ``log=["tensorboard"]``, ...); ``params`` override the spec's
    parameters (``{"classes": 2}``). ``on_epoch_end(trainer, row)`` and ``on_step_end(trainer, logs)``
    are called as training goes (see ``callbacks.Callback``); ``trainer.stop("why")`` in either ends
    the run after the current epoch. ``verbose`` prints one line per epoch.
    """
    from . import session
    from .progress import PlainProgress
    from .trainer import Progress

    options = {**options, "data": data, "epochs": epochs}
    options = {k: v for k, v in options.items() if v is not None}
    check_options(options, Location("archspec.train"))
    hooks = list(callbacks)
    if on_epoch_end or on_step_end:
        hooks.append(FunctionCallback(on_epoch_end, on_step_end))
    progress = PlainProgress(sys.stdout) if verbose else Progress()
    outcome = session.train(None if resume else spec, options, params, resume=resume, progress=progress,
                            callbacks=hooks)
    saved = outcome.run / "config.yaml"
    spec_path, run_params = str(spec), dict(params or {})
    if saved.exists():
        import yaml

        recorded = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        spec_path, run_params = recorded.get("spec", spec_path), recorded.get("params") or run_params
    return TrainingRun(outcome.run, outcome.history, outcome.best_epoch, outcome.stopped, outcome.test,
                       spec_path, run_params, outcome.notes)
