"""Plain torch references of four zoo networks, written by hand from their papers, with module
names laid out as torchvision's so its state_dict keys load strictly.

They are the oracle of tests/test_zoo_references.py: a spec's compiled module and its reference,
loaded with the same random state_dict, must compute the same outputs. Nothing here imports
archspec or torchvision.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn


def divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10% below ``value`` (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU,
            eps: float = 1e-5) -> nn.Sequential:
    """Convolution without bias, batch norm, then an activation if any: keys .0 (conv) and .1 (bn)."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=eps)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): a per-channel gate from the global average."""

    def __init__(self, channels: int, squeezed: int, act: type, gate: type):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):  # (B, C, H, W)
        g = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(g))))


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, optional squeeze-and-excitation, project 1x1 (no activation); the
    input is added where the shape is kept (MobileNetV2/V3, EfficientNet's MBConv)."""

    def __init__(self, c_in, expanded, c_out, kernel, stride, act, se_channels, se_act, se_gate, eps):
        super().__init__()
        layers = []
        if expanded != c_in:
            layers.append(conv_bn(c_in, expanded, 1, act=act, eps=eps))
        layers.append(conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act, eps=eps))
        if se_channels:
            layers.append(SqueezeExcite(expanded, se_channels, se_act, se_gate))
        layers.append(conv_bn(expanded, c_out, 1, act=None, eps=eps))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.block(x)  # stochastic depth, where the network has it, is the identity in eval mode
        return x + y if self.residual else y


# ------------------------------------------------------------------ MobileNetV3-Small


# kernel, expanded, out, squeeze-and-excitation, hard-swish (else ReLU), stride: Howard et al. (2019), table 2
MOBILENET_V3_SMALL = [
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
]


