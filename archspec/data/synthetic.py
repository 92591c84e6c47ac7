"""A learnable generated set for benchmarks and tests: each class a fixed smooth pattern, plus noise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError
from .labelled import LabelledImages, check_memory
from .sources import Request

DEFAULT_SIZE = 1024
DEFAULT_CLASSES = 10


def open_synthetic(argument: str, request: Request) -> LabelledImages:
    """``argument`` is "", "N" or "N:K": N images of K classes."""
    parts = argument.split(":") if argument else []
    try:
        if len(parts) > 2:
            raise ValueError
        count = int(parts[0]) if parts and parts[0] else DEFAULT_SIZE
        kinds = int(parts[1]) if len(parts) > 1 else DEFAULT_CLASSES
    except ValueError:
        raise UsageError("synthetic data is 'synthetic', 'synthetic:N' or 'synthetic:N:K', "
                         f"not 'synthetic:{argument}'") from None
    if count < 1 or kinds < 2 or kinds > count:
        raise UsageError(f"synthetic:{argument}: needs N ≥ K ≥ 2 (N images, K classes)")
    origin = f"synthetic ({count:,} images, {kinds} classes)"
    shape = request.shape
    check_memory(count, shape, origin)
    channels, height, width = shape
    # The patterns depend only on K and the shape, so separate synthetic sources (train, val, test)
    # share their classes; the seed picks the samples. Coarse 4×4 patterns survive resizing and augmentation.
    patterns_rng = torch.Generator().manual_seed(0x5EED + kinds)
    coarse = torch.rand((kinds, channels, 4, 4), generator=patterns_rng)
    patterns = 0.2 + 0.6 * F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    rng = torch.Generator().manual_seed(request.seed)
    labels = (torch.arange(count) % kinds)[torch.randperm(count, generator=rng)]
    images = torch.empty((count, channels, height, width), dtype=torch.float32)
    for start in range(0, count, 4096):
        chunk = labels[start:start + 4096]
        noise = torch.randn((len(chunk), channels, height, width), generator=rng)
        images[start:start + 4096] = (patterns[chunk] + 0.1 * noise).clamp_(0.0, 1.0)
    return LabelledImages(classes=[str(k) for k in range(kinds)], labels=labels, images=images, paths=None,
                          shape=shape, origin=origin)
