"""The few torch modules that torch.nn lacks, for catalogue entries to construct.

Imported only by the compiler (``archspec.build``); the analysis never imports torch.
Each keeps the parameter names of its torch.nn parent, so state_dict keys read like the spec.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PaddedConv2d(nn.Conv2d):
    """A convolution with asymmetric zero padding (TensorFlow 'same' with stride > 1, [t, b, l, r])."""

    def __init__(self, *, pad: tuple[int, int, int, int], **kwargs):
        super().__init__(padding=0, **kwargs)
        self.pad = pad  # (left, right, top, bottom), F.pad's order

    def forward(self, x):
        return super().forward(F.pad(x, self.pad))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad={self.pad}"


class PaddedMaxPool2d(nn.MaxPool2d):
    """Max pooling with asymmetric padding; padded positions never win (they are -inf)."""

    def __init__(self, *, pad: tuple[int, int, int, int], **kwargs):
        super().__init__(padding=0, **kwargs)
        self.pad = pad

    def forward(self, x):
        return super().forward(F.pad(x, self.pad, value=float("-inf")))


class SumPool2d(nn.Module):
    """Sum over each window (average pooling without the division) (sum pooling).

    Symmetric padding goes to torch's own padding argument, so ceil mode follows torch's rule (the last
    window starts inside the input or its leading padding); a padded copy would let it start in the
    trailing padding too. Uneven padding (never with ceil mode: the catalogue refuses it) pads first.
    """

    def __init__(self, kernel_size, stride, pad: tuple[int, int, int, int], ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.pad, self.ceil_mode = kernel_size, stride, pad, ceil_mode

    def forward(self, x):
        left, right, top, bottom = self.pad
        if (left, top) == (right, bottom):
            return F.avg_pool2d(x, self.kernel_size, self.stride, (top, left), self.ceil_mode, True,
                                divisor_override=1)
        return F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride, 0, self.ceil_mode,
                            True, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"


class PaddedAvgPool2d(nn.Module):
    """Average pooling with asymmetric padding; with count_include_pad false, as Keras 'same'."""

    def __init__(self, kernel_size, stride, pad, ceil_mode: bool, count_include_pad: bool):
        super().__init__()
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride, 0, self.ceil_mode, True,
                             divisor_override=1)
        if self.count_include_pad:
            return total / (self.kernel_size[0] * self.kernel_size[1])
        ones = F.pad(torch.ones_like(x[:1, :1]), self.pad)
        count = F.avg_pool2d(ones, self.kernel_size, self.stride, 0, self.ceil_mode, True, divisor_override=1)
        return total / count


class GlobalAvgPool(nn.Module):
    """Mean over H and W (Keras GlobalAveragePooling2D): (N, C, H, W) -> (N, C)."""

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=self.keepdims)


class GlobalMaxPool(nn.Module):
    """Maximum over H and W (Keras GlobalMaxPooling2D): (N, C, H, W) -> (N, C)."""

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x):
        return x.amax(dim=(2, 3), keepdim=self.keepdims)


def add(*tensors):
    """Element-wise sum of any number of tensors (a residual merge)."""
    total = tensors[0]
    for t in tensors[1:]:
        total = total + t
    return total


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of (N, C, H, W): channels-last, normalise, back (ConvNeXt).

    A subclass of nn.LayerNorm, so its state_dict keys are weight and bias as torchvision's LayerNorm2d.
    """

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., 2016): while training, zero whole samples ("row") or the whole
    batch ("batch") with probability p and scale the rest by 1/(1-p); the identity in eval mode
    (torchvision.ops.StochasticDepth)."""

    def __init__(self, p: float, mode: str = "row"):
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


def scale(weight, x):
    """A learned per-channel factor times the input (layer scale); weight broadcasts over H and W."""
    return weight * x
