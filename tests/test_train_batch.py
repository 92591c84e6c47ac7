"""batch_size: auto: the memory limit, the data set's limit (enough steps per epoch) and the CPU's knee."""
from __future__ import annotations

import pytest

from archspec import api
from archspec.train.batch import (MIN_STEPS_PER_EPOCH, _StateKept, auto_batch_size, data_limit, fastest_on_cpu,
                                  knee, memory_limit)
from archspec.train.config import resolve

from shared_specs import TINY_DIGITS


def test_the_data_set_limits_the_batch():
    # 1,050 MNIST images once got a batch of 1,024: two steps an epoch, 48.9% after 5 epochs
    assert data_limit(1050) == 32 and 1050 // data_limit(1050) >= MIN_STEPS_PER_EPOCH
    assert data_limit(60000) == 1024 and data_limit(1257) == 32
    assert data_limit(10) == 1 and data_limit(0) == 1


def test_memory_limit_follows_the_summary(spec_file):
    graph = api.expand(str(spec_file(TINY_DIGITS)))
    from archspec.summary import summarize_graph

    per_64 = summarize_graph(graph, batch=64, dtype="float32", optimizer="adam").totals.training_bytes
    assert memory_limit(graph, "float32", "adam", per_64, 1024) == 64
    assert memory_limit(graph, "float32", "adam", per_64 * 100, 256) == 256  # the cap


def test_the_knee_is_the_smallest_batch_near_the_best_rate():
    assert knee({8: 100.0, 16: 180.0, 32: 300.0, 64: 320.0, 128: 325.0}) == 32  # 300 >= 0.9 * 325
    assert knee({8: 500.0, 16: 400.0}) == 8


def test_timing_stops_past_the_knee_and_is_bounded():
    timed = []

    def seconds(batch):  # images/s flattens at 64 images a step
        timed.append(batch)
        return batch / min(batch * 10.0, 640.0)

    batch, rates = fastest_on_cpu(seconds, 1024)
    assert batch == 64 and timed == [8, 16, 32, 64, 128]  # 128 gained nothing: no larger size is timed
    timed.clear()
    batch, _ = fastest_on_cpu(lambda b: timed.append(b) or b ** 0.5 * 1e-6, 1 << 20)  # always faster: 6 sizes
    assert len(timed) == 6 and batch == timed[-1]


def test_auto_on_the_cpu_leaves_the_model_as_it_was(spec_file):
    import torch

    from archspec.compiler import compile_graph
    from archspec.train.trainer import pick_hardware

    spec = spec_file(TINY_DIGITS.replace("  - relu\n  - {maxpool2d", "  - batchnorm2d\n  - relu\n  - {maxpool2d"))
    graph = api.expand(str(spec))
    model = compile_graph(graph, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = resolve({"device": "cpu", "batch_size": "auto"}, None, None)
    batch, how = auto_batch_size(graph, model, pick_hardware(config), config, train_size=1257)
    assert batch <= 32 and "1257 images allow 32" in how and "img/s" in how
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm statistics untouched
    assert all(p.grad is None for p in model.parameters())


def test_state_kept_restores_after_an_error():
    import torch

    model = torch.nn.BatchNorm1d(3)
    with pytest.raises(RuntimeError):
        with _StateKept(model):
            model(torch.randn(4, 3) + 5)
            raise RuntimeError("trial failed")
    assert torch.equal(model.running_mean, torch.zeros(3))
