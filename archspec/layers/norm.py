"""Normalisation: batch norm (Ioffe & Szegedy, 2015), group norm, layer norm (over channels as
ConvNeXt, or over the last axis), layer scale and AlexNet's local response normalisation."""
from __future__ import annotations

import math

from .base import Arg, Bool, Call, Float, Int, LayerType, ParamCount, Saved, ShapeError, register

STAT_BYTES = 4  # batch statistics are kept in float32 even under autocast


class BatchNorm(LayerType):
    family = "norm"
    prefix = "bn"
    affine_words = ("gamma", "beta")
    args = {
        "momentum": Arg(Float(0, 1), 0.1,
                        "weight of the new batch in the running statistics (torch's convention; "
                        "Keras' momentum=0.8 is 0.2 here)"),
        "eps": Arg(Float(0), 1e-5, "added to the variance before the square root"),
        "affine": Arg(Bool(), True, "learn a scale (gamma) and shift (beta) per channel"),
    }

    def param_count(self, a, inputs, out):
        c = inputs[0][0]
        learned = c if a["affine"] else 0
        # running mean, running variance and the num_batches_tracked counter
        return ParamCount(weights=learned, biases=learned, buffers=2 * c + 1, weight_formula=f"{c}")

    def saved(self, a, inputs, out):
        c = inputs[0][0]
        stats = Saved("own", numel=c, itemsize=STAT_BYTES, per_batch=False)
        # the input, the batch mean and inverse std, and the running mean and variance
        return [Saved("input"), stats, stats, stats, stats]

    def torch(self, a, inputs, out):
        from torch import nn

        cls = nn.BatchNorm2d if len(inputs[0]) == 3 else nn.BatchNorm1d
        # torch refuses eps = 0 in training; the smallest positive double changes no result
        # (var + 5e-324 == var for any var > 0), so a spec's eps: 0 (a hand exercise) still compiles
        eps = a["eps"] if a["eps"] > 0 else 5e-324
        return cls(inputs[0][0], eps=eps, momentum=a["momentum"], affine=a["affine"])

    def key_params(self, a):
        return ""


@register
class BatchNorm2d(BatchNorm):
    name = "batchnorm2d"
    aliases = ("batchnorm", "bn")
    ranks = (3,)
    doc = "Batch normalisation per channel of (C, H, W)."


@register
class BatchNorm1d(BatchNorm):
    name = "batchnorm1d"
    ranks = (1, 2)
    doc = "Batch normalisation per feature of (features,) or per channel of (C, L)."


@register
class LocalResponseNorm(LayerType):
    name = "lrn"
    aliases = ("local_response_norm",)
    family = "norm"
    prefix = "lrn"
    ranks = (3,)
    exact_saved = False  # torch composes it of several ops; the figure below is their sum
    doc = "Local response normalisation across neighbouring channels (AlexNet, 2012)."
    args = {
        "size": Arg(Int(1), 5, "number of neighbouring channels"),
        "alpha": Arg(Float(0), 1e-4, "scale"),
        "beta": Arg(Float(0), 0.75, "exponent"),
        "k": Arg(Float(0), 1.0, "additive constant (AlexNet used 2)"),
    }

    def output_shape(self, a, inputs):
        if a["size"] > 2 * inputs[0][0] + 1:
            raise ShapeError(f"size {a['size']} spans more than the {inputs[0][0]} channels")
        return inputs[0]

    def saved(self, a, inputs, out):
        c, h, w = inputs[0]
        padded = (c + a["size"] - 1) * h * w
        # the input, its padded square for the channel average, the average and the divisor
        return [Saved("input"), Saved("own", numel=padded), Saved("own", numel=c * h * w),
                Saved("own", numel=c * h * w)]

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])

    def key_params(self, a):
        return f"size {a['size']}"


def _affine_count(a: dict, c: int) -> ParamCount:
    learned = c if a["affine"] else 0
    return ParamCount(weights=learned, biases=learned, weight_formula=f"{c}")


