"""Element-wise activations. Which tensor each saves decides the memory autograd keeps.

Each entry names its torch.nn class; the ones added for today's mobile and ConvNeXt networks
(relu6, hardswish, hardsigmoid, silu, gelu, mish) all differentiate from their input, so they
keep the input, not the output, for backward.
"""
from __future__ import annotations

from .base import Arg, Enum, Float, Int, LayerType, Saved, ShapeError, register


class Activation(LayerType):
    family = "activation"
    saves = "output"  # relu, sigmoid, tanh and softmax differentiate from their result

    module: str = ""  # the torch.nn class

    def saved(self, a, inputs, out):
        return [Saved(self.saves)]

    def torch(self, a, inputs, out):
        from torch import nn

        return getattr(nn, self.module)(**self.torch_kwargs(a))

    def torch_kwargs(self, a: dict) -> dict:
        return {}


@register
class ReLU(Activation):
    module = "ReLU"
    name = "relu"
    doc = "max(0, x)."


@register
class ReLU6(Activation):
    module = "ReLU6"
    name = "relu6"
    saves = "input"  # torch computes it as hardtanh(x, 0, 6), whose backward reads the input
    doc = "min(max(0, x), 6): ReLU capped at 6 (MobileNetV2, MNASNet). Not the same function as relu."


@register
class Hardswish(Activation):
    module = "Hardswish"
    name = "hardswish"
    aliases = ("hard_swish",)
    saves = "input"
    doc = "x * relu6(x + 3) / 6, a piecewise approximation of silu (MobileNetV3)."


@register
class Hardsigmoid(Activation):
    module = "Hardsigmoid"
    name = "hardsigmoid"
    aliases = ("hard_sigmoid",)
    saves = "input"
    doc = "relu6(x + 3) / 6, a piecewise approximation of sigmoid (MobileNetV3's squeeze-and-excitation gate)."


@register
class SiLU(Activation):
    module = "SiLU"
    name = "silu"
    aliases = ("swish",)
    saves = "input"
    doc = "x * sigmoid(x), also called swish (EfficientNet, RegNetY)."


@register
class GELU(Activation):
    module = "GELU"
    name = "gelu"
    saves = "input"
    doc = "x * Phi(x), Phi the standard normal CDF (ConvNeXt); optionally its tanh approximation."
    args = {"approximate": Arg(Enum(("none", "tanh")), "none",
                               "none: the exact erf form; tanh: the tanh approximation (torch's approximate='tanh')")}

    def torch_kwargs(self, a):
        return {"approximate": a["approximate"]}

    def key_params(self, a):
        return "tanh" if a["approximate"] == "tanh" else ""


@register
class Mish(Activation):
    module = "Mish"
    name = "mish"
    saves = "input"
    doc = "x * tanh(softplus(x)) (Misra, 2019)."


@register
class LeakyReLU(Activation):
    module = "LeakyReLU"
    name = "leaky_relu"
    aliases = ("leakyrelu",)
    prefix = "lrelu"
    saves = "input"
    doc = "x for x > 0, negative_slope * x otherwise."
    args = {"negative_slope": Arg(Float(0), 0.01, "slope for x < 0 (torch 0.01; Keras' LeakyReLU() uses 0.3)")}

    def torch_kwargs(self, a):
        return {"negative_slope": a["negative_slope"]}


@register
class Sigmoid(Activation):
    module = "Sigmoid"
    name = "sigmoid"
    doc = "1 / (1 + exp(-x))."


@register
class Tanh(Activation):
    module = "Tanh"
    name = "tanh"
    doc = "Hyperbolic tangent."


@register
class Softmax(Activation):
    module = "Softmax"
    name = "softmax"
    doc = "exp(x) normalised to sum to 1 along an axis (by default the channel/feature axis)."
    args = {"axis": Arg(Int(), 0, "axis of one sample's shape: 0 is C or features, -1 the last")}

    def output_shape(self, a, inputs):
        rank = len(inputs[0])
        if not -rank <= a["axis"] < rank:
            raise ShapeError(f"axis {a['axis']} is out of range for shape of rank {rank}")
        return inputs[0]

    def torch_kwargs(self, a):
        return {"dim": a["axis"] + 1 if a["axis"] >= 0 else a["axis"]}  # skip the batch axis
