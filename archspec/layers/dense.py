"""Fully connected layers and the layers around them: flatten, dropout, identity."""
from __future__ import annotations

import math

from .base import Arg, Bool, Call, Enum, Float, Int, LayerType, ParamCount, Saved, ShapeError, fmt_shape, register


@register
class Linear(LayerType):
    name = "linear"
    aliases = ("dense", "fc")
    family = "dense"
    prefix = "fc"
    doc = "Fully connected layer: every output sees every input feature."
    args = {
        "out": Arg(Int(1), doc="output features (neurons)"),
        "bias": Arg(Bool(), True, "add a learned bias per output"),
        "last_axis": Arg(Bool(), False, "apply to the last axis of an input of any rank, every other position "
                                        "on its own (nn.Linear on a channels-last map, as ConvNeXt's blocks)"),
    }

    def output_shape(self, a, inputs):
        if len(inputs[0]) != 1 and not a["last_axis"]:
            raise ShapeError(
                f"linear expects a flat input (features,), found {fmt_shape(inputs[0])}: "
                "add a flatten (or a global pooling) before it"
            )
        return inputs[0][:-1] + (a["out"],)

    def param_count(self, a, inputs, out):
        f = inputs[0][-1]
        return ParamCount(weights=f * a["out"], biases=a["out"] if a["bias"] else 0,
                          weight_formula=f"{f}*{a['out']}")

    def macs(self, a, inputs, out):
        return math.prod(inputs[0][:-1]) * inputs[0][-1] * a["out"]

    def saved(self, a, inputs, out):
        # x @ W.T keeps x only for W's gradient (convolution keeps its input either way)
        return [Saved("input", only_if_trained=True)]

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.Linear(inputs[0][-1], a["out"], bias=a["bias"])

    short_name = "fc"

    def key_params(self, a):
        return str(a["out"]) + (" (last axis)" if a["last_axis"] else "")

    def label_params(self, a):
        return ""  # the features are the bar's shape

    def slide_label(self, a):
        return "FC"


@register
class Flatten(LayerType):
    name = "flatten"
    family = "reshape"
    view = True
    doc = "(C, H, W) -> (C*H*W,): a view, no copy."

    def output_shape(self, a, inputs):
        return (math.prod(inputs[0]),)

    def receptive_field(self, a, fields, inputs, out):
        shape = inputs[0]
        return fields[0].whole(shape[1:]) if len(shape) == 3 else fields[0]

    def torch(self, a, inputs, out):
        import torch

        return Call(torch.flatten, {"start_dim": 1})


@register
class Identity(LayerType):
    name = "identity"
    family = "reshape"
    view = True
    doc = "Passes its input through unchanged."

    def torch(self, a, inputs, out):
        return None  # no node: the output is the input


class DropoutBase(LayerType):
    family = "regularization"
    prefix = "drop"
    args = {"p": Arg(Float(0, 1), 0.5, "probability of zeroing an element")}

    def key_params(self, a):
        return f"p={a['p']:g}"

    def saved(self, a, inputs, out):
        if a["p"] == 0:
            return []  # torch returns the input itself
        if a["p"] == 1:
            return [Saved("own", numel=1, per_batch=False)]  # torch multiplies by one zero scalar
        return self.noise_saved(inputs, out)

    def noise_saved(self, inputs, out) -> list[Saved]:
        raise NotImplementedError


@register
class Dropout(DropoutBase):
    name = "dropout"
    doc = "Zeroes random elements while training, scaling the rest by 1/(1-p)."

    def noise_saved(self, inputs, out):
        return [Saved("own", numel=math.prod(out), itemsize=1)]  # the boolean mask

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.Dropout(a["p"])


@register
class SpatialDropout(DropoutBase):
    name = "spatial_dropout"
    aliases = ("dropout2d",)
    ranks = (3,)
    doc = "Zeroes whole channels while training (Keras SpatialDropout2D, torch Dropout2d)."

    def noise_saved(self, inputs, out):
        # output = input * per-channel noise; the input needs no gradient from it, so autograd
        # keeps only the noise (N*C values), not the input
        return [Saved("own", numel=inputs[0][0])]

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.Dropout2d(a["p"])


@register
class DropPath(LayerType):
    name = "drop_path"
    aliases = ("stochastic_depth",)
    family = "regularization"
    prefix = "drop_path"
    doc = ("Stochastic depth (Huang et al., 2016): while training, zeroes a whole sample's tensor with "
           "probability p and scales the rest by 1/(1-p); the identity in eval mode "
           "(torchvision.ops.StochasticDepth). Placed on a residual's main path, it drops the block.")
    args = {
        "p": Arg(Float(0, 1), doc="probability of dropping (torchvision's EfficientNet and ConvNeXt grow "
                                   "it linearly with depth)"),
        "mode": Arg(Enum(("row", "batch")), "row", "row: one draw per sample; batch: one draw for the whole batch"),
    }

    def saved(self, a, inputs, out):
        if a["p"] == 0:
            return []  # the module returns its input untouched
        # input * noise keeps the noise (one value per sample, or one for the batch)
        return [Saved("own", numel=1, per_batch=a["mode"] == "row")]

    def torch(self, a, inputs, out):
        from ..modules import DropPath as Module

        return Module(a["p"], a["mode"])

    def key_params(self, a):
        return f"p={a['p']:g}"
