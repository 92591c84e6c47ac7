"""Sharding, synchronised batch norm, run-folder choice and the torchrun command line, in one process.

The multi-process runs (torchrun on gloo, loopback) are in test_distributed_cluster.py.
"""
from __future__ import annotations

import sys

import pytest
import torch

from archspec.train import distributed
from archspec.train.config import TrainConfig
from archspec.train.runs import Run, folder_of_launch, fresh_folder
from archspec.train.trainer import Batches, Hardware
from shared_specs import PLAIN_8X8


@pytest.mark.parametrize("n, batch, world", [(10, 4, 1), (10, 4, 2), (10, 4, 3), (9, 4, 4), (7, 3, 2), (5, 8, 3),
                                             (1, 4, 2), (64, 16, 4), (65, 16, 4), (13, 5, 6)])
def test_shards_take_every_sample_once_and_keep_the_global_batch(n, batch, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n * 7 + world))
    shares = [distributed.shard(order, batch, rank, world) for rank in range(world)]
    taken = torch.cat([b for share in shares for b in share]).tolist()
    assert sorted(taken) == list(range(n))  # none missing, none twice, no padding
    # every process walks the same global batches: together they are the single process's batches
    single = distributed.shard(order, batch, 0, 1)
    assert all(len(share) == len(single) == -(-n // batch) for share in shares)
    for step, whole in enumerate(single):
        together = torch.cat([share[step] for share in shares])
        assert sorted(together.tolist()) == sorted(whole.tolist())
        sizes = [len(share[step]) for share in shares]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


class Recorded(torch.utils.data.Dataset):
    """A file-backed set (images=None) that notes which samples this process read."""

    def __init__(self, n: int):
        self.labels = torch.arange(n) % 3
        self.images = None
        self.shape = (1, 2, 2)
        self.reads: list[int] = []

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.reads.append(int(i))
        return torch.full(self.shape, float(i)), int(self.labels[i])


def _read_by(rank: int, world: int, monkeypatch, n: int = 23, batch: int = 6, epochs: int = 2):
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    data = Recorded(n)
    config = TrainConfig(workers=0, device="cpu")
    hardware = Hardware(torch.device("cpu"), None, scaler=False, channels_last=False)
    batches = Batches(data, config, hardware, batch, [0.0], [1.0], train=True)
    shuffle = torch.Generator().manual_seed(5)
    per_epoch, shares = [], []
    for epoch in range(1, epochs + 1):
        data.reads.clear()
        served = list(batches.epoch(epoch, shuffle, None))
        assert len(served) == len(batches) == -(-n // batch)  # the last, partial batch is served
        per_epoch.append(list(data.reads))
        # the weight of this process's loss, × processes: DDP divides the summed gradients by them
        shares.append([len(labels) * world / size for _, labels, size in served])
        for images, labels, _ in served:  # what was read is what was served
            assert images.shape[1:] == (1, 2, 2) and len(images) == len(labels)
    return per_epoch, shares


def test_each_process_reads_only_its_shard_of_a_streamed_set(monkeypatch):
    world = 4
    reads = [_read_by(rank, world, monkeypatch)[0] for rank in range(world)]
    for epoch in range(2):
        shards = [set(r[epoch]) for r in reads]
        assert all(len(r[epoch]) == len(set(r[epoch])) for r in reads)  # no sample read twice
        assert sum(len(s) for s in shards) == 23 and set().union(*shards) == set(range(23))
    assert reads[0][0] != reads[0][1]  # reshuffled each epoch, from the seed: the same order on every process
    single, _ = _read_by(0, 1, monkeypatch)
    assert [sorted(sum((r[e] for r in reads), [])) for e in range(2)] == [sorted(s) for s in single]


def test_the_loss_share_makes_uneven_shards_average_to_the_global_mean(monkeypatch):
    # 23 samples in batches of 8 over 4 processes: the last batch (7) splits 2, 2, 2, 1
    shares = [_read_by(rank, 4, monkeypatch, n=23, batch=8)[1][0] for rank in range(4)]
    assert shares[0] == [1.0, 1.0, pytest.approx(2 * 4 / 7)] and shares[3][2] == pytest.approx(1 * 4 / 7)
    for step in range(3):  # DDP averages over the 4 processes: the weights of each sample's loss add up to 1
        assert sum(share[step] for share in shares) / 4 == pytest.approx(1.0)
    shares = [_read_by(rank, 4, monkeypatch, n=21, batch=6)[1][0] for rank in range(4)]  # last batch of 3
    assert [share[3] for share in shares] == [pytest.approx(4 / 3)] * 3 + [0.0]


def test_an_empty_share_still_yields_an_empty_batch(monkeypatch):
    monkeypatch.setattr(distributed, "rank", lambda: 2)
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    data = Recorded(4)
    hardware = Hardware(torch.device("cpu"), None, scaler=False, channels_last=False)
    batches = Batches(data, TrainConfig(workers=0), hardware, 4, [0.0], [1.0], train=False)
    served = list(batches.epoch(0, torch.Generator(), None))
    assert [len(labels) for _, labels, _ in served] == [1]
    data = Recorded(2)
    served = list(Batches(data, TrainConfig(workers=0), hardware, 4, [0.0], [1.0], train=False).epoch(0, None, None))
    assert [tuple(images.shape) for images, _, _ in served] == [(0, 1, 2, 2)] and data.reads == []


def test_sync_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    synced = distributed.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3)),
                                                "cpu")
    synced.load_state_dict(plain.state_dict())
    assert isinstance(synced[1], distributed.SyncBatchNorm)
    assert list(synced.state_dict()) == list(plain.state_dict())  # weights files keep their names
    x = torch.randn(5, 2, 6, 6)
    assert torch.allclose(synced(x), plain(x))
    assert torch.allclose(synced[1].running_var, plain[1].running_var)


