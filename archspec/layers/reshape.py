"""Rearranging a tensor without learning anything: channel shuffle, chunks, permutes, zero padding
and upsampling (ShuffleNetV2, ConvNeXt's channels-last blocks, U-Net-style decoders)."""
from __future__ import annotations

import math

from .base import Arg, Axes, Bool, Call, Enum, Field, Int, LayerType, Padding, Pair, ShapeError, fmt_shape, register

@register
class ChannelShuffle(LayerType):
    name = "channel_shuffle"
    family = "reshape"
    prefix = "shuffle"
    ranks = (3,)
    doc = ("Interleaves the channels of g groups: viewed as (g, C/g), transposed, flattened back "
           "(ShuffleNet, Zhang et al., 2018). Output channel i*g + j is input channel j*C/g + i.")
    example_args = {"groups": 4}
    args = {"groups": Arg(Int(1), doc="number of groups; must divide the channels")}

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        if c % a["groups"]:
            raise ShapeError(f"groups={a['groups']} must divide the {c} channels")
        return inputs[0]

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.ChannelShuffle(a["groups"])

    def key_params(self, a):
        return f"{a['groups']} groups"


@register
class Chunk(LayerType):
    name = "chunk"
    family = "reshape"
    view = True
    doc = ("Splits its input into equal parts along an axis (channels by default), as torch.chunk: "
           "`- chunk: {parts: 2}` named `halves` gives `halves.0` and `halves.1`, which later items "
           "read with `from:` (ShuffleNetV2). With `part` it is that one part alone. Each part is a view.")
    args = {
        "parts": Arg(Int(1), 2, "number of equal parts; must divide the axis"),
        "part": Arg(Int(0), None, "keep only this part (0 is the first); without it, every part is an output"),
        "axis": Arg(Int(), 0, "axis of one sample's shape; 0 is channels or features"),
    }

    def outputs(self, a: dict) -> int:
        return a["parts"] if a["part"] is None else 1

    def axis(self, a, shape) -> int:
        rank = len(shape)
        if not -rank <= a["axis"] < rank:
            raise ShapeError(f"axis {a['axis']} is out of range for shape of rank {rank}")
        return a["axis"] % rank

    def output_shape(self, a, inputs):
        shape = inputs[0]
        axis = self.axis(a, shape)
        if shape[axis] % a["parts"]:
            raise ShapeError(f"{a['parts']} equal parts need a size divisible by {a['parts']} along axis "
                             f"{a['axis']}, found {fmt_shape(shape)}")
        if a["part"] is not None and a["part"] >= a["parts"]:
            raise ShapeError(f"part {a['part']} does not exist: the parts are 0 to {a['parts'] - 1}")
        return shape[:axis] + (shape[axis] // a["parts"],) + shape[axis + 1:]

    def torch(self, a, inputs, out):
        import torch

        axis = self.axis(a, inputs[0])
        length = out[axis]
        return Call(torch.narrow, {"dim": axis + 1, "start": (a["part"] or 0) * length, "length": length})

    def key_params(self, a):
        return f"{a['parts']} parts" if a["part"] is None else f"part {a['part']} of {a['parts']}"


@register
class Permute(LayerType):
    name = "permute"
    family = "reshape"
    view = True
    doc = ("Reorders the axes of one sample: [1, 2, 0] turns (C, H, W) into channels-last (H, W, C), "
           "[2, 0, 1] turns it back (ConvNeXt's blocks). A view: no copy.")
    example_args = {"axes": [1, 2, 0]}
    args = {"axes": Arg(Axes(), doc="the new order of one sample's axes, e.g. [1, 2, 0]")}

    def output_shape(self, a, inputs):
        shape = inputs[0]
        if sorted(a["axes"]) != list(range(len(shape))):
            raise ShapeError(f"axes {list(a['axes'])} is not an order of the {len(shape)} axes of "
                             f"{fmt_shape(shape)} (each of 0 to {len(shape) - 1} once)")
        return tuple(shape[i] for i in a["axes"])

    def receptive_field(self, a, fields, inputs, out):
        return fields[0]

    def torch(self, a, inputs, out):
        import torch

        return Call(torch.permute, {"dims": (0, *(i + 1 for i in a["axes"]))})

    def key_params(self, a):
        return str(list(a["axes"]))


@register
class ZeroPad2d(LayerType):
    name = "zero_pad2d"
    aliases = ("zeropad2d", "pad")
    family = "reshape"
    prefix = "pad"
    ranks = (3,)
    doc = "Adds rows and columns of zeros around (C, H, W) (torch's nn.ZeroPad2d)."
    args = {"padding": Arg(Padding(numeric=True), doc="an integer, [h, w] or [top, bottom, left, right]")}

    def output_shape(self, a, inputs):
        c, h, w = inputs[0]
        t, b, l, r = a["padding"]
        return (c, h + t + b, w + l + r)

    def receptive_field(self, a, fields, inputs, out):
        t, _, l, _ = a["padding"]
        return fields[0].window((1, 1), (1, 1), (t, l))

    def torch(self, a, inputs, out):
        from torch import nn

        t, b, l, r = a["padding"]
        return nn.ZeroPad2d((l, r, t, b))

    def key_params(self, a):
        return "[" + ", ".join(map(str, a["padding"])) + "]"


@register
class Upsample(LayerType):
    name = "upsample"
    family = "reshape"
    prefix = "up"
    ranks = (3,)
    doc = ("Enlarges (C, H, W) by an integer factor per axis, repeating pixels (nearest) or "
           "interpolating them (bilinear), as U-Net-style decoders; torch's nn.Upsample.")
    args = {
        "scale": Arg(Pair(), 2, "factor: an integer or [height, width]"),
        "mode": Arg(Enum(("nearest", "bilinear")), "nearest", "nearest repeats pixels; bilinear interpolates"),
        "align_corners": Arg(Bool(), False, "bilinear only: corner pixels of input and output coincide"),
    }

    def output_shape(self, a, inputs):
        if a["align_corners"] and a["mode"] != "bilinear":
            raise ShapeError("align_corners applies to mode: bilinear only")
        c, h, w = inputs[0]
        return (c, h * a["scale"][0], w * a["scale"][1])

    def receptive_field(self, a, fields, inputs, out):
        f = fields[0]
        taps = 2 if a["mode"] == "bilinear" else 1  # bilinear mixes 2 neighbours per axis
        size = tuple(math.ceil(f.size[ax] + (taps - 1) * f.jump[ax]) for ax in range(2))
        jump = tuple(f.jump[ax] / a["scale"][ax] for ax in range(2))
        # output pixel o sits at input coordinate (o + 0.5) / scale - 0.5 (align_corners false)
        start = tuple(f.start[ax] + (0.5 / a["scale"][ax] - 0.5) * f.jump[ax] for ax in range(2))
        return Field(size, jump, start)

    def torch(self, a, inputs, out):
        from torch import nn

        scale = tuple(float(s) for s in a["scale"])
        if a["mode"] == "bilinear":
            return nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=a["align_corners"])
        return nn.Upsample(scale_factor=scale, mode="nearest")

    def key_params(self, a):
        s = a["scale"]
        scale = f"×{s[0]}" if s[0] == s[1] else f"×{s[0]}×{s[1]}"
        return scale + (f" {a['mode']}" if a["mode"] != "nearest" else "")
