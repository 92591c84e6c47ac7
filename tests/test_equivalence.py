"""The compiled zoo computes what the hand-written PyTorch models compute.

The reference models below are plain ``nn.Module`` classes written here from the published
layouts (a course's Keras MNIST net; torchvision's VGG-16, ResNet-18 and GoogLeNet
without aux heads), not from archspec. archspec's module's state_dict is copied into the
reference entry by entry, in order: the shapes must pair up one by one, which by itself checks
the layer order. Then both run in eval mode on the same random input and must agree to float32
precision.

Batch norms are given random running statistics and affine parameters first, so that they are
not identities in eval mode and a misplaced one would show. References are created on the meta
device and materialised empty: every value they hold is copied from archspec's module.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archspec  # noqa: E402

# ------------------------------------------------------------------ hand-written references


class MnistCNN(nn.Module):
    """A course's Keras MNIST net: Conv2D(16, 3) relu, MaxPool2D, Conv2D(32, 3) relu, MaxPool2D,
    Flatten, Dense(32) relu, Dense(10) softmax, on 1x28x28 (channels first here)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.dense1 = nn.Linear(32 * 5 * 5, 32)
        self.dense2 = nn.Linear(32, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.dense1(torch.flatten(x, 1)))
        return torch.softmax(self.dense2(x), dim=1)


class VGG16(nn.Module):
    """torchvision.models.vgg16: features (configuration D), avgpool to 7x7, classifier with dropout."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """torchvision.models.resnet18: a downsample (1x1 conv + bn) only where the shape changes."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BasicConv2d(nn.Module):
    """torchvision.models.googlenet.BasicConv2d: conv without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """torchvision.models.googlenet.Inception; branch3 uses a 3x3 conv, as torchvision's does."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """torchvision.models.googlenet(aux_logits=False, transform_input=False)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4c(self.inception4b(self.inception4a(x)))
        x = self.maxpool4(self.inception4e(self.inception4d(x)))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


REFERENCES = {
    # spec: (reference class, batch of the comparison)
    "mnist_cnn": (MnistCNN, 2),
    "vgg16": (VGG16, 2),
    "resnet18": (ResNet18, 2),
    "googlenet": (GoogLeNet, 2),
}

# ------------------------------------------------------------------ the comparison


def randomise_batchnorms(module: nn.Module, generator: torch.Generator) -> None:
    """Random running statistics and affine parameters: a batch norm in eval mode is then no identity."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(c, generator=generator) * 0.1)


def copy_in_order(source: nn.Module, target: nn.Module) -> list[tuple[str, str]]:
    """Copy source's state_dict into target's entry by entry in order; the shapes must pair up."""
    src, dst = source.state_dict(), target.state_dict()
    assert len(src) == len(dst), f"{len(src)} state entries in archspec's module, {len(dst)} in the reference"
    pairs = []
    with torch.no_grad():
        for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
            assert sv.shape == dv.shape and sv.dtype == dv.dtype, f"{sk} {tuple(sv.shape)} vs {dk} {tuple(dv.shape)}"
            assert sk.rsplit(".", 1)[1] == dk.rsplit(".", 1)[1], f"{sk} pairs with {dk}"
            dv.copy_(sv)
            pairs.append((sk, dk))
    return pairs


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_compiled_spec_equals_the_hand_written_model(name):
    cls, batch = REFERENCES[name]
    generator = torch.Generator().manual_seed(0)
    ours = archspec.build(name, seed=0)
    randomise_batchnorms(ours, generator)
    with torch.device("meta"):
        reference = cls()
    reference = reference.to_empty(device="cpu")
    pairs = copy_in_order(ours, reference)
    assert len(pairs) == len(ours.state_dict())
    ours.eval()
    reference.eval()
    x = torch.randn(batch, *archspec.expand(name).input_shape, generator=generator)
    with torch.no_grad():
        expected = reference(x)
        actual = ours(x)
    assert actual.shape == expected.shape
    assert expected.abs().max() > 0 and expected.std() > 0  # not a vanishing signal
    torch.testing.assert_close(actual, expected)


def test_resnet18_pairs_with_torchvision_names():
    ours = archspec.build("resnet18", seed=0)
    with torch.device("meta"):
        reference = ResNet18()
    pairs = dict(copy_in_order(ours, reference.to_empty(device="cpu")))
    assert all(ours_key == theirs for ours_key, theirs in pairs.items())  # torchvision's names, every one
    assert pairs["layer2.0.downsample.1.running_var"] == "layer2.0.downsample.1.running_var"
    assert not any("layer1.0.downsample" in k for k in pairs)  # layer1 keeps the shape: no projection


def test_googlenet_pairs_with_torchvision_names():
    ours = archspec.build("googlenet", seed=0)
    with torch.device("meta"):
        reference = GoogLeNet()
    pairs = dict(copy_in_order(ours, reference.to_empty(device="cpu")))
    assert all(ours_key == theirs for ours_key, theirs in pairs.items())  # torchvision's names, every one
    assert pairs["inception3a.branch3.1.conv.weight"] == "inception3a.branch3.1.conv.weight"
    assert pairs["inception5b.branch4.1.bn.bias"] == "inception5b.branch4.1.bn.bias"


def test_a_wrong_layer_order_is_caught():
    """The pairing is a real check: a reference with two layers swapped refuses the copy."""

    class Swapped(MnistCNN):
        def __init__(self):
            nn.Module.__init__(self)
            self.conv1 = nn.Conv2d(1, 16, 3)
            self.dense1 = nn.Linear(32 * 5 * 5, 32)  # registered before conv2
            self.conv2 = nn.Conv2d(16, 32, 3)
            self.dense2 = nn.Linear(32, 10)

    with pytest.raises(AssertionError, match="conv2.weight"):
        copy_in_order(archspec.build("mnist_cnn", seed=0), Swapped())
