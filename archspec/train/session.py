"""From a spec and a data set to a finished run folder: the steps ``archspec train`` takes.

    spec -> graph -> options -> device -> data splits -> model -> batch size -> run folder
         -> Trainer.fit (checkpoint, weights, metrics, curves every epoch) -> test report

``evaluate`` and ``predict`` reuse the same pieces on saved weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import pipeline
from ..errors import ArchspecError, Location, UsageError
from ..graph import Graph
from ..spec import load
from ..weights import LoadReport, load_weights, read_info, read_metadata, resolve_weights, save_weights
from . import distributed
from .batch import auto_batch_size
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, check_options, resolve, to_dict, worker_count
from .options_file import read_options_file
from ..data.loading import Splits, channel_stats, load_splits, open_data
from .runs import Run, folder_of_launch, fresh_folder
from .trainer import Hardware, Interrupted, NonFiniteLoss, Progress, Trainer, pick_hardware, set_trainable

HOST_MEMORY_BYTES = 4 << 30  # file-backed data smaller than this is decoded once and kept in memory
HEADS = {"cross_entropy": "softmax", "bce": "sigmoid"}  # a head the loss computes itself, on logits


@dataclass
class Outcome:
    run: Path
    history: list[dict[str, Any]]
    best_epoch: int
    stopped: str
    test: dict[str, Any] | None
    init_report: LoadReport | None = None
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ pieces


def image_shape(graph: Graph) -> tuple[int, int, int]:
    if len(graph.input_shape) != 3:
        raise ArchspecError(f"archspec train needs an image input [C, H, W]; this spec's input is "
                            f"{list(graph.input_shape)}", Location(graph.file))
    return tuple(graph.input_shape)


def check_classes(graph: Graph, classes: list[str]) -> None:
    out = graph.shape_of(graph.output)
    if len(out) != 1 or out[0] != len(classes):
        raise ArchspecError(
            f"the spec's output is {'×'.join(map(str, out))} but the data has {len(classes)} classes"
            + (" (set the classes parameter: --set classes=%d)" % len(classes) if "classes" in graph.params else
               f"; its last layer needs {len(classes)} outputs"), Location(graph.file))


def without_head(module, graph: Graph, loss: str) -> tuple[Any, bool]:
    """The model whose output is the logits before a final softmax (or sigmoid) the loss applies itself.

    Returns (module, outputs_are_logits). The head has no parameters, so the weights are the same
    and saved weights load into the full spec's model for prediction.
    """
    last = graph.nodes[-1] if graph.nodes else None
    head = HEADS.get(loss)
    if last is None or last.path != graph.output or last.type != head:
        return module, last is None or last.type not in ("softmax", "sigmoid")
    fx_graph = module.graph
    output = next(n for n in fx_graph.nodes if n.op == "output")
    head_node = output.args[0]
    output.args = (head_node.args[0],)
    fx_graph.erase_node(head_node)
    if last.path in dict(module.named_children()):
        delattr(module, last.path)
    module.recompile()
    return module, True


def weights_metadata(graph: Graph, spec_path: str, params: dict, classes: list[str], mean, std,
                     config: TrainConfig) -> dict[str, str]:
    return {"archspec.spec": spec_path, "archspec.params": json.dumps(params),
            "archspec.classes": json.dumps(list(classes)), "archspec.mean": json.dumps(mean),
            "archspec.std": json.dumps(std), "archspec.input": json.dumps(list(graph.input_shape)),
            "archspec.data": config.data or "digits", "archspec.split": json.dumps(config.split),
            "archspec.seed": str(config.seed)}


# ------------------------------------------------------------------ train


def train(source, options: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
          config_file: str | None = None, resume: str | None = None, progress: Progress | None = None,
          callbacks: list | None = None) -> Outcome:
    """Train a spec; ``options`` are TrainConfig fields (the command line's), ``params`` the spec's;
    ``callbacks``: ``callbacks.Callback`` objects called as training goes."""
    progress = progress or Progress()
    options = {k: v for k, v in (options or {}).items() if v is not None}
    check_options(options, Location("options"))
    run_folder = None
    if resume:
        run_folder, source, params, saved_options = _resume_inputs(resume)
        options = {**saved_options, **{k: v for k, v in options.items() if k in ("epochs",)}}
        config_file = None
    spec = load(source)
    params = dict(params or {})
    graph = pipeline.expand(spec, params)
    shape = image_shape(graph)
    section = spec.data.get("train") if isinstance(spec.data, dict) else None
    config = resolve(section, read_options_file(config_file) if config_file else None, options)

    hardware = pick_hardware(config, distributed.local_rank())
    distributed.init_from_env(hardware.device.type)
    if not distributed.is_main():
        progress = Progress()  # one set of lines, from rank 0
    try:
        return _train(spec, graph, shape, params, config, hardware, run_folder, progress, callbacks or [])
    finally:
        distributed.shutdown()


def _resume_inputs(folder: str):
    run = Run(Path(folder))
    if not run.path("checkpoint.safetensors").exists() or not run.path("config.yaml").exists():
        raise UsageError(f"--resume {folder}: no checkpoint.safetensors and config.yaml there")
    saved = run.read_config()
    return run.folder, saved["spec"], saved.get("params") or {}, saved["train"]


def _train(spec, graph, shape, params, config, hardware, run_folder, progress, callbacks) -> Outcome:
    notes: list[str] = []
    splits = load_splits(config.data, shape, fractions=tuple(config.split), val=config.val_data,
                         test=config.test_data, bad_images=config.bad_images, seed=config.seed)
    splits = Splits(*(s.in_memory(HOST_MEMORY_BYTES, workers=worker_count(config)) for s in
                      (splits.train, splits.val, splits.test)))
    classes = splits.train.classes
    check_classes(graph, classes)
    mean, std = channel_stats(splits.train)

    from ..compiler import compile_graph

    model = compile_graph(graph, seed=config.seed)
    model, logits = without_head(model, graph, config.loss)
    init_report = None
    if config.init:
        init_report = load_weights(model, config.init, strict=False)
        notes.append(_init_note(config.init, init_report))
    if config.freeze:
        set_trainable(model, config.freeze, False)
    batch_size = config.batch_size
    if batch_size == "auto":
        model.to(hardware.device)
        batch_size, how = auto_batch_size(graph, model, hardware, config, len(splits.train))
        progress.message(how)
        batch_size = int(distributed.broadcast_text(str(batch_size), hardware.device))  # rank 0's choice

    folder, resuming = _choose_folder(run_folder, Path(config.out or Path("runs") / graph.name), hardware)
    run = Run(folder)
    spec_path = str(spec.file)
    metadata = weights_metadata(graph, spec_path, params, classes, mean, std, config)
    if distributed.is_main() and not resuming:
        run.write_config({
            "spec": spec_path, "name": graph.name, "params": params, "input": list(shape),
            "classes": list(classes), "normalize": {"mean": mean, "std": std},
            "data": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                     "origin": splits.train.origin},
            "hardware": {"device": str(hardware.device), "precision": hardware.precision,
                         "channels_last": hardware.channels_last, "processes": distributed.world_size(),
                         "batch_size": batch_size},
            "train": to_dict(config),
            "launch": {"id": distributed.run_id()},
            "versions": {"torch": str(torch.__version__)},
        })
    for note in notes:
        progress.message(note)
    progress.message(f"run folder: {folder}  ({len(splits.train)} learning / {len(splits.val)} validation / "
                     f"{len(splits.test)} test images, {len(classes)} classes; {hardware.device}, "
                     f"{hardware.precision}, batch {batch_size})")

    def on_epoch(trainer: Trainer, is_best: bool) -> None:
        if is_best:
            save_weights(trainer.model, run.path("best.safetensors"), metadata)
        save_weights(trainer.model, run.path("last.safetensors"), metadata)
        save_checkpoint(run.path("checkpoint.safetensors"), trainer.state())
        run.write_metrics(trainer.history)
        from .plots import save_curves

        save_curves(trainer.history, run.path("curves.png"), best_epoch=trainer.best_epoch,
                    metric=trainer.monitor.metric)

    from .loggers import run_callbacks

    trainer = Trainer(model, config, splits.train, splits.val, mean, std, hardware, batch_size,
                      outputs_are_logits=logits, progress=progress, on_epoch=on_epoch,
                      callbacks=run_callbacks(config, folder, metadata) + list(callbacks))
    if resuming:  # every process reads the checkpoint rank 0 found, after it said so
        checkpoint = run.path("checkpoint.safetensors")
        if not checkpoint.exists():
            raise ArchspecError(f"rank {distributed.rank()} cannot see {checkpoint}, which rank 0 resumes from: "
                                "the run folder must be on storage every node sees (--out)", Location(str(checkpoint)))
        trainer.load_state(load_checkpoint(checkpoint))
        progress.message(f"resuming after epoch {trainer.epoch} of {config.epochs}"
                         + (f" (restart {distributed.restart_count()})" if distributed.restart_count() else ""))
    try:
        result = trainer.fit()
    except Interrupted as exc:
        if distributed.is_main():
            save_weights(trainer.model, run.path("interrupted.safetensors"), metadata)
        raise Interrupted(f"{exc}: weights saved to {run.path('interrupted.safetensors')}; continue with "
                          f"archspec train --resume {folder} (from the end of epoch {trainer.epoch})") from None
    except NonFiniteLoss as exc:
        raise NonFiniteLoss(f"{exc.problem.message}; run folder {folder}") from None

    test_report = None
    # rank 0 wrote the best weights: it alone looks for them, reads them and hands them to the others
    has_best = distributed.broadcast_text(str(distributed.is_main() and run.path("best.safetensors").exists()),
                                          hardware.device) == "True"
    if len(splits.test) and has_best:
        if distributed.is_main():
            load_weights(model, run.path("best.safetensors"))
        model.to(hardware.device)
        distributed.broadcast_state(model)
        test_report = trainer.test_report(splits.test)
        test_report.update({"best_epoch": result.best_epoch, "stopped": result.stopped,
                            "weights": str(run.path("best.safetensors"))})
        if distributed.is_main():
            run.write_json("report.json", test_report)
            from .plots import save_confusion

            save_confusion(test_report["confusion"], list(classes), run.path("confusion.png"))
    return Outcome(folder, result.history, result.best_epoch, result.stopped, test_report, init_report, notes)


def _choose_folder(run_folder: Path | None, wanted: Path, hardware: Hardware) -> tuple[Path, bool]:
    """(run folder, resume from its checkpoint?), decided by rank 0 and the same on every process.

    ``--resume`` names the folder; otherwise a launch that carries an id (torchrun's
    TORCHELASTIC_RUN_ID) continues the folder it started, after an elastic restart or a
    preempted job started again, from its last checkpoint when there is one.
    """
    folder, resuming = run_folder, run_folder is not None
    if distributed.is_main():
        if folder is None and distributed.run_id():
            folder = folder_of_launch(wanted, distributed.run_id())
            resuming = folder is not None and folder.joinpath("checkpoint.safetensors").exists()
        folder = folder or fresh_folder(wanted)
    decided = distributed.broadcast_text(f"{int(resuming)}{folder}", hardware.device)
    return Path(decided[1:]), decided[0] == "1"


def _init_note(path: str, report: LoadReport) -> str:
    lines = [f"init {path}: loaded {len(report.loaded)} tensors"]
    for label, names in (("kept their initial values (not in the file)", report.missing),
                         ("not used (not in the model)", report.unexpected),
                         ("kept their initial values (other shape)", report.mismatched)):
        if names:
            lines.append(f"  {len(names)} {label}: {', '.join(names)}")
    return "\n".join(lines)


# ------------------------------------------------------------------ evaluate and predict


def _model_for(source, params, weights: str):
    """The spec compiled with the run's ``--set`` values (from the weights' metadata), then ``params``."""
    from ..compiler import compile_graph

    graph = pipeline.expand(source, {**read_info(weights).params, **(params or {})})
    model = compile_graph(graph, seed=0)
    load_weights(model, weights)
    return graph, model.train(False)


def evaluate(source, weights: str, data: str | None = None, split: str | None = None,
             params: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Test figures of saved weights on a data set (all of it, or one split of it as the run made it)."""
    weights = str(resolve_weights(weights))  # a run folder: its best.safetensors
    graph, model = _model_for(source, params, weights)
    info = read_info(weights)
    classes, mean, std, meta = info.classes, info.mean, info.std, read_metadata(info.path)
    config = resolve(None, None, {k: v for k, v in (options or {}).items() if v is not None})
    shape = image_shape(graph)
    if data is None:  # the run's own held-out split, cut exactly as training cut it
        data = meta.get("archspec.data")
        split = split or "test"
        fractions = tuple(json.loads(meta.get("archspec.split", "[0.7, 0.15, 0.15]")))
        seed = int(meta.get("archspec.seed", 0))
        splits = load_splits(data, shape, fractions=fractions, seed=seed)
        dataset = getattr(splits, split)
    else:
        dataset = open_data(data, shape, classes=classes)
        if split and split != "all":
            dataset = getattr(load_splits(data, shape, fractions=tuple(config.split), seed=config.seed), split)
    classes = classes or dataset.classes
    check_classes(graph, classes)
    if mean is None:
        mean, std = [0.0] * shape[0], [1.0] * shape[0]
    hardware = pick_hardware(config)
    model, logits = without_head(model, graph, config.loss)
    trainer = Trainer(model, config, dataset, dataset.subset([]), mean, std, hardware,
                      batch_size=config.batch_size if isinstance(config.batch_size, int) else 256,
                      outputs_are_logits=logits)
    report = trainer.test_report(dataset.in_memory(HOST_MEMORY_BYTES))
    report["weights"] = str(weights)
    report["data"] = data or "digits"
    return report


