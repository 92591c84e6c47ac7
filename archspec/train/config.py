"""Training options, each defined once: a dataclass field with its default, its help and its schema.

Everything else is derived from the fields below: the JSON Schema of a spec's ``train:`` section
and of ``--config`` files (``train_schema``), the flags of ``archspec train`` (``flag_specs``,
turned into click options by the command), the options ``archspec.train(...)`` accepts, and the
options table in docs/training.md (``markdown_table``, compared with the doc by a test). A new
option is one ``option(...)`` line here.

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
from ..validator import validator

DEVICES_RE = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"
LOGGERS = ("tensorboard", "csv")
AUGMENT_KEYS: dict[str, tuple[dict[str, Any], str]] = {  # key: (its schema, what it does)
    "rotation": ({"type": "number", "minimum": 0, "maximum": 180}, "max degrees, uniform in [-r, r]"),
    "noise": ({"type": "number", "minimum": 0, "maximum": 1}, "std of gaussian noise, in [0, 1] image units"),
    "mirror": ({"type": "boolean"}, "horizontal flip with probability 1/2"),
    "crop": ({"type": "integer", "minimum": 0, "maximum": 1024}, "pad by N pixels, random-crop back (jitter)"),
    "colour_shift": ({"type": "number", "minimum": 0, "maximum": 255},
                     "max per-channel shift in 0..255 units (as A. Ng's Convolutional Neural Networks course "
                     "(deeplearning.ai): R +20, G -20, B +20)"),
}


def _number(minimum=None, exclusive=False, integer=False, maximum=None, exclusive_max=False) -> dict:
    s: dict[str, Any] = {"type": "integer" if integer else "number"}
    if minimum is not None:
        s["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        s["exclusiveMaximum" if exclusive_max else "maximum"] = maximum
    return s


def _enum(*values) -> dict:
    return {"enum": list(values)}


def _or_auto(schema: dict) -> dict:
    return {"anyOf": [schema, {"const": "auto"}]}


_PATTERNS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def option(default: Any = None, help: str = "", schema: dict | None = None, *, flag: bool = True,
           factory: Any = None, doc_default: str | None = None):
    """One training option: its default, one line of help, its JSON Schema; ``flag``: on the command line.

    ``doc_default`` is how the docs table shows a default that is not a plain value.
    """
    metadata = {"help": help, "schema": schema or {}, "flag": flag, "doc_default": doc_default}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
LOSSES = ("cross_entropy", "mae", "mse", "bce")
METRICS = ("val_loss", "val_acc", "val_top5")


@dataclass
class EarlyStopping:
    metric: str = option("val_loss", "watched after each epoch: val_loss (lower is better), val_acc, val_top5",
                         _enum(*METRICS))
    patience: int = option(5, "epochs without improvement before stopping", _number(1, integer=True))
    min_delta: float = option(0.0, "an improvement smaller than this does not count", _number(0))


@dataclass
class Unfreeze:
    epoch: int  # from this epoch on (1-based) ...
    layers: list[str]  # ... these patterns train too ("*" for everything)
    lr_factor: float = 1.0  # and every learning rate is multiplied by this (fine-tuning wants it small)


_UNFREEZE_SCHEMA = {"type": "array", "items": {
    "type": "object", "required": ["epoch", "layers"], "additionalProperties": False,
    "properties": {"epoch": _number(1, integer=True), "layers": _PATTERNS, "lr_factor": _number(0, exclusive=True)}}}
_AUGMENT_SCHEMA = {"type": "object", "additionalProperties": False,
                   "properties": {k: {**s, "description": d} for k, (s, d) in AUGMENT_KEYS.items()}}
_EARLY_STOPPING_SCHEMA = {"type": ["object", "null"], "additionalProperties": False,
                          "properties": {f.name: f.metadata["schema"] for f in dataclasses.fields(EarlyStopping)}}


@dataclass
class TrainConfig:
    # --- data
    data: str | None = option(None, f"training data: {data_sources.syntax_list()} (~ and $VARS are expanded; "
                              "see docs/data.md)", {"type": "string"}, doc_default="digits")
    val_data: str | None = option(None, "a separate validation set; else split off data", {"type": "string"})
    test_data: str | None = option(None, "a separate test set; else split off data", {"type": "string"})
    split: list[float] = option(help="learning/validation/test fractions, summing to 1, stratified by class",
                                schema={"type": "array", "minItems": 3, "maxItems": 3, "items": _number(0)},
                                factory=lambda: [0.7, 0.15, 0.15])
    bad_images: str = option("stop", "an unreadable image stops the run, or is skipped with a warning",
                             _enum("stop", "skip"))
    augment: dict[str, Any] = option(help="rotation, noise, mirror, crop, colour_shift (flags --augment-KEY)",
                                     schema=_AUGMENT_SCHEMA, factory=dict, doc_default="none")
    augment_on: str = option("auto", "device (batched, where the data lives) or workers (DataLoader); auto: device "
                             "for data in memory, workers for files", _enum("auto", "device", "workers"))
    # --- optimisation
    epochs: int = option(20, "epochs to train (with --resume: the new total)", _number(1, integer=True))
    batch_size: int | str = option(64, "images per step, or auto: the largest that fits memory, no larger than "
                                   "the data allows (see below) and, on the CPU, the fastest measured",
                                   _or_auto(_number(1, integer=True)))
    micro_batch: int | None = option(None, "most images one process puts through at once; a larger share of the "
                                     "batch accumulates gradients over several passes (the same step; batch norm "
                                     "sees each pass)", {"type": ["integer", "null"], "minimum": 1})
    optimizer: str = option("adam", "sgd, rmsprop, adam, adamw", _enum(*OPTIMIZERS))
    lr: float = option(1e-3, "learning rate", _number(0, exclusive=True))
    momentum: float | None = option(None, "sgd: default 0.9; rmsprop: default 0", _number(0), doc_default="—")
    nesterov: bool = option(False, "Nesterov momentum (sgd)", {"type": "boolean"})
    weight_decay: float = option(0.0, "L2 penalty on the weights (decoupled with adamw)", _number(0))
    schedule: str = option("none", "none, step, cosine, onecycle", _enum(*SCHEDULES))
    decay_rate: float = option(0.01, "step: the fraction of the rate lost every step_size epochs",
                               _number(0, maximum=1, exclusive_max=True))
    step_size: int = option(1, "step: epochs between decays", _number(1, integer=True))
    warmup_epochs: int = option(0, "linear warm-up from lr/10 before the schedule (not with onecycle)",
                                _number(0, integer=True))
    loss: str = option("cross_entropy", "cross_entropy, mae, mse, bce (the last three on one-hot targets)",
                       _enum(*LOSSES))
    label_smoothing: float = option(0.0, "cross_entropy: the weight moved from the true class to all classes",
                                    _number(0, maximum=1, exclusive_max=True))
    early_stopping: EarlyStopping | None = option(None, "stop when the metric has not improved for patience "
                                                  "epochs (flags --early-stopping-KEY)", _EARLY_STOPPING_SCHEMA,
                                                  doc_default="off")
    # --- transfer learning
    init: str | None = option(None, "safetensors weights to start from: matching names load, the rest are listed",
                              {"type": "string"})
    freeze: list[str] = option(help="layer patterns kept fixed (fnmatch on node paths; repeatable)",
                               schema=_PATTERNS, factory=list, doc_default="none")
    unfreeze: list[Unfreeze] = option(help="phased unfreezing: [{epoch, layers, lr_factor}] (config only)",
                                      schema=_UNFREEZE_SCHEMA, factory=list, flag=False, doc_default="none")
    # --- hardware
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
                         {"type": "string", "pattern": DEVICES_RE})
    precision: str = option("auto", "auto: bf16 where supported, else fp16 with a gradient scaler on CUDA; fp32 on "
                            "the CPU", _enum("auto", "bf16", "fp16", "fp32"))
    channels_last: str | bool = option("auto", "auto: on for CUDA", _enum("auto", True, False))
    data_on_device: str | bool = option("auto", "hold the whole data set on the device when it fits in "
                                        "device_data_bytes", _enum("auto", True, False))
    device_data_bytes: int = option(1 << 30, "the size under which data held in memory goes to the device",
                                    _number(0, integer=True), flag=False, doc_default="1 GiB")
    workers: int | str = option("auto", "DataLoader workers for images read from files; auto: one per core but "
                                "one, at most 4", _or_auto(_number(0, integer=True)))
    compile: bool = option(False, "torch.compile the model", {"type": "boolean"})
    sync_batchnorm: bool = option(False, "under torchrun: batch-norm statistics of the global batch, not each "
                                  "process's", {"type": "boolean"})
    # --- run
    seed: int = option(0, "splits, initial weights, shuffling, augmentation, dropout", _number(0, integer=True))
    out: str | None = option(None, "run folder; default runs/<spec name>, never over an earlier run",
                             {"type": "string"}, doc_default="runs/NAME")
    top_k: int = option(5, "the top-k accuracy reported beside top-1 (when there are more than k classes)",
                        _number(1, integer=True))
    checkpoint_every: int = option(0, "also keep the weights of every N-th epoch as epoch-N.safetensors (0: off)",
                                   _number(0, integer=True))
    keep_last: int = option(0, "keep only the last K of those epoch-N files (0: all)", _number(0, integer=True))
    log: list[str] = option(help="loggers besides metrics.csv: tensorboard (event files in the run folder), "
                            "csv (steps.csv, one row per step); repeatable",
                            schema={"type": "array", "items": _enum(*LOGGERS), "uniqueItems": True},
                            factory=list, doc_default="none")
    log_every: int | str = option("auto", "steps between step logs (progress, loggers, on_step_end); auto: 1 on "
                                  "the CPU, 20 on an accelerator (each reading waits for it)",
                                  _or_auto(_number(1, integer=True)))


def train_schema() -> dict:
    """JSON Schema of the ``train:`` section and of a training YAML file, from the fields' schemas."""
    props = {}
    for f in dataclasses.fields(TrainConfig):
        schema = dict(f.metadata["schema"])
        schema.setdefault("description", f.metadata["help"])
        props[f.name] = schema
    return {"type": "object", "additionalProperties": False, "properties": props,
            "description": "training options for archspec train (all optional)"}