def test_a_launch_finds_the_run_folder_it_started(tmp_path):
    wanted = tmp_path / "runs" / "net"
    assert folder_of_launch(wanted, "job-1") is None
    first = fresh_folder(wanted)
    Run(first).folder.mkdir(parents=True)
    Run(first).write_config({"spec": "net.yaml", "launch": {"id": "job-1"}})
    second = fresh_folder(wanted)
    second.mkdir()
    Run(second).write_config({"spec": "net.yaml", "launch": {"id": "job-2"}})
    assert second.name == "net-2"
    assert folder_of_launch(wanted, "job-1") == first and folder_of_launch(wanted, "job-2") == second
    assert folder_of_launch(wanted, "job-3") is None


def test_torchrun_command_lines():
    one = distributed.torchrun_command(["net.yaml", "--epochs", "2"], devices=2, launch_id="abc")
    assert one[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in one and "--rdzv-endpoint=localhost:0" in one and "--rdzv-id=abc" in one
    assert one[-6:] == ["-m", "archspec", "train", "net.yaml", "--epochs", "2"]
    many = distributed.torchrun_command(["net.yaml"], devices=4, nodes=2, node_rank=1, master="node001:29500",
                                        max_restarts=3, launch_id="job")
    for flag in ("--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d", "--rdzv-endpoint=node001:29500",
                 "--max-restarts=3", "--rdzv-id=job", "--nproc-per-node=4"):
        assert flag in many
    fresh = {distributed.torchrun_command([], devices=2)[-4] for _ in range(2)}
    assert len(fresh) == 2  # without an id, each launch is a new run


@pytest.mark.parametrize("args, message", [
    (["--nodes", "2"], "--nodes 2 needs --master ADDR:PORT"),
    (["--nodes", "2", "--master", "node001"], "expected ADDR:PORT"),
    (["--nodes", "2", "--node-rank", "2", "--master", "h:1"], "--node-rank 2: expected 0 to 1"),
    (["--nodes", "2", "--master", "h:1"], "--nodes 2 needs --run-id"),
])
def test_launch_options_are_checked_before_anything_starts(invoke, tmp_path, args, message, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(sys, "argv", ["archspec", "train", "net.yaml", *args])
    result = invoke("train", "net.yaml", *args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("size, world, micro, expected", [(10, 1, None, 1), (10, 1, 4, 3), (10, 4, 2, 2), (10, 4, 3, 1),
                                                          (1, 4, 2, 1), (64, 2, 32, 1), (64, 2, 31, 2)])
def test_passes_are_the_same_on_every_process(size, world, micro, expected):
    assert distributed.passes(size, world, micro) == expected


@pytest.mark.slow
def test_accumulated_passes_take_the_same_step_as_one(spec_file, tmp_path):
    from safetensors.torch import load_file

    from archspec.train import session

    spec = str(spec_file(PLAIN_8X8, "plain.yaml"))
    options = {"data": "synthetic:60:4", "epochs": 1, "batch_size": 16, "lr": 0.1, "optimizer": "sgd", "workers": 0,
               "device": "cpu"}
    whole = session.train(spec, {**options, "out": str(tmp_path / "whole")})
    parts = session.train(spec, {**options, "micro_batch": 5, "out": str(tmp_path / "parts")})  # 16 = 5 + 5 + 5 + 1
    a, b = load_file(str(whole.run / "last.safetensors")), load_file(str(parts.run / "last.safetensors"))
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    assert parts.history[0]["train_loss"] == pytest.approx(whole.history[0]["train_loss"], rel=1e-5)
    assert "micro_batch: 5" in (parts.run / "config.yaml").read_text()
