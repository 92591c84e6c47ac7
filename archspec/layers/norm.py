"""Normalisation: batch norm (Ioffe & Szegedy, 2015) and AlexNet's local response normalisation."""
from __future__ import annotations

from .base import Arg, Bool, Float, Int, LayerType, ParamCount, Saved, ShapeError, register

STAT_BYTES = 4  # batch statistics are kept in float32 even under autocast


class BatchNorm(LayerType):
    family = "norm"
    prefix = "bn"
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
