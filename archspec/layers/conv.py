"""Convolution. Deep-learning "convolution" is cross-correlation: the kernel is not flipped."""
from __future__ import annotations

from .base import Arg, Bool, Field, Int, Kernels, LayerType, Pair, ParamCount, Saved, ShapeError, register
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

    short_name = "conv"

    def key_params(self, a):
        text = f"{super().key_params(a)}, {a['out']}"
        return text + " fixed" if a["weights"] is not None else text

    def label_params(self, a):
        return super().key_params(a)  # the channels are in the box's shape

    def slide_label(self, a):
        k = a["kernel"]
        return f"CONV{k[0] if k[0] == k[1] else f'{k[0]}x{k[1]}'}-{a['out']}"


@register
class ConvTranspose2d(LayerType):
    name = "conv_transpose2d"
    aliases = ("deconv", "conv_transpose")
    family = "conv"
    prefix = "deconv"
    ranks = (3,)
    doc = ("2-D transposed convolution (the gradient of a convolution): upsamples by its stride, as "
           "U-Net's decoder. Output size (H - 1) * stride - 2 * padding + dilation * (kernel - 1) "
           "+ output_padding + 1.")
    args = {
        "out": Arg(Int(1), doc="output channels"),
        "kernel": Arg(Pair(), doc="kernel size: an integer or [height, width]"),
        "stride": Arg(Pair(), 1, "upsampling factor: spacing of the input's positions in the output"),
        "padding": Arg(Pair(0), 0, "rows and columns removed from each border of the full output"),
        "output_padding": Arg(Pair(0), 0, "extra rows and columns on the bottom and right (less than "
                                          "the stride or the dilation), to reach an exact size"),
        "dilation": Arg(Pair(), 1, "spacing between kernel taps"),
        "groups": Arg(Int(1), 1, "channel groups"),
        "bias": Arg(Bool(), True, "add a learned bias per output channel"),
    }

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        if c % a["groups"] or a["out"] % a["groups"]:
            raise ShapeError(f"groups={a['groups']} must divide both the input channels ({c}) and out ({a['out']})")
        sizes = []
        for ax in range(2):
            if a["output_padding"][ax] >= max(a["stride"][ax], a["dilation"][ax]):
                raise ShapeError(f"output_padding {a['output_padding'][ax]} must be smaller than the stride "
                                 f"or the dilation ({a['stride'][ax]}, {a['dilation'][ax]})")
            size = ((inputs[0][1 + ax] - 1) * a["stride"][ax] - 2 * a["padding"][ax]
                    + a["dilation"][ax] * (a["kernel"][ax] - 1) + a["output_padding"][ax] + 1)
            if size < 1:
                raise ShapeError(f"padding {a['padding'][ax]} removes the whole output ({size} rows or columns left)")
            sizes.append(size)
        return (a["out"], *sizes)

    def param_count(self, a, inputs, out):
        kh, kw = a["kernel"]
        c_in, per_group = inputs[0][0], a["out"] // a["groups"]
        return ParamCount(weights=c_in * per_group * kh * kw, biases=a["out"] if a["bias"] else 0,
                          weight_formula=f"{c_in}*({kh}*{kw}*{per_group})")

    def macs(self, a, inputs, out):
        # every input position meets every tap of its group's kernels once
        c, h, w = inputs[0]
        kh, kw = a["kernel"]
        return h * w * c * kh * kw * (a["out"] // a["groups"])

    def saved(self, a, inputs, out):
        return [Saved("input")]  # for the weight gradient, as a convolution

    def receptive_field(self, a, fields, inputs, out):
        # an output sees the inputs whose kernel footprint covers it: about kernel / stride of them
        f = fields[0]
        size, jump, start = [], [], []
        for ax in range(2):
            s = a["stride"][ax]
            k_eff = a["dilation"][ax] * (a["kernel"][ax] - 1) + 1
            taps = -(-k_eff // s)
            size.append(f.size[ax] + (taps - 1) * f.jump[ax])
            jump.append(f.jump[ax] / s)
            start.append(f.start[ax] + ((a["padding"][ax] - (k_eff - 1) / 2) / s) * f.jump[ax])
        return Field(tuple(size), tuple(jump), tuple(start))

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.ConvTranspose2d(inputs[0][0], a["out"], a["kernel"], stride=a["stride"], padding=a["padding"],
                                  output_padding=a["output_padding"], groups=a["groups"], bias=a["bias"],
                                  dilation=a["dilation"])

    def key_params(self, a):
        k, s = a["kernel"], a["stride"]
        scale = f" ×{s[0]}" if s[0] == s[1] else f" ×{s[0]}×{s[1]}"
        text = f"{k[0]}×{k[1]}" + (scale if s != (1, 1) else "")
        return f"{text}, {a['out']}"


def fill_fixed_kernels(module, kernels) -> None:
    """Every (output, input channel) slice gets its output's kernel; the bias starts at zero."""
    import torch

    with torch.no_grad():
        for o in range(module.out_channels):
            module.weight[o].copy_(torch.tensor(kernels[o % len(kernels)], dtype=module.weight.dtype))
        if module.bias is not None:
            module.bias.zero_()