@dataclass(frozen=True)
class FlagSpec:
    """One command-line flag, derived from an option (a nested one has a path of two keys)."""

    flag: str  # --early-stopping-patience
    path: tuple[str, ...]  # ("early_stopping", "patience")
    schema: dict
    help: str
    multiple: bool = False  # a list option: the flag repeats

    @property
    def dest(self) -> str:
        return "__".join(self.path)


def _flag(path: tuple[str, ...]) -> str:
    return "--" + "-".join(path).replace("_", "-")


def flag_specs() -> list[FlagSpec]:
    """The flags of ``archspec train``: one per option, one per key of augment and early_stopping."""
    flags = []
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata["flag"]:
            continue
        schema, help = f.metadata["schema"], f.metadata["help"]
        if f.name == "augment":
            flags += [FlagSpec(_flag(("augment", k)), ("augment", k), s, f"augmentation: {d}")
                      for k, (s, d) in AUGMENT_KEYS.items()]
        elif f.name == "early_stopping":
            flags += [FlagSpec(_flag(("early_stopping", e.name)), ("early_stopping", e.name), e.metadata["schema"],
                               f"early stopping: {e.metadata['help']} (default {e.default})")
                      for e in dataclasses.fields(EarlyStopping)]
        elif schema.get("type") == "array" and f.name != "split":
            flags.append(FlagSpec(_flag((f.name,)), (f.name,), schema.get("items", {"type": "string"}), help,
                                  multiple=True))
        elif "anyOf" in schema and f.name == "freeze":
            flags.append(FlagSpec(_flag((f.name,)), (f.name,), {"type": "string"}, help, multiple=True))
        else:
            flags.append(FlagSpec(_flag((f.name,)), (f.name,), schema, help))
    return flags


