"""Several processes, one run: DistributedDataParallel under torchrun, with no launcher of our own.

``torchrun`` (torch.distributed.elastic) starts the processes with RANK, WORLD_SIZE, LOCAL_RANK
and TORCHELASTIC_RUN_ID set; ``init_from_env`` joins them (NCCL on CUDA, gloo on the CPU).
``archspec train --devices N`` and ``--nodes N --node-rank R --master ADDR:PORT`` only build a
torchrun command line (``torchrun_command``) and run it. Outside torchrun every function here
answers as a single process would.

How the work is shared (``shard``): every process walks the same global batches, in the same
order drawn from the seed each epoch, and takes every world-th sample of each, so the global
batch does not depend on the number of processes; the last, smaller batch is kept, and a
process whose share of it is empty still takes part in the collective calls. Decisions that
depend on files (which run folder, whether to resume, whether best weights exist) are taken by
rank 0 and broadcast.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import torch
from torch import nn


def world_size() -> int:
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def launched_as_main() -> bool:
    """Rank 0 as torchrun numbered it; still true after the process group is closed."""
    return int(os.environ.get("RANK", 0)) == 0


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def run_id() -> str | None:
    """The launch's id (torchrun's --rdzv-id): the same on every node and across elastic restarts."""
    value = os.environ.get("TORCHELASTIC_RUN_ID", "")
    return value if value and value != "none" else None


def restart_count() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))


def init_from_env(device_type: str) -> None:
    """Join the process group torchrun describes (once)."""
    if under_torchrun() and not torch.distributed.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank())
        if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
            # torchrun keeps one store for every attempt; under a prefix of its own, a restarted group
            # does not read the addresses that the processes it replaced left there (the restart count
            # agrees within a node; across nodes, `launch` gives each attempt a store instead)
            agent_store = torch.distributed.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                                                     is_master=False, timeout=timedelta(minutes=10))
            store = torch.distributed.PrefixStore(f"archspec/attempt-{restart_count()}", agent_store)
            torch.distributed.init_process_group(backend=backend, store=store, rank=int(os.environ["RANK"]),
                                                 world_size=int(os.environ["WORLD_SIZE"]))
        else:
            torch.distributed.init_process_group(backend=backend)


def shutdown() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce(tensor: torch.Tensor) -> None:
    torch.distributed.all_reduce(tensor)


def barrier() -> None:
    if world_size() > 1:
        torch.distributed.barrier()


def broadcast_text(text: str, device: torch.device, limit: int = 4096) -> str:
    """Rank 0's string on every process (the run folder it chose), sent as bytes, not pickled."""
    if world_size() == 1:
        return text
    encoded = list(text.encode("utf-8")[:limit])
    data = torch.zeros(limit, dtype=torch.uint8, device=device)
    data[:len(encoded)] = torch.tensor(encoded, dtype=torch.uint8, device=device)
    length = torch.tensor([len(encoded)], dtype=torch.int64, device=device)
    torch.distributed.broadcast(length, src=0)
    torch.distributed.broadcast(data, src=0)
    return bytes(data[:int(length)].tolist()).decode("utf-8")


def broadcast_state(model: nn.Module) -> None:
    """Rank 0's parameters and buffers on every process (weights rank 0 alone has read)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)


def broadcast_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every process, before they evaluate."""
    if world_size() == 1:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer.data, src=0)


# ------------------------------------------------------------------ sharding


def shard(order: torch.Tensor, batch_size: int, rank: int, world: int) -> list[torch.Tensor]:
    """This process's part of each global batch of ``order`` (the epoch's sample order).

    The global batches are ``order[0:B], order[B:2B], ...``, the last one smaller when B does not
    divide the split; process ``rank`` takes every ``world``-th sample of each, from its rank on.
    Across the processes every sample is taken exactly once, with no padding (unlike
    DistributedSampler, which repeats samples to even the shards), so metrics summed over the
    processes are those of the whole split. A share may be empty (a last batch smaller than the
    number of processes): the process still steps with the others.
    """
    n = len(order)
    return [order[start:min(start + batch_size, n)][rank::world] for start in range(0, n, batch_size)]


