"""The training loop: works on any nn.Module, keeps the device busy, and can be stopped and resumed.

Read it top to bottom: ``Hardware`` picks the device and precision; ``Batches`` serves shuffled
batches (from a tensor already on the device when the data fits, else through a DataLoader with
pinned memory); ``Trainer.fit`` runs the epochs, validates, checkpoints, stops early, and
``Trainer.evaluate`` gives the test report. Everything random (shuffling, augmentation, dropout)
draws from generators whose state is in the checkpoint, so a resumed run on the CPU ends with the
same metrics as an uninterrupted one. Under torchrun every process trains its share of each
global batch and DistributedDataParallel averages the gradients; only rank 0 writes files.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ArchspecError, UsageError
from .augment import Augment, AugmentedView, augment_batch
from .callbacks import Callback
from .config import TrainConfig, worker_count
from ..data.labelled import LabelledImages, collate
from .monitor import Monitor
from . import distributed


class NonFiniteLoss(ArchspecError):
    """The loss became NaN or infinite: training stops, the last good checkpoint stays."""


# ------------------------------------------------------------------ hardware


@dataclass
class Hardware:
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype, None for full fp32
    scaler: bool  # fp16 needs loss scaling; bf16 and fp32 do not
    channels_last: bool

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]


def pick_hardware(config: TrainConfig, local_rank: int = 0) -> Hardware:
    """The device, autocast dtype and memory format the config asks for, or the best available."""
    wanted = config.device
    if wanted == "auto":
        if torch.cuda.is_available():
            wanted = f"cuda:{local_rank}"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            wanted = "mps"
        else:
            wanted = "cpu"
    device = torch.device(wanted)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {wanted}: CUDA is not available on this machine (try --device cpu)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device mps: MPS is not available on this machine (try --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {wanted}: this machine has {torch.cuda.device_count()} CUDA device(s)")

    precision = config.precision
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "mps":
            precision = "fp16"
        else:
            precision = "fp32"  # CPU autocast is slower than fp32 for convolutions on most CPUs
    amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    channels_last = device.type == "cuda" if config.channels_last == "auto" else bool(config.channels_last)
    return Hardware(device, amp_dtype, scaler=amp_dtype is torch.float16 and device.type == "cuda",
                    channels_last=channels_last)


# ------------------------------------------------------------------ losses and metrics


def make_loss(config: TrainConfig, classes: int, outputs_are_logits: bool) -> Callable:
    """loss(outputs, labels) -> scalar mean; targets are class indices, one-hot for mae/mse/bce."""
    if config.loss == "cross_entropy":
        if not outputs_are_logits:  # a softmax head that could not be taken off: work on its log
            return lambda out, y: F.nll_loss(torch.log(out.float().clamp_min(1e-12)), y)
        return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=config.label_smoothing)

    def one_hot(y):
        return F.one_hot(y, classes).float()

    if config.loss == "bce":
        if outputs_are_logits:
            return lambda out, y: F.binary_cross_entropy_with_logits(out.float(), one_hot(y))
        return lambda out, y: F.binary_cross_entropy(out.float().clamp(1e-7, 1 - 1e-7), one_hot(y))
    if config.loss == "mae":
        return lambda out, y: F.l1_loss(out.float(), one_hot(y))
    return lambda out, y: F.mse_loss(out.float(), one_hot(y))


@dataclass
class Tally:
    """Sums over an epoch, kept on the device so the loop never waits for a number."""

    classes: int
    top_k: int
    device: torch.device
    loss_sum: torch.Tensor = None
    correct: torch.Tensor = None
    correct_k: torch.Tensor = None
    confusion: torch.Tensor = None  # (true, predicted) counts
    count: int = 0

    def __post_init__(self):
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        self.loss_sum, self.correct, self.correct_k = zero.clone(), zero.clone(), zero.clone()
        self.confusion = torch.zeros(self.classes, self.classes, dtype=torch.int64, device=self.device)

    def add(self, loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor, confusion: bool = False):
        n = labels.shape[0]
        if n == 0:
            return
        self.loss_sum += loss.detach().double() * n
        predicted = outputs.detach().argmax(dim=1)
        self.correct += (predicted == labels).sum()
        if self.top_k > 1:  # top-k costs a sort per step: validation and test only
            k = min(self.top_k, outputs.shape[1])
            self.correct_k += (outputs.detach().topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        if confusion:
            self.confusion += torch.bincount(labels * self.classes + predicted,
                                             minlength=self.classes ** 2).view(self.classes, self.classes)
        self.count += n

    def reduce(self) -> None:
        """Sum the tallies of every process (torchrun)."""
        if distributed.world_size() > 1:
            packed = torch.stack([self.loss_sum, self.correct, self.correct_k,
                                  torch.tensor(float(self.count), dtype=torch.float64, device=self.device)])
            distributed.all_reduce(packed)
            distributed.all_reduce(self.confusion)
            self.loss_sum, self.correct, self.correct_k, count = packed.unbind()
            self.count = int(count.item())

    def results(self) -> dict[str, float | None]:
        n = max(self.count, 1)
        return {"loss": float(self.loss_sum) / n, "acc": float(self.correct) / n,
                "top_k": float(self.correct_k) / n if self.top_k > 1 else None}


def reported_top_k(config: TrainConfig, classes: int) -> int:
    """The k of the top-k accuracy reported beside top-1, or 1 (none) when k classes are all or most of them:
    with 5 guesses among 2 classes every answer is right, and "top-5 100%" would only mislead."""
    return config.top_k if classes > config.top_k else 1


# ------------------------------------------------------------------ batches


class Batches:
    """Shuffled batches of one split, already on the device, augmented and normalised.

    Data held in memory that fits under ``device_data_bytes`` is copied to the device once and
    batched by indexing there (no loader, no host copies). Otherwise a DataLoader feeds pinned
    batches copied with non_blocking, augmented in its workers or on the device.
    """

    def __init__(self, data: LabelledImages, config: TrainConfig, hardware: Hardware, batch_size: int,
                 mean: list[float], std: list[float], train: bool):
        self.data, self.config, self.hardware, self.train = data, config, hardware, train
        self.batch_size = batch_size
        device = hardware.device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self.augment = Augment.from_dict(config.augment) if train else Augment()
        in_memory = data.images is not None
        fits = in_memory and data.images.numel() * 4 <= config.device_data_bytes
        self.on_device = in_memory and (config.data_on_device is True or (config.data_on_device == "auto" and fits))
        if self.on_device:
            self.images = data.images.to(device)
            self.labels = data.labels.to(device)
        self.augment_on = config.augment_on
        if self.augment_on == "auto":
            self.augment_on = "device" if in_memory else "workers"

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)  # the last, smaller batch counts: it is trained on

    def epoch(self, epoch: int, generator: torch.Generator, device_generator: torch.Generator | None):
        """Yield (images (b, C, H, W) normalised on the device, labels (b,), size) for one epoch.

        Under torchrun b is this process's part of the global batch of ``size`` images
        (``distributed.shard``); b may be 0 at the last batch, and the process still steps.
        """
        n = len(self.data)
        order = torch.randperm(n, generator=generator) if self.train else torch.arange(n)
        rank, world = distributed.rank(), distributed.world_size()
        batches = distributed.shard(order, self.batch_size, rank, world)
        sizes = [min(self.batch_size, n - start) for start in range(0, n, self.batch_size)]
        device = self.hardware.device
        for (images, labels), size in zip(self._host_or_device_batches(batches, epoch), sizes):
            if labels.numel() == 0 and world == 1:  # every image of the batch was unreadable and skipped
                continue
            if labels.numel() == 0:  # nothing to learn from here, but the other processes wait for this step
                images, labels = self._nothing()
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if self.train and self.augment.active and self.augment_on == "device":
                images = augment_batch(images, self.augment, device_generator)
            images = (images - self.mean) / self.std  # (B, C, H, W)
            if self.hardware.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, labels, size

    def _host_or_device_batches(self, batches: list[torch.Tensor], epoch: int):
        pin = self.hardware.device.type == "cuda"
        if self.on_device:
            for indices in batches:
                indices = indices.to(self.images.device)
                yield self.images[indices], self.labels[indices]
            return
        augment_in_workers = self.train and self.augment.active and self.augment_on == "workers"
        if self.data.images is not None and not augment_in_workers:
            for indices in batches:  # in host memory: index, pin, copy without waiting
                images, labels = self.data.images[indices], self.data.labels[indices]
                yield (images.pin_memory(), labels.pin_memory()) if pin else (images, labels)
            return
        source = self.data
        if augment_in_workers:
            source = AugmentedView(self.data, self.augment, base_seed=self.config.seed)
            source.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(source, batch_sampler=[b.tolist() for b in batches if len(b)],
                                             num_workers=worker_count(self.config), collate_fn=collate, pin_memory=pin)
        loaded = iter(loader)
        for indices in batches:  # an empty share (the last batch, split among processes) reads nothing
            yield next(loaded) if len(indices) else self._nothing()

    def _nothing(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.empty(0, *self.data.shape), torch.empty(0, dtype=torch.int64)


# ------------------------------------------------------------------ optimisation


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Frozen parameters are included: their gradient stays None, so the optimizer skips them until
    # a phase of `unfreeze` lets them train, without rebuilding the optimizer.
    params = list(model.parameters())
    if config.optimizer == "sgd":
        momentum = 0.9 if config.momentum is None else config.momentum
        if config.nesterov and momentum == 0:
            raise UsageError("nesterov needs a momentum above 0")
        return torch.optim.SGD(params, lr=config.lr, momentum=momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum or 0.0,
                                   weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate at optimizer step ``step`` (0-based), as a fraction of ``config.lr``."""
    total = max(1, config.epochs * steps_per_epoch)
    warm = config.warmup_epochs * steps_per_epoch if config.schedule != "onecycle" else 0
    phases = sorted(config.unfreeze, key=lambda u: u.epoch)

    def factor(step: int) -> float:
        epoch = step // steps_per_epoch + 1  # 1-based, as printed
        phase = math.prod(u.lr_factor for u in phases if u.epoch <= epoch)
        if step < warm:
            return phase * (0.1 + 0.9 * step / warm)
        if config.schedule == "step":  # decay_rate: lose that fraction every step_size epochs
            return phase * (1 - config.decay_rate) ** ((epoch - 1) // config.step_size)
        if config.schedule == "cosine":
            return phase * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        if config.schedule == "onecycle":  # rise from 1/25 over the first 30%, then anneal to 1/10^4
            rise = 0.3 * total
            if step < rise:
                return phase * (1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * step / rise)))
            t = (step - rise) / max(1, total - rise)
            return phase * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * t)))
        return phase

    return factor


