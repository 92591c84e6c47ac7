"""DistributedDataParallel through torchrun: no launcher of our own.

``torchrun --nproc-per-node N -m archspec train ...`` starts N processes with RANK, WORLD_SIZE
and LOCAL_RANK set; ``init_from_env`` joins them (NCCL on CUDA, gloo on the CPU). ``archspec
train --devices N`` only re-executes itself under torchrun. Outside torchrun every function here
answers as a single process would.
"""
from __future__ import annotations

import os
import subprocess
import sys

import torch


def world_size() -> int:
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_from_env(device_type: str) -> None:
    """Join the process group torchrun describes (once)."""
    if under_torchrun() and not torch.distributed.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank())
        torch.distributed.init_process_group(backend=backend)


def shutdown() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce(tensor: torch.Tensor) -> None:
    torch.distributed.all_reduce(tensor)


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


def wrap(model: torch.nn.Module, device: torch.device):
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def launch(devices: int, argv: list[str]) -> int:
    """Run ``archspec train argv`` under torchrun with ``devices`` processes; its exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
               "-m", "archspec", "train", *argv]
    return subprocess.call(command)
