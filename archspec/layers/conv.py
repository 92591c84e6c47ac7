"""Convolution. Deep-learning "convolution" is cross-correlation: the kernel is not flipped."""
from __future__ import annotations

from .base import Arg, Bool, Int, Kernels, Pair, ParamCount, Saved, ShapeError, register
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
        "weights": Arg(Kernels(), None, "fixed kernels instead of learned ones: a name (sobel_x, laplacian4, ...), "
                                        "a matrix, or a list of them, one per output channel; bias starts at 0"),
    }

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        if c % a["groups"] or a["out"] % a["groups"]:
            raise ShapeError(
                f"groups={a['groups']} must divide both the input channels ({c}) and out ({a['out']})"
            )
        fixed = a["weights"]
        if fixed is not None:
            if len(fixed) not in (1, a["out"]):
                raise ShapeError(f"weights gives {len(fixed)} kernels for out: {a['out']} (give 1, or 1 per output)")
            for k in fixed:
                if (len(k), len(k[0])) != tuple(a["kernel"]):
                    raise ShapeError(f"weights has a {len(k)}×{len(k[0])} kernel but kernel is "
                                     f"{a['kernel'][0]}×{a['kernel'][1]}")
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
        # the input, for the weight gradient (the weight itself is a parameter); with
        # asymmetric padding the compiled module pads first, and the padded copy is what is kept
        symmetric, (l, r, t, b) = self.torch_padding(a, inputs[0])
        if symmetric is not None:
            return [Saved("input")]
        c, h, w = inputs[0]
        return [Saved("own", numel=c * (h + t + b) * (w + l + r))]

    def torch(self, a, inputs, out):
        from torch import nn

        from ..modules import PaddedConv2d

        symmetric, pad = self.torch_padding(a, inputs[0])
        common = dict(in_channels=inputs[0][0], out_channels=a["out"], kernel_size=a["kernel"], stride=a["stride"],
                      dilation=a["dilation"], groups=a["groups"], bias=a["bias"])
        module = nn.Conv2d(padding=symmetric, **common) if symmetric is not None else PaddedConv2d(pad=pad, **common)
        if a["weights"] is not None:
            fill_fixed_kernels(module, a["weights"])
        return module

    def key_params(self, a):
        text = f"{super().key_params(a)}, {a['out']}"
        return text + " fixed" if a["weights"] is not None else text


def fill_fixed_kernels(module, kernels) -> None:
    """Every (output, input channel) slice gets its output's kernel; the bias starts at zero."""
    import torch

    with torch.no_grad():
        for o in range(module.out_channels):
            module.weight[o].copy_(torch.tensor(kernels[o % len(kernels)], dtype=module.weight.dtype))
        if module.bias is not None:
            module.bias.zero_()
