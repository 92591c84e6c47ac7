"""Pooling: max, average and sum over windows; global and adaptive pooling over whole maps."""
from __future__ import annotations

import math

from .base import Arg, Bool, LayerType, Pair, Saved, ShapeError, register
from .window import WindowLayer, window_args

INDEX_BYTES = 8  # max pooling keeps int64 argmax indices for backward


class WindowPool(WindowLayer):
    family = "pool"
    prefix = "pool"
    args = {**window_args(pool=True)}

    def output_shape(self, a, inputs):
        padding, kernel = a["padding"], a["kernel"]
        if padding == "full":  # torch's pools take at most half the kernel as padding
            dilation = a.get("dilation", (1, 1))
            pads = [dilation[ax] * (kernel[ax] - 1) for ax in range(2)]
            if any(2 * p > k for p, k in zip(pads, kernel)):
                raise ShapeError(f"padding full pads {max(pads)}, more than half the kernel "
                                 f"{kernel[0]}×{kernel[1]}; torch's pooling refuses it")
        if isinstance(padding, tuple):
            for k, p in zip((kernel[0], kernel[0], kernel[1], kernel[1]), padding):
                if p * 2 > k:
                    raise ShapeError(f"padding {p} is more than half the kernel {kernel[0]}×{kernel[1]}")
        if a["rounding"] == "ceil" and self.torch_padding(a, inputs[0])[0] is None:
            # torch's ceil mode has no asymmetric form, so the compiled model could not agree
            raise ShapeError("rounding: ceil needs symmetric padding (this padding is uneven); "
                             "use rounding: floor or symmetric padding")
        return (inputs[0][0], *self.spatial_out(a, inputs[0]))

    def saved(self, a, inputs, out):
        return [Saved("input")]

    def slide_label(self, a):
        k = a["kernel"]
        return f"POOL{k[0] if k[0] == k[1] else f'{k[0]}x{k[1]}'}"


@register
class MaxPool2d(WindowPool):
    name = "maxpool2d"
    short_name = "maxpool"
    aliases = ("maxpool",)
    doc = "Maximum over each window, per channel."
    args = {**window_args(pool=True), "dilation": Arg(Pair(), 1, "spacing between window taps")}

    def saved(self, a, inputs, out):
        n = out[0] * out[1] * out[2]
        symmetric, (l, r, t, b) = self.torch_padding(a, inputs[0])
        c, h, w = inputs[0]
        kept = Saved("input") if symmetric is not None else Saved("own", numel=c * (h + t + b) * (w + l + r))
        return [kept, Saved("own", numel=n, itemsize=INDEX_BYTES)]

    def torch(self, a, inputs, out):
        from torch import nn

        from ..modules import PaddedMaxPool2d

        symmetric, pad = self.torch_padding(a, inputs[0])
        common = dict(kernel_size=a["kernel"], stride=a["stride"] or a["kernel"], dilation=a["dilation"],
                      ceil_mode=a["rounding"] == "ceil")
        if symmetric is not None:
            return nn.MaxPool2d(padding=symmetric, **common)
        return PaddedMaxPool2d(pad=pad, **common)


@register
class AvgPool2d(WindowPool):
    name = "avgpool2d"
    short_name = "avgpool"
    aliases = ("avgpool",)
    doc = "Mean over each window, per channel."
    args = {**window_args(pool=True),
            "count_include_pad": Arg(Bool(), True, "count padded zeros in the mean")}

    def saved(self, a, inputs, out):
        saved = _input_or_padded_copy(self, a, inputs[0])
        if saved[0].what == "own" and not a["count_include_pad"]:
            # PaddedAvgPool2d divides by the count of real pixels in each window: one map for the batch
            saved.append(Saved("own", numel=out[1] * out[2], per_batch=False))
        return saved

    def torch(self, a, inputs, out):
        from torch import nn

        from ..modules import PaddedAvgPool2d

        symmetric, pad = self.torch_padding(a, inputs[0])
        stride, ceil = a["stride"] or a["kernel"], a["rounding"] == "ceil"
        if symmetric is not None:
            return nn.AvgPool2d(a["kernel"], stride, symmetric, ceil, a["count_include_pad"])
        return PaddedAvgPool2d(a["kernel"], stride, pad, ceil, a["count_include_pad"])


