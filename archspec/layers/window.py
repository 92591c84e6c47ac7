"""Sliding-window arithmetic shared by convolution and pooling (the output-size formula (W - K + P) / S + 1).

    H'' = 1 + floor((H - H' + P_h^- + P_h^+) / S_h)      with H' = dilation * (kernel - 1) + 1

``ceil`` rounding follows torch's ceil_mode: the last window must start inside the input or
its leading padding.
"""
from __future__ import annotations

import math

from .base import Arg, Enum, Field, LayerType, Padding, Pair, ShapeError, fmt_shape


def resolve_padding(
    padding, size: tuple[int, int], kernel, stride, dilation
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding as ((top, left), (bottom, right)) for one input size."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "full":
        p = tuple(dilation[a] * (kernel[a] - 1) for a in range(2))
        return p, p
    if padding == "same":
        # TensorFlow/Keras 'same': output = ceil(input / stride); any odd padding goes after.
        before, after = [], []
        for a in range(2):
            k_eff = dilation[a] * (kernel[a] - 1) + 1
            out = math.ceil(size[a] / stride[a])
            total = max((out - 1) * stride[a] + k_eff - size[a], 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return tuple(before), tuple(after)
    t, b, l, r = padding
    return (t, l), (b, r)


def window_size(n: int, k_eff: int, stride: int, before: int, after: int, ceil: bool) -> int:
    span = n + before + after - k_eff
    if not ceil:
        return span // stride + 1 if span >= 0 else 0
    # torch's ceil_mode keeps a window hanging over the end, even the first one (by < stride)
    out = max(-(-span // stride) + 1, 0)
    if (out - 1) * stride >= n + before:  # torch: the last window may not start in the trailing pad
        out -= 1
    return out


class WindowLayer(LayerType):
    """A layer sliding a kernel over (C, H, W): convolution and pooling."""

    ranks = (3,)
    rounding_arg = False  # pools can round up (ceil_mode)

    def geometry(self, a: dict, shape):
        kernel, stride, dilation = a["kernel"], a["stride"] or a["kernel"], a.get("dilation", (1, 1))
        before, after = resolve_padding(a["padding"], shape[1:], kernel, stride, dilation)
        return kernel, stride, dilation, before, after

    def spatial_out(self, a: dict, shape) -> tuple[int, int]:
        kernel, stride, dilation, before, after = self.geometry(a, shape)
        ceil = a.get("rounding") == "ceil"
        out = []
        for ax in range(2):
            k_eff = dilation[ax] * (kernel[ax] - 1) + 1
            n = shape[1 + ax]
            size = window_size(n, k_eff, stride[ax], before[ax], after[ax], ceil)
            if size < 1:
                dilated = f" (dilated to {k_eff})" if k_eff != kernel[ax] else ""
                padded = f"{shape[1] + before[0] + after[0]}×{shape[2] + before[1] + after[1]}"
                raise ShapeError(
                    f"kernel {fmt_shape(kernel)}{dilated} is larger than its padded input {padded} "
                    f"(input {fmt_shape(shape)})"
                )
            out.append(size)
        height, width = out
        return height, width

    def torch_padding(self, a: dict, shape) -> tuple[tuple[int, int] | None, tuple[int, int, int, int]]:
        """(symmetric (h, w) padding or None, (left, right, top, bottom) for F.pad when asymmetric)."""
        _, _, _, before, after = self.geometry(a, shape)
        pad = (before[1], after[1], before[0], after[0])
        return (tuple(before) if tuple(before) == tuple(after) else None), pad

    def receptive_field(self, a, fields, inputs, out) -> Field:
        kernel, stride, dilation, before, _ = self.geometry(a, inputs[0])
        return fields[0].window(kernel, stride, before, dilation)

    def key_params(self, a: dict) -> str:
        k = a["kernel"]
        text = f"{k[0]}×{k[1]}" if k[0] != k[1] else f"{k[0]}×{k[0]}"
        s = a["stride"] or k
        if s != (1, 1):
            text += f" /{s[0]}" if s[0] == s[1] else f" /{s[0]}×{s[1]}"
        return text


def window_args(pool: bool) -> dict[str, Arg]:
    """The arguments every sliding window takes; pools default their stride to the kernel."""
    args = {
        "kernel": Arg(Pair(), doc="window size: an integer or [height, width]"),
        "stride": Arg(Pair(), None if pool else 1, "step between windows" + (" (default: the kernel)" if pool else "")),
        "padding": Arg(Padding(), 0 if pool else "valid",
                       "valid, same, full, an integer, [h, w] or [top, bottom, left, right]"),
    }
    if pool:
        args["rounding"] = Arg(Enum(("floor", "ceil")), "floor", "how a partial last window counts (torch's ceil_mode)")
    return args
