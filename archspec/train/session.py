"""From a spec and a data set to a finished run folder: the steps ``archspec train`` takes.

    spec -> graph -> options -> device -> data splits -> model -> batch size -> run folder
         -> Trainer.fit (checkpoint, weights, metrics every epoch; curves) -> test report

``evaluate`` and ``predict`` reuse the same pieces on saved weights.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import pipeline
from ..errors import ArchspecError, Location, UsageError
from ..files import WriteError
from ..graph import Graph
from ..spec import load
from ..weights import LoadReport, load_weights, read_info, resolve_weights, save_weights
from . import distributed
from .batch import auto_batch_size
from .checkpoint import check_training_state, load_checkpoint, save_checkpoint
from .config import TrainConfig, check_options, resolve, to_dict, worker_count
from .options_file import read_options_file
from ..data.loading import Splits, channel_stats, load_splits, open_data
from .runs import Run, folder_name, folder_of_launch
from .trainer import Interrupted, NonFiniteLoss, Progress, Trainer, pick_hardware, set_trainable

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
    channels, height, width = graph.input_shape
    return channels, height, width


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
            "archspec.seed": str(config.seed), "archspec.name": graph.name}


# ------------------------------------------------------------------ train


# options a resumed run may change without making it another run: how long, and where it computes
RESUMABLE_OPTIONS = ("epochs", "device", "precision", "workers", "compile")
SIGNAL_NAMES = {2: "Ctrl-C (SIGINT)", 15: "SIGTERM"}


def train(source, options: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
          config_file: str | None = None, resume: str | None = None, progress: Progress | None = None,
          callbacks: list | None = None) -> Outcome:
    """Train a spec; ``options`` are TrainConfig fields (the command line's), ``params`` the spec's;
    ``callbacks``: ``callbacks.Callback`` objects called as training goes.

    SIGINT and SIGTERM stop the run the same way: the last checkpoint stays, the weights so far are
    saved, and ``Interrupted`` (whose ``signal`` gives the exit code 128 + N) says how to resume.
    """
    progress = progress or Progress()
    options = {k: v for k, v in (options or {}).items() if v is not None}
    check_options(options, Location("options"))
    held: list[Run] = []  # run folders whose lock this call holds, released when it returns
    with StopSignals() as signals:
        try:
            run = None
            if resume:
                run, source, params, options = _resume_inputs(resume, source, options, params, config_file, progress)
                held.append(run)
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
                return _train(spec, graph, shape, params, config, hardware, run, progress, held,
                              callbacks or [])
            finally:
                distributed.shutdown()
        except Interrupted as exc:
            exc.signal = signals.received or 2
            raise
        except KeyboardInterrupt:
            where = f"; continue with archspec train --resume {resume}" if resume else (
                "before its run folder was made: nothing was saved, start it again")
            by = SIGNAL_NAMES.get(signals.received, "Ctrl-C") if signals.received is not None else "Ctrl-C"
            stopped = Interrupted(f"stopped by {by} {where}")
            stopped.signal = signals.received or 2
            raise stopped from None
        finally:
            for run in held:
                run.unlock()


class StopSignals:
    """While training, SIGTERM (what schedulers, ``timeout`` and container stops send) stops the run
    like Ctrl-C: both raise KeyboardInterrupt in the main thread, and ``received`` says which came."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        self.received = self.received or signum
        raise KeyboardInterrupt

    def __enter__(self) -> "StopSignals":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        import signal

        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _resume_inputs(folder: str, source, options: dict[str, Any], params, config_file, progress: Progress):
    """The locked run, its spec copy, params and options, after refusing options that would make it
    another run."""
    run = Run(Path(folder))
    where = Location(str(folder))
    if not run.path("config.yaml").is_file():
        raise UsageError("not a run folder archspec can resume: it has no config.yaml", where)
    changed = sorted(k for k in options if k not in RESUMABLE_OPTIONS)
    if changed or params or config_file:
        given = [f"--{k.replace('_', '-')}" for k in changed] + (["--set"] if params else []) + (
            ["--config"] if config_file else [])
        raise UsageError(f"--resume continues a run as it was configured; {', '.join(given)} would make it another "
                         f"run (only {', '.join('--' + k for k in RESUMABLE_OPTIONS)} may change; start a new run, "
                         "perhaps with --init from this run's weights)", where)
    if distributed.launched_as_main():  # one process holds the folder; under torchrun the others follow it
        run.lock()
        for leftover in run.clean():
            progress.message(f"removed {leftover.name}, left by an interrupted write")
    saved = run.read_config()
    if saved.get("spec_copy"):
        spec = run.path(saved["spec_copy"])
        _report_spec_changes(run, saved, progress)
    else:  # a run folder from before spec copies: the spec where it was, relative to the folder's parent too
        spec = Path(saved["spec"])
        if not spec.is_absolute() and not spec.is_file() and (run.folder.parent / spec).is_file():
            spec = run.folder.parent / spec
    if source is not None and Path(str(source)).resolve() != Path(saved["spec"]).resolve():
        raise UsageError(f"--resume trains this run's own spec ({saved['spec']}); leave out the SPEC argument", where)
    train_options = {k: v for k, v in saved["train"].items() if v is not None}
    check_options(train_options, Location(str(run.path("config.yaml"))))
    return run, str(spec), saved["params"], {**train_options, **options}


def _report_spec_changes(run: Run, saved: dict[str, Any], progress: Progress) -> None:
    original = Path(saved["spec"])
    copy = run.path(saved["spec_copy"])
    try:
        differs = original.is_file() and original.read_bytes() != copy.read_bytes()
    except OSError:
        differs = False
    if differs:
        progress.message(f"note: {original} has changed since this run started; resuming with the spec as "
                         f"trained ({copy})")


CURVES_SHARE = 0.1  # of a run's time, at most, spent redrawing curves.png


@dataclass
class CurvesRedraw:
    """curves.png, kept up to date without slowing a run down.

    Drawing the three panels costs about 0.4 s of a CPU core, more than an epoch of a small net
    (LeNet-5 on the digits: 0.3 s), so redrawing after every epoch more than doubled such a run. The
    picture is redrawn after an epoch when the time since the last drawing is at least
    (1 - CURVES_SHARE) / CURVES_SHARE times what that drawing cost, and always at the end of a run
    (finished, stopped early or interrupted), so the last picture shows every epoch.
    """

    path: Path
    metric: str
    drawn_epoch: int = -1
    ended_at: float = 0.0
    cost: float = 0.0

    def after_epoch(self, trainer: Trainer) -> None:
        since = time.perf_counter() - self.ended_at
        if since * CURVES_SHARE >= self.cost * (1 - CURVES_SHARE):
            self.draw(trainer)

    def draw(self, trainer: Trainer) -> None:
        if trainer.epoch == self.drawn_epoch:
            return
        from .plots import save_curves

        started = time.perf_counter()
        save_curves(trainer.history, self.path, best_epoch=trainer.best_epoch, metric=self.metric)
        self.ended_at = time.perf_counter()
        self.cost, self.drawn_epoch = self.ended_at - started, trainer.epoch


def _train(spec, graph, shape, params, config, hardware, resumed: Run | None, progress, held: list[Run],
           callbacks: list) -> Outcome:
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

    spec_path = str(Path(spec.file).resolve()) if spec.document.path else spec.file
    metadata = weights_metadata(graph, spec_path, params, classes, mean, std, config)
    run: Run | None = resumed
    curves: CurvesRedraw | None = None

    def on_epoch(trainer: Trainer, is_best: bool) -> None:
        nonlocal curves
        assert run is not None, "epochs end only after the run folder exists"
        if is_best:
            save_weights(trainer.model, run.path("best.safetensors"), metadata)
        save_weights(trainer.model, run.path("last.safetensors"), metadata)
        save_checkpoint(run.path("checkpoint.safetensors"), trainer.state())
        run.write_metrics(trainer.history)
        if curves is None:
            curves = CurvesRedraw(run.path("curves.png"), trainer.monitor.metric)
        curves.after_epoch(trainer)

    from .loggers import run_callbacks

    trainer = Trainer(model, config, splits.train, splits.val, mean, std, hardware, batch_size,
                      outputs_are_logits=logits, progress=progress, on_epoch=on_epoch,
                      callbacks=list(callbacks))  # the run's own come once its folder exists
    wanted = Path(config.out) if config.out else Path("runs") / folder_name(graph.name)
    launch = distributed.run_id()
    if resumed is None and launch:  # an elastic restart, or a preempted job started again
        mine = folder_of_launch(wanted, launch) if distributed.is_main() else None
        found = distributed.broadcast_text(str(mine or ""), hardware.device)
        if found:
            resumed = Run(Path(found))
            if distributed.is_main():
                resumed.lock()
                held.append(resumed)
                resumed.clean()
    has_checkpoint = resumed is not None and distributed.broadcast_text(
        str(distributed.is_main() and resumed.path("checkpoint.safetensors").exists()), hardware.device) == "True"
    if resumed is not None and has_checkpoint:
        checkpoint = resumed.path("checkpoint.safetensors")
        if not checkpoint.exists():
            raise ArchspecError(f"rank {distributed.rank()} cannot see {checkpoint}, which rank 0 resumes from: "
                                "the run folder must be on storage every node sees (--out)", Location(str(checkpoint)))
        state = load_checkpoint(checkpoint)
        check_training_state(state, trainer.model, trainer.optimizer, Location(str(checkpoint)))
        trainer.load_state(state)
        if trainer.epoch > config.epochs:
            raise UsageError(f"this run has already trained {trainer.epoch} epochs; give --epochs above that to "
                             "train on", Location(str(resumed.folder)))
        progress.message(f"resuming after epoch {trainer.epoch} of {config.epochs}"
                         + (f" (restart {distributed.restart_count()})" if distributed.restart_count() else ""))
    elif resumed is not None:
        progress.message("resuming from the start (no epoch had finished): same seed, same run")

    def first_files(draft: Run) -> None:  # everything a run needs to be resumed, before its first epoch
        copy = draft.copy_spec(spec)
        draft.write_config({
            "spec": spec_path, "spec_copy": copy, "spec_files": draft.spec_digests(),
            "name": graph.name, "params": params, "input": list(shape),
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
        save_checkpoint(draft.path("checkpoint.safetensors"), trainer.state())
        draft.write_metrics([])

    run = resumed
    if run is None:
        created = ""
        if distributed.is_main():
            run = Run.create(wanted, first_files)
            held.append(run)
            created = str(run.folder)
        decided = Path(distributed.broadcast_text(created, hardware.device))
        run = run or Run(decided)
    folder = run.folder
    trainer.callbacks = run_callbacks(config, folder, metadata) + trainer.callbacks
    resume_hint = f"continue with archspec train --resume {folder}"
    try:
        for note in notes:
            progress.message(note)
        progress.message(f"run folder: {folder}  ({len(splits.train)} learning / {len(splits.val)} validation / "
                         f"{len(splits.test)} test images, {len(classes)} classes; {hardware.device}, "
                         f"{hardware.precision}, batch {batch_size})")
        try:
            result = trainer.fit()
        except KeyboardInterrupt:  # between epochs, outside the loop's own handler
            raise Interrupted(f"interrupted after epoch {trainer.epoch}") from None
    except Interrupted as exc:
        saved = ""
        if distributed.is_main():
            try:
                save_weights(trainer.model, run.path("interrupted.safetensors"), metadata)
                saved = f": weights saved to {run.path('interrupted.safetensors')}"
                if curves is not None:
                    curves.draw(trainer)
            except (WriteError, KeyboardInterrupt):
                saved = saved or ": the weights of the unfinished epoch could not be saved"
        raise Interrupted(f"{exc.problem.message}{saved}; {resume_hint} (from the end of epoch {trainer.epoch})") \
            from None
    except NonFiniteLoss as exc:
        raise NonFiniteLoss(f"{exc.problem.message}; run folder {folder}") from None
    except WriteError as exc:
        raise WriteError(f"{exc.problem.message}; the last checkpoint (epoch {trainer.epoch}) is whole: free some "
                         f"space, then {resume_hint}", exc.problem.location) from None

    if curves is not None:
        curves.draw(trainer)  # the epochs since the last drawing
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
    read_info(weights).check_fits(graph)  # the trainer's metadata fits this spec before any tensor is read
    model = compile_graph(graph, seed=0)
    load_weights(model, weights)
    return graph, model.train(False)


def evaluate(source, weights: str, data: str | None = None, split: str | None = None,
             params: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Test figures of saved weights on a data set (all of it, or one split of it as the run made it)."""
    weights = str(resolve_weights(weights))  # a run folder: its best.safetensors
    graph, model = _model_for(source, params, weights)
    info = read_info(weights)
    classes, mean, std = info.classes, info.mean, info.std
    config = resolve(None, None, {k: v for k, v in (options or {}).items() if v is not None})
    shape = image_shape(graph)
    if data is None:  # the run's own held-out split, cut exactly as training cut it
        data = info.data
        split = split or "test"
        fractions = info.split or (0.7, 0.15, 0.15)
        seed = info.seed or 0
        splits = load_splits(data, shape, fractions=fractions, seed=seed)
        dataset = getattr(splits, split)
    else:
        dataset = open_data(data, shape, classes=classes)
        if split and split != "all":
            dataset = getattr(load_splits(data, shape, fractions=tuple(config.split), seed=config.seed), split)
    classes = classes or dataset.classes
    check_classes(graph, classes)
    if mean is None or std is None:  # weights saved without their normalisation
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
    centre = torch.tensor(mean or [0.0] * shape[0]).view(1, -1, 1, 1)
    scale = torch.tensor(std or [1.0] * shape[0]).view(1, -1, 1, 1)
    batch = torch.stack([load_image(path, shape, fit) for path in images])  # (N, C, H, W) in [0, 1]
    with torch.no_grad():
        outputs = model((batch - centre) / scale).float()
    already_probabilities = graph.nodes and graph.nodes[-1].type == "softmax"
    probabilities = outputs if already_probabilities else torch.softmax(outputs, dim=1)
    k = min(top, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    return [{"image": str(path), "top": [{"class": classes[i], "probability": float(p)}
                                           for p, i in zip(v.tolist(), ix.tolist())]}
            for path, v, ix in zip(images, values, indices)]