def set_trainable(model: nn.Module, patterns: list[str], trainable: bool) -> list[str]:
    """Let parameters of modules matching ``patterns`` (fnmatch on dotted paths) train or not.

    Returns the module paths touched; a pattern that matches nothing is a UsageError.
    """
    import fnmatch

    paths = [name for name, module in model.named_modules() if name and any(True for _ in module.parameters(False))]
    touched = []
    for pattern in patterns:
        hits = [p for p in paths if fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern + ".*")]
        if not hits:
            from ..layers import did_you_mean

            raise UsageError(f"'{pattern}' matches no layer with parameters" + did_you_mean(pattern, paths))
        for path in hits:
            for parameter in model.get_submodule(path).parameters(recurse=False):
                parameter.requires_grad_(trainable)
        touched += hits
    return touched


def _hold_frozen_norm_stats(model: nn.Module) -> None:
    # A frozen batch-norm layer keeps its running statistics too, as Keras does for trainable=False.
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.train(False)


# ------------------------------------------------------------------ the trainer


class Interrupted(ArchspecError):
    """Ctrl-C: the weights so far are saved, and the run can be resumed from its last checkpoint."""


@dataclass
class Progress:
    """What the trainer tells whoever shows its progress; this default shows nothing."""

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, logs: dict[str, Any] | None = None) -> None: ...  # logs: see Trainer._step_logs
    def end_epoch(self, row: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


@dataclass
class Result:
    history: list[dict[str, Any]]
    best_epoch: int
    stopped: str  # "completed", "early stopping at epoch N"
    test: dict[str, Any] | None = None


@dataclass
class Trainer:
    """Trains ``model`` (any nn.Module returning (B, classes)) on ``train``, validating on ``val``.

    ``on_epoch`` is called (on rank 0) after each epoch with the trainer, so that a run folder can
    save weights, checkpoint and plots; ``is_best`` says whether this epoch is the best so far.
    """

    model: nn.Module
    config: TrainConfig
    train: LabelledImages
    val: LabelledImages
    mean: list[float]
    std: list[float]
    hardware: Hardware
    batch_size: int
    outputs_are_logits: bool = True
    progress: Progress = field(default_factory=Progress)
    on_epoch: Callable[["Trainer", bool], None] | None = None
    callbacks: list[Callback] = field(default_factory=list)  # called on rank 0, after on_epoch

    def __post_init__(self):
        config, hardware = self.config, self.hardware
        self.classes = len(self.train.classes)
        self.model.to(hardware.device)
        if config.sync_batchnorm and distributed.world_size() > 1:
            distributed.convert_sync_batchnorm(self.model, hardware.device.type)
        if hardware.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.forward = self.model
        self.ddp = None  # the DistributedDataParallel wrapper under torchrun
        if distributed.world_size() > 1:
            self.forward = self.ddp = distributed.wrap(self.model, hardware.device)
        if config.compile:
            self.forward = torch.compile(self.forward)
        self.optimizer = make_optimizer(self.model, config)
        self.scaler = torch.amp.GradScaler("cuda", enabled=hardware.scaler)
        self.loss_fn = make_loss(config, self.classes, self.outputs_are_logits)
        self.train_batches = Batches(self.train, config, hardware, self.batch_size, self.mean, self.std, train=True)
        self.val_batches = Batches(self.val, config, hardware, self.batch_size, self.mean, self.std, train=False)
        self.factor = lr_factor(config, max(1, len(self.train_batches)))
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.augment_generator = torch.Generator(device=hardware.device).manual_seed(config.seed + 1)
        torch.manual_seed(config.seed)  # dropout
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.history: list[dict[str, Any]] = []
        self.monitor = Monitor.for_config(config)  # which epoch is best, and how long since it improved
        self.top_k = reported_top_k(config, self.classes)
        self.log_every = config.log_every if config.log_every != "auto" else (
            1 if hardware.device.type == "cpu" else 20)  # a reading of the running figures waits for the device
        self.stop_reason: str | None = None  # set by stop(), from a callback
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None  # the latest training batch

    @property
    def best_epoch(self) -> int:
        return self.monitor.best_epoch or self.epoch

    def stop(self, reason: str = "stopped by a callback") -> None:
        """Ask training to stop after the current epoch (Keras' ``model.stop_training = True``)."""
        self.stop_reason = reason

    # --------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        rng = {"cpu": torch.get_rng_state(), "shuffle": self.shuffle.get_state(),
               "augment": self.augment_generator.get_state()}
        if self.hardware.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.hardware.device)
        return {"epoch": self.epoch, "step": self.step, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng,
                "history": self.history,
                "best": [self.monitor.best_score, self.monitor.best_epoch] if self.monitor.best_epoch else None,
                "bad_epochs": self.monitor.bad_epochs,
                "trainable": [n for n, p in self.model.named_parameters() if p.requires_grad]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        names = set(state["trainable"])
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(name in names)
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["cpu"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        if state["rng"]["augment"].numel() == self.augment_generator.get_state().numel():
            self.augment_generator.set_state(state["rng"]["augment"])
        if "cuda" in state["rng"] and self.hardware.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.hardware.device)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        if state["best"]:
            self.monitor.best_score, self.monitor.best_epoch = float(state["best"][0]), int(state["best"][1])
        self.monitor.bad_epochs = int(state["bad_epochs"])

    # --------------------------------------------------------------- the loop

    def fit(self) -> Result:
        config = self.config
        stopped = "completed"
        main = distributed.is_main()
        try:
            if self._patience_spent():  # a resumed run that had stopped early stays stopped
                stopped = self._early_stop_text(self.epoch)
                self.progress.message(f"{stopped}; not training further")
                return Result(self.history, self.best_epoch, stopped)
            for callback in self.callbacks if main else ():
                callback.on_train_begin(self)
            for epoch in range(self.epoch + 1, config.epochs + 1):
                self._enter_phase(epoch)
                row = self._train_epoch(epoch)
                row.update(self._validate())
                self.epoch = epoch
                self.history.append(row)
                is_best = self.monitor.update(row)
                if self.on_epoch and main:
                    self.on_epoch(self, is_best)
                for callback in self.callbacks if main else ():
                    callback.on_epoch_end(self, row)
                self.progress.end_epoch(row)
                if self._patience_spent():
                    stopped = self._early_stop_text(epoch)
                elif self._stop_requested():
                    stopped = f"{self.stop_reason or 'stopped by a callback'} at epoch {epoch}"
                if stopped != "completed":
                    self.progress.message(stopped)
                    break
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted during epoch {self.epoch + 1}") from None
        finally:
            self.progress.close()
        result = Result(self.history, self.best_epoch, stopped)
        for callback in self.callbacks if main else ():
            callback.on_train_end(self, result)
        return result

    def _patience_spent(self) -> bool:
        es = self.config.early_stopping
        return bool(es) and self.monitor.bad_epochs >= es.patience

    def _early_stop_text(self, epoch: int) -> str:
        return (f"early stopping at epoch {epoch}: {self.monitor.metric} has not improved "
                f"for {self.monitor.bad_epochs} epochs")

    def _stop_requested(self) -> bool:
        """Whether a callback asked to stop; under torchrun, whether one did on rank 0 (all agree)."""
        if distributed.world_size() == 1:
            return self.stop_reason is not None
        flag = torch.tensor([float(self.stop_reason is not None)], device=self.hardware.device)
        distributed.all_reduce(flag)
        return bool(flag.item())

    def _enter_phase(self, epoch: int) -> None:
        for phase in self.config.unfreeze:
            if phase.epoch == epoch:
                touched = set_trainable(self.model, phase.layers, True)
                self.progress.message(f"epoch {epoch}: unfreezing {len(touched)} layer(s) "
                                      f"({', '.join(phase.layers)}), learning rate × {phase.lr_factor:g}")

    def _set_lr(self) -> float:
        lr = self.config.lr * self.factor(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        hardware = self.hardware
        self.model.train()
        _hold_frozen_norm_stats(self.model)
        if not any(p.requires_grad for p in self.model.parameters()):
            raise UsageError("every parameter is frozen: nothing would train (check freeze: and trainable:)")
        tally = Tally(self.classes, 1, hardware.device)
        self.progress.start_epoch(epoch, self.config.epochs, len(self.train_batches))
        check_every = 1 if hardware.device.type == "cpu" else 20  # a check waits for the device
        lr = self._set_lr()
        started = time.perf_counter()
        batches = len(self.train_batches)
        main = distributed.is_main()
        for i, (images, labels, size) in enumerate(self.train_batches.epoch(epoch, self.shuffle,
                                                                            self.augment_generator)):
            lr = self._set_lr()
            self.optimizer.zero_grad(set_to_none=True)
            loss, outputs = self._learn(images, labels, size)
            if i % check_every == 0 and not torch.isfinite(loss):
                self._non_finite(loss, epoch, i)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.step += 1
            tally.add(loss, outputs, labels)
            self.batch = images, labels  # for loggers: what the model saw, (B, C, H, W) normalised
            if i == 0 or (i + 1) % self.log_every == 0 or i + 1 == batches:
                logs = self._step_logs(epoch, i + 1, batches, loss, tally, lr, started)
                self.progress.advance(logs)
                for callback in self.callbacks if main else ():
                    callback.on_step_end(self, logs)
            else:
                self.progress.advance()
        if hardware.device.type == "cuda":
            torch.cuda.synchronize(hardware.device)
        seconds = time.perf_counter() - started
        tally.reduce()
        figures = tally.results()
        if not math.isfinite(figures["loss"]):
            self._non_finite(torch.tensor(figures["loss"]), epoch, len(self.train_batches) - 1)
        return {"epoch": epoch, "train_loss": figures["loss"], "train_acc": figures["acc"], "lr": lr,
                "time_s": seconds, "images_per_s": tally.count / seconds if seconds > 0 else None}

    def _learn(self, images: torch.Tensor, labels: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of this process's part of a global batch of ``size`` images.

        Returns (mean loss, outputs). Each pass's loss is weighted by its images' part of the global
        batch (× processes, which DDP divides by), so the gradients add up to the global batch's
        mean gradient however the images fall into processes and passes. A part larger than
        ``micro_batch`` is put through in several passes whose gradients accumulate; every process
        makes the same number of passes (some may be empty), and only the last one lets DDP
        average the gradients.
        """
        hardware, world = self.hardware, distributed.world_size()
        passes = distributed.passes(size, world, self.config.micro_batch)
        step = max(1, -(-len(labels) // passes))
        losses, outputs_seen = [], []
        for k in range(passes):
            x, y = images[k * step:(k + 1) * step], labels[k * step:(k + 1) * step]
            last = k == passes - 1
            with (self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()):
                with torch.autocast(hardware.device.type, dtype=hardware.amp_dtype or torch.float32,
                                    enabled=hardware.amp_dtype is not None):
                    outputs = self.forward(x)
                    # an empty pass still runs: DDP's gradient average waits for every process
                    loss = self.loss_fn(outputs, y) if y.numel() else outputs.float().sum() * 0.0
                weight = len(y) * world / size if world > 1 else len(y) / max(1, len(labels))
                self.scaler.scale(loss * weight if weight != 1 else loss).backward()
            losses.append(loss.detach() * len(y))
            outputs_seen.append(outputs.detach())
        if passes == 1:
            return loss, outputs
        return torch.stack(losses).sum() / max(1, len(labels)), torch.cat(outputs_seen)

    def _non_finite(self, loss: torch.Tensor, epoch: int, batch: int):
        kept = (f"the last good checkpoint (epoch {self.epoch}) is kept" if self.epoch
                else "no epoch completed, so no checkpoint was written")
        raise NonFiniteLoss(f"the loss became {float(loss.detach())} at epoch {epoch}, batch {batch + 1}: training stopped "
                            f"and {kept}; try a lower learning rate (now {self.config.lr:g})")

    def _step_logs(self, epoch: int, batch: int, batches: int, loss: torch.Tensor, tally: "Tally", lr: float,
                   started: float) -> dict[str, Any]:
        """What a step reports (this process's share): its loss, the epoch's running figures, the rate."""
        seconds = time.perf_counter() - started
        count = max(tally.count, 1)
        return {"epoch": epoch, "batch": batch, "batches": batches, "step": self.step,
                "loss": float(loss.detach()), "running_loss": float(tally.loss_sum) / count,
                "running_acc": float(tally.correct) / count, "lr": lr,
                "images_per_s": tally.count / seconds if seconds > 0 else None}

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        if len(self.val) == 0:
            return {"val_loss": None, "val_acc": None, "val_top5": None}
        distributed.broadcast_buffers(self.model)  # every process judges rank 0's model (batch-norm statistics)
        figures = self.evaluate(self.val_batches)
        return {"val_loss": figures["loss"], "val_acc": figures["acc"], "val_top5": figures["top_k"]}

    @torch.no_grad()
    def evaluate(self, batches: "Batches", confusion: bool = False) -> dict[str, Any]:
        """Loss, accuracy, top-k and (optionally) the confusion matrix over one split."""
        hardware = self.hardware
        self.model.train(False)
        tally = Tally(self.classes, self.top_k, hardware.device)
        for images, labels, _ in batches.epoch(0, self.shuffle, None):
            if labels.numel() == 0:
                continue
            with torch.autocast(hardware.device.type, dtype=hardware.amp_dtype or torch.float32,
                                enabled=hardware.amp_dtype is not None):
                outputs = self.model(images)
                loss = self.loss_fn(outputs, labels)
            tally.add(loss, outputs.float(), labels, confusion=confusion)
        tally.reduce()
        figures = tally.results()
        if confusion:
            figures["confusion"] = tally.confusion.cpu().tolist()
            figures["count"] = tally.count
        return figures

    def test_report(self, test: LabelledImages) -> dict[str, Any]:
        """The test split's figures with per-class accuracy and the confusion matrix."""
        batches = Batches(test, self.config, self.hardware, self.batch_size, self.mean, self.std, train=False)
        figures = self.evaluate(batches, confusion=True)
        matrix = figures["confusion"]
        per_class = {name: (row[i] / sum(row) if sum(row) else None)
                     for i, (name, row) in enumerate(zip(test.classes, matrix))}
        report = {"images": figures["count"], "loss": figures["loss"], "accuracy": figures["acc"]}
        if self.top_k > 1:
            report[f"top{self.top_k}_accuracy"] = figures["top_k"]
        return {**report, "per_class_accuracy": per_class, "classes": list(test.classes), "confusion": matrix}