class MobileNetV3Small(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        eps = 1e-3
        layers = [conv_bn(3, 16, 3, 2, act=nn.Hardswish, eps=eps)]
        c = 16
        for kernel, expanded, out, se, hswish, stride in MOBILENET_V3_SMALL:
            layers.append(InvertedResidual(c, expanded, out, kernel, stride, nn.Hardswish if hswish else nn.ReLU,
                                           divisible(expanded / 4) if se else 0, nn.ReLU, nn.Hardsigmoid, eps))
            c = out
        layers.append(conv_bn(c, 6 * c, 1, act=nn.Hardswish, eps=eps))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(6 * c, 1024), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(1024, classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


# ------------------------------------------------------------------ EfficientNet-B0


# expansion, kernel, stride, out, layers: Tan & Le (2019), table 1
EFFICIENTNET_B0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                   (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


class MBConv(InvertedResidual):
    """EfficientNet's block: SiLU everywhere, a squeeze to a quarter of the block's input channels."""

    def __init__(self, c_in, expansion, c_out, kernel, stride):
        super().__init__(c_in, c_in * expansion, c_out, kernel, stride, nn.SiLU, max(1, c_in // 4), nn.SiLU,
                         nn.Sigmoid, 1e-5)


class EfficientNetB0(nn.Module):
    def __init__(self, classes: int = 1000):
        super().__init__()
        layers = [conv_bn(3, 32, 3, 2, act=nn.SiLU)]
        c = 32
        for expansion, kernel, stride, out, n in EFFICIENTNET_B0:
            stage = [MBConv(c if i == 0 else out, expansion, out, kernel, stride if i == 0 else 1) for i in range(n)]
            layers.append(nn.Sequential(*stage))
            c = out
        layers.append(conv_bn(c, 4 * c, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * c, classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


# ------------------------------------------------------------------ ConvNeXt-T


class ChannelsLast(nn.Module):
    """(B, C, H, W) <-> (B, H, W, C), so LayerNorm and Linear act on the channels of each pixel."""

    def __init__(self, *order: int):
        super().__init__()
        self.order = order

    def forward(self, x):
        return x.permute(*self.order)


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):  # (B, C, H, W), normalised over C at each pixel
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7, layer norm, 1x1 to 4C, GELU, 1x1 back, times a learned per-channel scale, plus the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim), ChannelsLast(0, 2, 3, 1), nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), ChannelsLast(0, 3, 1, 2))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x):
        return x + self.layer_scale * self.block(x)  # stochastic depth: the identity in eval mode


class ConvNeXtTiny(nn.Module):
    """Liu et al., A ConvNet for the 2020s (2022): depths 3, 3, 9, 3 and widths 96 to 768."""

    def __init__(self, classes: int = 1000, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


# ------------------------------------------------------------------ ShuffleNetV2 1.0x


def shuffle(x, groups: int = 2):
    """Interleave the channels of ``groups`` equal groups: (g, C/g) -> (C/g, g)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """Ma et al. (2018), figure 3: (c) splits the channels in two and transforms one half;
    (d), with stride 2, transforms the whole input twice; both halves are concatenated, then shuffled."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        half = c_out // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                nn.Conv2d(c_in, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        into = c_in if stride > 1 else half
        self.branch2 = nn.Sequential(
            nn.Conv2d(into, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        if self.stride > 1:
            y = torch.cat([self.branch1(x), self.branch2(x)], 1)
        else:
            kept, changed = x.chunk(2, dim=1)
            y = torch.cat([kept, self.branch2(changed)], 1)
        return shuffle(y)


class ShuffleNetV2(nn.Module):
    def __init__(self, classes: int = 1000, repeats=(4, 8, 4), widths=(24, 116, 232, 464, 1024)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c = widths[0]
        for k, (n, width) in enumerate(zip(repeats, widths[1:]), start=2):
            setattr(self, f"stage{k}", nn.Sequential(*[ShuffleUnit(c if i == 0 else width, width, 2 if i == 0 else 1)
                                                       for i in range(n)]))
            c = width
        self.conv5 = nn.Sequential(nn.Conv2d(c, widths[-1], 1, bias=False), nn.BatchNorm2d(widths[-1]), nn.ReLU())
        self.fc = nn.Linear(widths[-1], classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.conv5(x).mean((2, 3)))


# ------------------------------------------------------------------ ResNet-50, ResNeXt-50, Wide ResNet-50


class Bottleneck(nn.Module):
    """1x1 to the width, 3x3 grouped with the stride (v1.5), 1x1 to 4c, plus the input or its
    projection (1x1 conv and bn, torchvision's ``downsample``) where the shape changes."""

    def __init__(self, c_in: int, c: int, stride: int, groups: int, width_per_group: int):
        super().__init__()
        width, c_out = c * width_per_group // 64 * groups, 4 * c
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.downsample = (conv_bn(c_in, c_out, 1, stride, act=None) if stride != 1 or c_in != c_out else None)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """He et al. (2016), 50 layers: 3, 4, 6 and 3 bottlenecks; ResNeXt (Xie et al., 2017) splits the
    3x3 into groups, Wide ResNet (Zagoruyko & Komodakis, 2016) widens it."""

    def __init__(self, classes: int = 1000, groups: int = 1, width_per_group: int = 64):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for k, (c, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
            blocks = [Bottleneck(c_in if i == 0 else 4 * c, c, 2 if i == 0 and k > 1 else 1, groups, width_per_group)
                      for i in range(n)]
            setattr(self, f"layer{k}", nn.Sequential(*blocks))
            c_in = 4 * c
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))


# ------------------------------------------------------------------ RegNetX-400MF, RegNetY-400MF


class RegNetBlock(nn.Module):
    """Radosavovic et al. (2020): 1x1 (a), 3x3 in groups of group_width carrying the stride (b),
    squeeze-and-excitation to se_ratio of the block's input width (se, RegNetY), 1x1 without
    activation (c); added to the input, or to its 1x1 projection (proj) where the shape changes; ReLU."""

    def __init__(self, c_in: int, width: int, stride: int, group_width: int, se_ratio: float):
        super().__init__()
        self.proj = conv_bn(c_in, width, 1, stride, act=None) if c_in != width or stride != 1 else None
        parts = {"a": conv_bn(c_in, width, 1), "b": conv_bn(width, width, 3, stride, groups=width // group_width)}
        if se_ratio:
            parts["se"] = SqueezeExcite(width, round(se_ratio * c_in), nn.ReLU, nn.Sigmoid)
        parts["c"] = conv_bn(width, width, 1, act=None)
        self.f = nn.Sequential(OrderedDict(parts))

    def forward(self, x):
        return torch.relu(self.f(x) + (x if self.proj is None else self.proj(x)))


class RegNet(nn.Module):
    """A 3x3 stem to 32 channels, four stages (trunk_output.block1..4, blocks block1-0, block1-1,
    ...) each halving the resolution, global average pool, linear classifier."""

    def __init__(self, widths, depths, group_width: int, se_ratio: float = 0.0, classes: int = 1000):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        stages, c_in = [], 32
        for k, (width, depth) in enumerate(zip(widths, depths), start=1):
            blocks = [(f"block{k}-{i}", RegNetBlock(c_in if i == 0 else width, width, 2 if i == 0 else 1,
                                                   group_width, se_ratio)) for i in range(depth)]
            stages.append((f"block{k}", nn.Sequential(OrderedDict(blocks))))
            c_in = width
        self.trunk_output = nn.Sequential(OrderedDict(stages))
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        return self.fc(self.trunk_output(self.stem(x)).mean((2, 3)))


REFERENCES = {
    "mobilenet_v3_small": MobileNetV3Small,
    "efficientnet_b0": EfficientNetB0,
    "convnext_tiny": ConvNeXtTiny,
    "shufflenet_v2_x1_0": ShuffleNetV2,
    "resnet50": ResNet50,
    "resnext50_32x4d": lambda: ResNet50(groups=32, width_per_group=4),
    "wide_resnet50_2": lambda: ResNet50(width_per_group=128),
    "regnet_x_400mf": lambda: RegNet((32, 64, 160, 400), (1, 2, 7, 12), group_width=16),
    "regnet_y_400mf": lambda: RegNet((48, 104, 208, 440), (1, 3, 6, 6), group_width=8, se_ratio=0.25),
}


def random_state(module: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state_dict of the module's names and shapes with random values: batch norm statistics
    positive and near 1, so every layer's output stays of order 1 through a deep network."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in module.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(t.shape, generator=gen)
        elif name.endswith(("running_mean", ".bias")):
            state[name] = 0.1 * torch.randn(t.shape, generator=gen)
        elif t.dim() <= 1 or name.endswith("layer_scale"):  # norm scales, layer scales
            state[name] = 0.5 + torch.rand(t.shape, generator=gen)
        else:  # fan-in scaling keeps the variance of each layer's output near its input's
            fan_in = math.prod(t.shape[1:])
            state[name] = torch.randn(t.shape, generator=gen) / math.sqrt(fan_in)
    return state