@register
class SumPool2d(WindowPool):
    name = "sumpool2d"
    short_name = "sumpool"
    aliases = ("sumpool",)
    doc = "Sum over each window, per channel (sum pooling)."

    def saved(self, a, inputs, out):
        return _input_or_padded_copy(self, a, inputs[0])

    def torch(self, a, inputs, out):
        from ..modules import SumPool2d

        _, pad = self.torch_padding(a, inputs[0])
        return SumPool2d(a["kernel"], a["stride"] or a["kernel"], pad, a["rounding"] == "ceil")


def _input_or_padded_copy(layer: WindowLayer, a: dict, shape) -> list[Saved]:
    """What an average or sum pool keeps for backward: its input when torch pads (symmetric padding),
    else the padded copy it pools."""
    symmetric, (l, r, t, b) = layer.torch_padding(a, shape)
    if symmetric is not None:
        return [Saved("input")]
    c, h, w = shape
    return [Saved("own", numel=c * (h + t + b) * (w + l + r))]


class GlobalPool(LayerType):
    family = "pool"
    prefix = "gpool"
    ranks = (3,)
    args = {"keepdims": Arg(Bool(), False, "keep (C, 1, 1) instead of (C,)")}

    def output_shape(self, a, inputs):
        c = inputs[0][0]
        return (c, 1, 1) if a["keepdims"] else (c,)

    def torch(self, a, inputs, out):
        from .. import modules

        return getattr(modules, self.module)(a["keepdims"])  # the module named by the entry

    def receptive_field(self, a, fields, inputs, out):
        return fields[0].whole(inputs[0][1:])


@register
class GlobalAvgPool(GlobalPool):
    name = "global_avgpool"
    short_name = "global avgpool"
    aliases = ("global_avgpool2d", "gap")
    doc = "Mean of each channel over the whole map (Keras GlobalAveragePooling2D)."
    module = "GlobalAvgPool"  # a mean over (H, W): its backward needs only the input's size, no tensor


@register
class GlobalMaxPool(GlobalPool):
    name = "global_maxpool"
    short_name = "global maxpool"
    aliases = ("global_maxpool2d",)
    doc = "Maximum of each channel over the whole map (Keras GlobalMaxPooling2D)."
    module = "GlobalMaxPool"

    def saved(self, a, inputs, out):
        return [Saved("input"), Saved("output")]  # amax's backward compares input with result


@register
class AdaptiveAvgPool2d(LayerType):
    name = "adaptive_avgpool2d"
    short_name = "avgpool"
    aliases = ("adaptive_avgpool",)
    family = "pool"
    prefix = "avgpool"
    ranks = (3,)
    doc = "Average pooling to a fixed output size, whatever the input size (torchvision's heads)."
    args = {"output": Arg(Pair(), doc="output size: an integer or [height, width]")}

    def output_shape(self, a, inputs):
        return (inputs[0][0], *a["output"])

    def saved(self, a, inputs, out):
        # torch computes a 1x1 output as a mean over (H, W), whose backward keeps no tensor
        return [] if tuple(a["output"]) == (1, 1) else [Saved("input")]

    def receptive_field(self, a, fields, inputs, out):
        # each output averages at most ceil(H / out) rows, windows placed every floor(H / out)
        kernel = tuple(math.ceil(inputs[0][1 + i] / out[1 + i]) for i in range(2))
        stride = tuple(max(inputs[0][1 + i] // out[1 + i], 1) for i in range(2))
        return fields[0].window(kernel, stride, (0, 0))

    def torch(self, a, inputs, out):
        from torch import nn

        return nn.AdaptiveAvgPool2d(a["output"])

    def key_params(self, a):
        return f"→{a['output'][0]}×{a['output'][1]}"
