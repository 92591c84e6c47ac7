"""Training options: one dataclass with a comment on each default, and the JSON Schema that checks them.

Options come, later ones winning, from the defaults below, the spec's optional ``train:`` section,
a separate YAML file (``archspec train SPEC --config train.yaml``) and the command line. The spec's
section and the file are checked against ``train_schema()`` with the same located messages as
specs, so ``epochs: ten`` is reported at its line and column, and an unknown key is named.

This module never imports torch: the spec schema includes the train section.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data import sources as data_sources
from ..errors import Location, Problem, UsageError

OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
LOSSES = ("cross_entropy", "mae", "mse", "bce")
METRICS = ("val_loss", "val_acc", "val_top5")
DEVICES_RE = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"
AUGMENT_KEYS = {
    "rotation": ({"type": "number", "minimum": 0, "maximum": 180}, "max degrees, uniform in [-r, r]"),
    "noise": ({"type": "number", "minimum": 0, "maximum": 1}, "std of gaussian noise, in [0, 1] image units"),
    "mirror": ({"type": "boolean"}, "horizontal flip with probability 1/2"),
    "crop": ({"type": "integer", "minimum": 0, "maximum": 1024}, "pad by N pixels, random-crop back (jitter)"),
    "colour_shift": ({"type": "number", "minimum": 0, "maximum": 255},
                     "max per-channel shift in 0..255 units (as A. Ng's Convolutional Neural Networks course (deeplearning.ai): R +20, G -20, B +20)"),
}


@dataclass
class EarlyStopping:
    metric: str = "val_loss"  # watched after each epoch: val_loss (lower is better), val_acc, val_top5
    patience: int = 5  # epochs without improvement before stopping
    min_delta: float = 0.0  # an improvement smaller than this does not count


@dataclass
class Unfreeze:
    epoch: int  # from this epoch on (1-based) ...
    layers: list[str]  # ... these patterns train too ("*" for everything)
    lr_factor: float = 1.0  # and every learning rate is multiplied by this (fine-tuning wants it small)


@dataclass
class TrainConfig:
    # --- data
    data: str | None = None  # a source of archspec.data.sources.SOURCES; None is the digits
    val_data: str | None = None  # separate validation set; else split off `data`
    test_data: str | None = None  # separate test set; else split off `data`
    split: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])  # learn/valid/test
    bad_images: str = "stop"  # an unreadable image stops the run, or is skipped with a warning
    augment: dict[str, Any] = field(default_factory=dict)  # rotation, noise, mirror, crop, colour_shift
    augment_on: str = "auto"  # device (batched, where the data lives) or workers (DataLoader); auto picks
    # --- optimisation
    epochs: int = 20
    batch_size: int | str = 64  # or "auto": the largest that fits, from the memory model, confirmed
    micro_batch: int | None = None  # most images one process puts through at once; a larger share of the
    #                                 batch is accumulated over several passes (same step; batch norm sees each pass)
    optimizer: str = "adam"  # sgd, rmsprop, adam, adamw
    lr: float = 1e-3
    momentum: float | None = None  # sgd: default 0.9 (Keras examples often use 0.8); rmsprop: default 0
    nesterov: bool = False  # sgd
    weight_decay: float = 0.0
    schedule: str = "none"  # none, step, cosine, onecycle
    decay_rate: float = 0.01  # step: decay_rate, the fraction of the rate lost every step_size epochs
    step_size: int = 1  # step: epochs between decays
    warmup_epochs: int = 0  # linear warm-up from lr/10 before the schedule (not with onecycle)
    loss: str = "cross_entropy"  # cross_entropy, mae, mse, bce (the last three on one-hot targets)
    label_smoothing: float = 0.0  # cross_entropy
    early_stopping: EarlyStopping | None = None
    # --- transfer learning
    init: str | None = None  # safetensors to start from: matching names load, the rest are listed
    freeze: list[str] = field(default_factory=list)  # layer patterns kept fixed (fnmatch on node paths)
    unfreeze: list[Unfreeze] = field(default_factory=list)  # phased unfreezing: [{epoch, layers, lr_factor}]
    # --- hardware
    device: str = "auto"  # auto picks cuda, then mps, then cpu
    precision: str = "auto"  # auto: bf16 where supported, else fp16 with a grad scaler on CUDA, fp32 on CPU
    channels_last: str = "auto"  # auto: on for CUDA
    data_on_device: str = "auto"  # hold the whole data set on the device when it fits in `device_data_bytes`
    device_data_bytes: int = 1 << 30
    workers: int | str = "auto"  # DataLoader workers when data is read from files
    compile: bool = False  # torch.compile the model
    sync_batchnorm: bool = False  # under torchrun: batch-norm statistics of the global batch, not each process's
    # --- run
    seed: int = 0  # splits, initial weights, shuffling, augmentation, dropout
    out: str | None = None  # run folder; default runs/<spec name>
    top_k: int = 5  # the top-k accuracy reported beside top-1


def _number(minimum=None, exclusive=False, integer=False) -> dict:
    s: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        s["exclusiveMinimum" if exclusive else "minimum"] = minimum
    return s


def train_schema() -> dict:
    """JSON Schema of the ``train:`` section and of a training YAML file."""
    patterns = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    props: dict[str, Any] = {
        "data": {"type": "string", "description": data_sources.syntax_list()},
        "val_data": {"type": "string"},
        "test_data": {"type": "string"},
        "split": {"type": "array", "minItems": 3, "maxItems": 3, "items": _number(0),
                  "description": "learn/validation/test fractions, summing to 1"},
        "bad_images": {"enum": ["stop", "skip"]},
        "augment": {"type": "object", "additionalProperties": False,
                    "properties": {k: {**s, "description": d} for k, (s, d) in AUGMENT_KEYS.items()}},
        "augment_on": {"enum": ["auto", "device", "workers"]},
        "epochs": _number(1, integer=True),
        "batch_size": {"anyOf": [_number(1, integer=True), {"const": "auto"}]},
        "micro_batch": {"anyOf": [_number(1, integer=True), {"type": "null"}],
                        "description": "most images per process per pass; larger shares accumulate gradients"},
        "optimizer": {"enum": list(OPTIMIZERS)},
        "lr": _number(0, exclusive=True),
        "momentum": _number(0),
        "nesterov": {"type": "boolean"},
        "weight_decay": _number(0),
        "schedule": {"enum": list(SCHEDULES)},
        "decay_rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "step_size": _number(1, integer=True),
        "warmup_epochs": _number(0, integer=True),
        "loss": {"enum": list(LOSSES)},
        "label_smoothing": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "early_stopping": {"type": ["object", "null"], "additionalProperties": False,
                           "properties": {"metric": {"enum": list(METRICS)},
                                          "patience": _number(1, integer=True), "min_delta": _number(0)}},
        "init": {"type": "string", "description": "safetensors weights to start from (matching names)"},
        "freeze": patterns,
        "unfreeze": {"type": "array", "items": {
            "type": "object", "required": ["epoch", "layers"], "additionalProperties": False,
            "properties": {"epoch": _number(1, integer=True), "layers": patterns,
                           "lr_factor": _number(0, exclusive=True)}}},
        "device": {"type": "string", "pattern": DEVICES_RE},
        "precision": {"enum": ["auto", "bf16", "fp16", "fp32"]},
        "channels_last": {"enum": ["auto", True, False]},
        "data_on_device": {"enum": ["auto", True, False]},
        "device_data_bytes": _number(0, integer=True),
        "workers": {"anyOf": [_number(0, integer=True), {"const": "auto"}]},
        "compile": {"type": "boolean"},
        "sync_batchnorm": {"type": "boolean", "description": "batch-norm statistics over every process's share"},
        "seed": _number(0, integer=True),
        "out": {"type": "string"},
        "top_k": _number(1, integer=True),
    }
    assert set(props) == {f.name for f in dataclasses.fields(TrainConfig)}, "schema and TrainConfig drifted"
    return {"type": "object", "additionalProperties": False, "properties": props,
            "description": "training options for archspec train (all optional)"}


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def merge(config: TrainConfig, options: dict[str, Any]) -> TrainConfig:
    """``config`` with ``options`` (already schema-checked) laid over it."""
    values = dataclasses.asdict(config)
    for key, value in options.items():
        if value is None and key != "early_stopping":
            continue
        if key == "augment":
            value = {**values["augment"], **value}
        values[key] = value
    es = values["early_stopping"]
    values["early_stopping"] = EarlyStopping(**es) if isinstance(es, dict) else es
    values["freeze"] = _as_list(values["freeze"])
    values["unfreeze"] = [u if isinstance(u, Unfreeze) else
                          Unfreeze(u["epoch"], _as_list(u["layers"]), u.get("lr_factor", 1.0))
                          for u in values["unfreeze"]]
    return TrainConfig(**values)


def check_options(options: dict[str, Any], where: Location) -> None:
    """Options from the command line or the API, checked like the YAML section (UsageError)."""
    from jsonschema import Draft202012Validator

    problems = [Problem(f"{'.'.join(map(str, e.absolute_path)) or 'options'}: {e.message}", where)
                for e in Draft202012Validator(train_schema()).iter_errors(
                    {k: v for k, v in options.items() if v is not None})]
    if problems:
        raise UsageError("; ".join(p.message for p in problems), where)





def resolve(spec_section: dict[str, Any] | None, file_options: dict[str, Any] | None,
            cli_options: dict[str, Any] | None) -> TrainConfig:
    """Defaults < the spec's ``train:`` section < the options file < the command line."""
    config = TrainConfig()
    for options in (spec_section, file_options, cli_options):
        if options:
            config = merge(config, options)
    total = sum(config.split)
    if abs(total - 1) > 1e-6:
        raise UsageError(f"split: the fractions must add up to 1, found {' + '.join(map(str, config.split))} = "
                         f"{total:g}")
    return config


def worker_count(config: TrainConfig) -> int:
    """DataLoader workers: the configured number, or one per core but one, at most 4."""
    if config.workers == "auto":
        import os

        return min(4, max(0, (os.cpu_count() or 1) - 1))
    return int(config.workers)


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain data for the run's config.yaml."""
    return dataclasses.asdict(config)
