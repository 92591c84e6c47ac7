"""Convolution. Deep-learning "convolution" is cross-correlation: the kernel is not flipped."""
from __future__ import annotations

from .base import Arg, Bool, Int, Pair, ParamCount, Saved, ShapeError, register
from .window import WindowLayer, window_args


@register
class Conv2d(WindowLayer):
    name = "conv2d"
    aliases = ("conv",)
    family = "conv"
    prefix = "conv"
    doc = "2-D convolution (cross-correlation) over (C, H, W)."
    args = {
        "out": Arg(Int(1), doc="output channels (filters)"),
        **window_args(pool=False),
        "dilation": Arg(Pair(), 1, "spacing between kernel taps"),
        "groups": Arg(Int(1), 1, "channel groups; groups = in = out is a depthwise convolution"),
        "bias": Arg(Bool(), True, "add a learned bias per output channel"),
    }

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        if c % a["groups"] or a["out"] % a["groups"]:
            raise ShapeError(
                f"groups={a['groups']} must divide both the input channels ({c}) and out ({a['out']})"
            )
        return (a["out"], *self.spatial_out(a, inputs[0]))

    def param_count(self, a, inputs, out):
        kh, kw = a["kernel"]
        c_in = inputs[0][0] // a["groups"]
        return ParamCount(
            weights=kh * kw * c_in * a["out"],
            biases=a["out"] if a["bias"] else 0,
            weight_formula=f"({kh}*{kw}*{c_in})*{a['out']}",
        )

    def macs(self, a, inputs, out):
        kh, kw = a["kernel"]
        return out[0] * out[1] * out[2] * kh * kw * (inputs[0][0] // a["groups"])

    def saved(self, a, inputs, out):
        return [Saved("input")]  # for the weight gradient; the weight itself is a parameter

    def key_params(self, a):
        return f"{super().key_params(a)}, {a['out']}"