def predict(source, weights: str, images: list[str], top: int = 5, params: dict[str, Any] | None = None,
            device: str = "auto", fit: str = "stretch") -> list[dict[str, Any]]:
    """Top-``top`` classes with probabilities for each image file, fitted as ``fit`` says (archspec.images)."""
    weights = str(resolve_weights(weights))
    from ..images import load_image

    graph, model = _model_for(source, params, weights)
    info = read_info(weights)
    classes, mean, std = info.classes, info.mean, info.std
    shape = image_shape(graph)
    out = graph.shape_of(graph.output)
    classes = classes or [str(i) for i in range(out[0])]
    mean = torch.tensor(mean or [0.0] * shape[0]).view(1, -1, 1, 1)
    std = torch.tensor(std or [1.0] * shape[0]).view(1, -1, 1, 1)
    batch = torch.stack([load_image(path, shape, fit) for path in images])  # (N, C, H, W) in [0, 1]
    with torch.no_grad():
        outputs = model((batch - mean) / std).float()
    already_probabilities = graph.nodes and graph.nodes[-1].type == "softmax"
    probabilities = outputs if already_probabilities else torch.softmax(outputs, dim=1)
    k = min(top, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    return [{"image": str(path), "top": [{"class": classes[i], "probability": float(p)}
                                           for p, i in zip(v.tolist(), ix.tolist())]}
            for path, v, ix in zip(images, values, indices)]