def passes(size: int, world: int, micro_batch: int | None) -> int:
    """Forward/backward passes each process makes for a global batch of ``size`` (gradient accumulation).

    The same on every process: enough for the largest share, ceil(size / world), to go through
    in parts of at most ``micro_batch`` images.
    """
    if not micro_batch:
        return 1
    largest = -(-size // world)
    return max(1, -(-largest // micro_batch))


# ------------------------------------------------------------------ batch norm across processes


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch, on any device.

    torch.nn.SyncBatchNorm serves CUDA (and is used there); this one serves gloo on the CPU with
    the same arithmetic: the per-channel sums and counts of every process are added with a
    differentiable all-reduce (torch.distributed.nn), so the gradient flows across processes as
    it would through one batch. An empty share adds zeros and still takes part.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"batch norm expects (N, C, ...) input, got {x.dim()} dimension(s)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        import torch.distributed.nn.functional as dist_nn

        dims = [0] + list(range(2, x.dim()))  # every axis but the channels
        count = torch.tensor([x.numel() / max(1, x.shape[1])], dtype=torch.float64, device=x.device)
        sums = torch.cat([x.double().sum(dims), count])
        sums = dist_nn.all_reduce(sums)
        n = sums[-1]
        mean = sums[:-1] / n
        shape = [1, -1] + [1] * (x.dim() - 2)
        centred = x.double() - mean.view(shape)
        variance = dist_nn.all_reduce((centred * centred).sum(dims)) / n  # two passes: no cancellation
        y = (centred / torch.sqrt(variance + self.eps).view(shape)).to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        # torch's BatchNorm registers these buffers as None only when it keeps no running statistics
        tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if self.track_running_stats and tracked is not None and running_mean is not None and running_var is not None:
            with torch.no_grad():
                tracked.add_(1)
                momentum = (1.0 / float(tracked) if self.momentum is None else self.momentum)
                unbiased = variance * n / (n - 1).clamp_min(1)
                running_mean.mul_(1 - momentum).add_(momentum * mean.to(running_mean.dtype))
                running_var.mul_(1 - momentum).add_(momentum * unbiased.to(running_var.dtype))
        return y


def convert_sync_batchnorm(model: nn.Module, device_type: str) -> nn.Module:
    """Every batch-norm layer of ``model`` synchronised across processes (weights and buffers kept)."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            synced = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats, device=child.running_mean.device
                                   if child.running_mean is not None else None)
            synced.load_state_dict(child.state_dict())
            synced.train(child.training)
            if child.affine:
                synced.weight.requires_grad_(child.weight.requires_grad)
                synced.bias.requires_grad_(child.bias.requires_grad)
            setattr(model, name, synced)
        else:
            convert_sync_batchnorm(child, device_type)
    return model


def wrap(model: nn.Module, device: torch.device):
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


# ------------------------------------------------------------------ launching


def torchrun_command(argv: list[str], devices: int, nodes: int = 1, node_rank: int = 0, master: str | None = None,
                     max_restarts: int = 0, launch_id: str | None = None) -> list[str]:
    """The torchrun command line that runs ``archspec train argv`` on this node.

    One node: what ``--standalone`` does (a c10d rendezvous on a free local port), but keeping
    ``launch_id``. Several: the c10d rendezvous at ``master`` (host:port), which every node's
    launcher joins with the same ``launch_id``.
    The id travels to the workers as TORCHELASTIC_RUN_ID: restarted workers find their run
    folder by it, and a job started again with the same id continues that run.
    """
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={devices}",
               f"--max-restarts={max_restarts}"]
    command += [f"--nnodes={nodes}", f"--node-rank={node_rank}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={master or 'localhost:0'}"]
    command += [f"--rdzv-id={launch_id or uuid.uuid4().hex}", "-m", "archspec", "train", *argv]
    return command


def launch(argv: list[str], devices: int, **torchrun_options) -> int:
    """Run ``archspec train argv`` under torchrun; its exit code.

    torchrun's agents share one store across restarts by default, and on several nodes their
    restart counts can differ, so no prefix per attempt is safe; a store of the group's own for
    each attempt is (https://github.com/pytorch/pytorch/issues/135712).
    """
    environment = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", **os.environ}
    return subprocess.call(torchrun_command(argv, devices, **torchrun_options), env=environment)