def _statistics(numel: int) -> list[Saved]:
    """The input plus one mean and one inverse standard deviation per normalised group (float32)."""
    stats = Saved("own", numel=numel, itemsize=STAT_BYTES)
    return [Saved("input"), stats, stats]


@register
class GroupNorm(LayerType):
    name = "groupnorm"
    aliases = ("group_norm",)
    family = "norm"
    prefix = "gn"
    ranks = (1, 2, 3)
    doc = ("Normalisation over groups of channels of each sample, independent of the batch "
           "(Wu & He, 2018); groups = 1 normalises all channels together.")
    example_args = {"groups": 4}
    args = {
        "groups": Arg(Int(1), doc="number of channel groups; must divide the channels"),
        "eps": Arg(Float(0), 1e-5, "added to the variance before the square root"),
        "affine": Arg(Bool(), True, "learn a scale and shift per channel"),
    }

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        if c % a["groups"]:
            raise ShapeError(f"groups={a['groups']} must divide the {c} channels")
        return inputs[0]

    def param_count(self, a, inputs, out):
        return _affine_count(a, inputs[0][0])

    def saved(self, a, inputs, out):
        return _statistics(a["groups"])

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.GroupNorm(a["groups"], inputs[0][0], eps=a["eps"], affine=a["affine"])

    def key_params(self, a):
        return f"{a['groups']} groups"


class LayerNormBase(LayerType):
    family = "norm"
    prefix = "ln"
    args = {
        "eps": Arg(Float(0), 1e-5, "added to the variance before the square root (ConvNeXt uses 1e-6)"),
        "affine": Arg(Bool(), True, "learn a scale (weight) and shift (bias) per normalised element"),
    }


@register
class LayerNorm(LayerNormBase):
    name = "layernorm"
    aliases = ("layer_norm",)
    doc = ("Normalisation over the last axis of each position (torch's nn.LayerNorm(last size)); "
           "on a channels-last map (after permute) that is per-pixel normalisation over channels.")

    def param_count(self, a, inputs, out):
        return _affine_count(a, inputs[0][-1])

    def saved(self, a, inputs, out):
        return _statistics(math.prod(inputs[0][:-1]))

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.LayerNorm(inputs[0][-1], eps=a["eps"], elementwise_affine=a["affine"])


@register
class LayerNorm2d(LayerNormBase):
    name = "layernorm2d"
    ranks = (3,)
    doc = ("Layer normalisation over the channels of each pixel of (C, H, W), as ConvNeXt's "
           "(torchvision's LayerNorm2d): parameters weight and bias of C values each.")

    def param_count(self, a, inputs, out):
        return _affine_count(a, inputs[0][0])

    def saved(self, a, inputs, out):
        c, h, w = inputs[0]
        return _statistics(h * w)  # the input as a channels-last view shares its storage

    def torch(self, a, inputs, out):
        from ..modules import LayerNorm2d

        return LayerNorm2d(inputs[0][0], eps=a["eps"], elementwise_affine=a["affine"])


@register
class LayerScale(LayerType):
    name = "layer_scale"
    family = "norm"
    prefix = "layer_scale"
    doc = ("A learned factor per channel multiplying the input (Touvron et al., 2021; ConvNeXt). The "
           "parameter is the item itself, of shape (C, 1, 1) on (C, H, W): its state_dict key is the "
           "item's path, as torchvision's ConvNeXt blocks' layer_scale.")
    args = {"value": Arg(Float(), 1e-6, "initial value of every factor (ConvNeXt: 1e-6)")}

    def param_count(self, a, inputs, out):
        c = inputs[0][0]
        return ParamCount(weights=c, weight_formula=f"{c}")

    def saved(self, a, inputs, out):
        return [Saved("input", only_if_trained=True)]  # for the factor's own gradient

    def torch(self, a, inputs, out):
        import torch

        from ..modules import scale

        shape = (inputs[0][0],) + (1,) * (len(inputs[0]) - 1)
        return Call(scale, weight=torch.full(shape, a["value"]))

    def key_params(self, a):
        return f"{a['value']:g}"