def options_from_flags(values: dict[str, Any]) -> dict[str, Any]:
    """Options (nested where the flag is) from the values of the flags given, keyed by ``FlagSpec.dest``."""
    options: dict[str, Any] = {}
    for spec in flag_specs():
        value = values.get(spec.dest)
        if value is None or (spec.multiple and not value):
            continue
        value = list(value) if spec.multiple else value
        if len(spec.path) == 1:
            options[spec.path[0]] = value
        else:
            options.setdefault(spec.path[0], {})[spec.path[1]] = value
    return options


def _doc_default(f) -> str:
    if f.metadata["doc_default"] is not None:
        return f.metadata["doc_default"]
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if value is None:
        return "—"
    return str(value).lower() if isinstance(value, bool) else str(value)


def markdown_table() -> str:
    """The options table of docs/training.md: key, flag, default, help."""
    flags = {spec.path[0]: spec.flag for spec in flag_specs() if len(spec.path) == 1}
    lines = ["| key | flag | default | what it does |", "|---|---|---|---|"]
    for f in dataclasses.fields(TrainConfig):
        if f.name == "augment":
            flag = "`--augment-KEY`"
        elif f.name == "early_stopping":
            flag = "`--early-stopping-KEY`"
        else:
            flag = f"`{flags[f.name]}`" if f.name in flags else "—"
        help = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{f.name}` | {flag} | {_doc_default(f)} | {help} |")
    for e in dataclasses.fields(EarlyStopping):
        lines.append(f"| `early_stopping.{e.name}` | `{_flag(('early_stopping', e.name))}` | {e.default} | "
                     f"{e.metadata['help']} |")
    for key, (_, description) in AUGMENT_KEYS.items():
        lines.append(f"| `augment.{key}` | `{_flag(('augment', key))}` | — | {description} |")
    return "\n".join(lines) + "\n"


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
        elif key == "early_stopping" and isinstance(value, dict) and isinstance(values[key], dict):
            value = {**values[key], **value}  # --early-stopping-patience over a file's early_stopping
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
    problems = [Problem(f"{'.'.join(map(str, e.absolute_path)) or 'options'}: {e.message}", where)
                for e in validator(train_schema()).iter_errors({k: v for k, v in options.items() if v is not None})]
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

