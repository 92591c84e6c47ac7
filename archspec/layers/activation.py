"""Element-wise activations. Which tensor each saves decides the memory autograd keeps."""
from __future__ import annotations

from .base import Arg, Float, Int, LayerType, Saved, ShapeError, register


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
