"""Data augmentation for `archspec train`: rotation, noise, mirroring, cropping and colour shift.

Augmentation runs on whole batches with vectorised torch ops, so it costs little on the CPU and
runs on the GPU next to the model when the batch is already there. Every random number comes from
the caller's `torch.Generator`: a run with the same seed sees the same augmented images, and a
resumed run continues the same sequence once the generator's state is restored. Each image still
gets its own angle, flip, offset and shift.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..data.labelled import LabelledImages


@dataclass(frozen=True)
class Augment:
    """What to vary in training images; all off by default."""

    rotation: float = 0.0  # max degrees, uniform in [-r, r]
    noise: float = 0.0  # std of additive gaussian noise, in [0, 1] image units
    mirror: bool = False  # horizontal flip with probability 1/2
    crop: int = 0  # pad by `crop` pixels (reflect) then random-crop back to H×W (translation jitter)
    colour_shift: float = 0.0  # max per-channel additive shift in 0..255 units (as A. Ng's Convolutional Neural Networks course (deeplearning.ai): R +20, G -20, B +20)

    def __post_init__(self):
        for name in ("rotation", "noise", "crop", "colour_shift"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value >= 0):
                raise UsageError(f"augment.{name} must be a non-negative number, not {value!r}")
        if int(self.crop) != self.crop:
            raise UsageError(f"augment.crop must be a whole number of pixels, not {self.crop!r}")
        if not isinstance(self.mirror, bool):
            raise UsageError(f"augment.mirror must be true or false, not {self.mirror!r}")

    @property
    def active(self) -> bool:
        return bool(self.rotation or self.noise or self.mirror or self.crop or self.colour_shift)

    @classmethod
    def from_dict(cls, d: dict) -> Augment:
        """From the spec's ``augment`` mapping (keys as the fields; missing keys stay off)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(f"unknown augment option{'s' * (len(unknown) > 1)}: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        values = dict(d)
        if "crop" in values and isinstance(values["crop"], float) and values["crop"].is_integer():
            values["crop"] = int(values["crop"])
        return cls(**values)


def augment_batch(images: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch (B, C, H, W) of floats in [0, 1]; the result is clamped to [0, 1].

    ``generator`` must be on the images' device. The draws happen in a fixed order (offsets, angles,
    flips, shifts, noise), each only for an enabled augmentation. An inactive `Augment` returns the
    batch itself, untouched.
    """
    if not aug.active:
        return images
    batch, channels, height, width = images.shape
    device, dtype = images.device, images.dtype
    out = images
    if aug.crop:
        out = _translate(out, int(aug.crop), generator)
    if aug.rotation:
        degrees = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * aug.rotation
        out = rotate(out, degrees)
    if aug.mirror:
        flip = torch.rand(batch, generator=generator, device=device) < 0.5
        out = torch.where(flip.view(batch, 1, 1, 1), out.flip(-1), out)
    if aug.colour_shift:
        shift = (torch.rand((batch, channels, 1, 1), generator=generator, device=device) * 2 - 1)
        out = out + (shift * (aug.colour_shift / 255.0)).to(dtype)
    if aug.noise:
        out = out + torch.randn(out.shape, generator=generator, device=device, dtype=dtype) * aug.noise
    return out.clamp(0.0, 1.0)


def _translate(images: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """Pad by ``crop`` pixels and cut an H×W window at a random offset per image: a shift of up to ±crop."""
    batch, channels, height, width = images.shape
    device = images.device
    # reflect padding needs the pad to be smaller than the image; tiny images repeat their border instead
    mode = "reflect" if crop < height and crop < width else "replicate"
    padded = F.pad(images, (crop, crop, crop, crop), mode=mode)
    dy = torch.randint(0, 2 * crop + 1, (batch,), generator=generator, device=device)
    dx = torch.randint(0, 2 * crop + 1, (batch,), generator=generator, device=device)
    rows = (dy.view(batch, 1) + torch.arange(height, device=device)).view(batch, height, 1)
    cols = (dx.view(batch, 1) + torch.arange(width, device=device)).view(batch, 1, width)
    samples = torch.arange(batch, device=device).view(batch, 1, 1)
    # (B, H+2c, W+2c, C) gathered at (b, rows, cols) -> (B, H, W, C)
    window = padded.permute(0, 2, 3, 1)[samples, rows, cols]
    return window.permute(0, 3, 1, 2).contiguous()


def rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image counter-clockwise by its angle (B,) about its centre, bilinear, zeros outside."""
    batch, _, height, width = images.shape
    radians = degrees.to(torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # affine_grid works in [-1, 1] coordinates for each axis; the aspect ratio turns that back into a
    # true rotation of non-square images (and not a shear).
    theta = torch.stack([
        torch.stack([cos, -sin * (height / width), zero], dim=1),
        torch.stack([sin * (width / height), cos, zero], dim=1),
    ], dim=1).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _sample_seed(base_seed: int, epoch: int, index: int) -> int:
    # A hash, not arithmetic, so nearby (epoch, index) pairs do not give correlated generator seeds.
    digest = hashlib.blake2b(f"{base_seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class AugmentedView(torch.utils.data.Dataset):
    """A `LabelledImages` seen through augmentation, one sample at a time, for DataLoader workers.

    Sample i of epoch e is augmented with a generator seeded from (base_seed, e, i), so the result
    does not depend on the number of workers or on which worker decodes it. Call `set_epoch` before
    iterating each epoch; the epoch lives in shared memory so persistent workers see it too.
    """

    def __init__(self, data: LabelledImages, aug: Augment, base_seed: int):
        self.data = data
        self.aug = aug
        self.base_seed = int(base_seed)
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._generator: torch.Generator | None = None  # one per process, made on first use

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        image, label = self.data[i]
        if image is None or not self.aug.active:
            return image, label
        if self._generator is None:
            self._generator = torch.Generator()
        self._generator.manual_seed(_sample_seed(self.base_seed, self.epoch, int(i)))
        return augment_batch(image.unsqueeze(0), self.aug, self._generator)[0], label

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_generator"] = None  # generators need not pickle; each worker makes its own
        return state
