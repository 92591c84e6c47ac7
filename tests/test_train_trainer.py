"""The trainer's pieces: schedules, freezing, losses, device choice, and the head taken off for the loss."""
from __future__ import annotations

import math

import pytest
import torch

from archspec import api
from archspec.compiler import compile_graph
from archspec.errors import UsageError
from archspec.train.config import resolve
from archspec.train.session import without_head
from archspec.train.trainer import lr_factor, make_loss, make_optimizer, pick_hardware, set_trainable

SMALL = """
archspec: 1
name: small
input: [1, 8, 8]
layers:
  - {conv2d: {out: 4, kernel: 3}, name: conv}
  - {batchnorm2d: {}, name: bn}
  - relu
  - flatten
  - {dense: {out: 3}, name: head}
  - softmax
"""


def small_model(spec_file):
    graph = api.expand(str(spec_file(SMALL)))
    return graph, compile_graph(graph, seed=0)


def test_step_decay_is_the_seeds_decay_rate():
    factor = lr_factor(resolve({"schedule": "step", "decay_rate": 0.1, "step_size": 2, "epochs": 6}, None, None), 10)
    assert [round(factor(s), 6) for s in (0, 19, 20, 39, 40)] == [1.0, 1.0, 0.9, 0.9, 0.81]


def test_cosine_with_warm_up():
    factor = lr_factor(resolve({"schedule": "cosine", "warmup_epochs": 1, "epochs": 5}, None, None), 10)
    assert factor(0) == pytest.approx(0.1) and factor(5) == pytest.approx(0.55)
    assert factor(10) == pytest.approx(1.0)
    assert factor(30) == pytest.approx(0.5)  # halfway through the 40 steps after warm-up
    assert factor(49) < 0.01


def test_one_cycle_rises_then_anneals():
    factor = lr_factor(resolve({"schedule": "onecycle", "epochs": 10}, None, None), 10)
    values = [factor(s) for s in range(100)]
    peak = max(range(100), key=values.__getitem__)
    assert values[0] == pytest.approx(1 / 25) and 28 <= peak <= 31 and values[99] < 1e-3


def test_unfreeze_phases_scale_the_rate():
    factor = lr_factor(resolve({"unfreeze": [{"epoch": 3, "layers": "*", "lr_factor": 0.1}], "epochs": 5},
                               None, None), 10)
    assert factor(19) == 1.0 and factor(20) == pytest.approx(0.1)


def test_freeze_patterns(spec_file):
    _, model = small_model(spec_file)
    assert set_trainable(model, ["c*"], False) == ["conv"]
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == ["conv.weight", "conv.bias"]
    with pytest.raises(UsageError, match="'hed' matches no layer with parameters.*did you mean 'head'"):
        set_trainable(model, ["hed"], False)


def test_frozen_parameters_stay_put_and_frozen_norm_keeps_statistics(spec_file):
    from archspec.train.trainer import _hold_frozen_norm_stats

    _, model = small_model(spec_file)
    set_trainable(model, ["conv", "bn"], False)
    optimizer = make_optimizer(model, resolve({"optimizer": "adamw", "weight_decay": 0.1}, None, None))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    running = model.bn.running_mean.clone()
    model.train()
    _hold_frozen_norm_stats(model)
    model(torch.randn(4, 1, 8, 8)).log().sum().backward()
    optimizer.step()
    after = dict(model.named_parameters())
    assert torch.equal(after["conv.weight"], before["conv.weight"])
    assert not torch.equal(after["head.weight"], before["head.weight"])
    assert torch.equal(model.bn.running_mean, running)


def test_softmax_head_comes_off_for_cross_entropy(spec_file):
    graph, model = small_model(spec_file)
    x = torch.randn(2, 1, 8, 8)
    probabilities = model(x)
    stripped, logits = without_head(model, graph, "cross_entropy")
    assert logits
    assert torch.allclose(torch.softmax(stripped(x), dim=1), probabilities, atol=1e-6)
    # the weights are the same names, so saved weights load into the full model
    assert list(stripped.state_dict()) == list(compile_graph(graph, seed=0).state_dict())


def test_softmax_head_stays_for_mae(spec_file):
    graph, model = small_model(spec_file)
    kept, logits = without_head(model, graph, "mae")
    assert not logits and "softmax" in kept.code


def test_losses():
    out = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    y = torch.tensor([0, 1])
    assert make_loss(resolve(None, None, None), 3, True)(out, y) == pytest.approx(
        torch.nn.functional.cross_entropy(out, y).item())
    smoothed = make_loss(resolve({"label_smoothing": 0.1}, None, None), 3, True)(out, y)
    assert smoothed > make_loss(resolve(None, None, None), 3, True)(out, y)
    p = torch.softmax(out, 1)
    assert make_loss(resolve({"loss": "mae"}, None, None), 3, False)(p, y) == pytest.approx(
        (p - torch.eye(3)[y]).abs().mean().item())
    assert make_loss(resolve({"loss": "mse"}, None, None), 3, False)(p, y) == pytest.approx(
        ((p - torch.eye(3)[y]) ** 2).mean().item())
    assert math.isfinite(make_loss(resolve({"loss": "bce"}, None, None), 3, True)(out, y).item())


def test_cpu_is_chosen_without_an_accelerator():
    hardware = pick_hardware(resolve({"device": "cpu"}, None, None))
    assert hardware.device.type == "cpu" and hardware.precision == "fp32" and not hardware.channels_last
    assert pick_hardware(resolve({"device": "cpu", "precision": "bf16"}, None, None)).amp_dtype is torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_usage_error():
    with pytest.raises(UsageError, match="CUDA is not available"):
        pick_hardware(resolve({"device": "cuda"}, None, None))
