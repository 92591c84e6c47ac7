"""scikit-learn's bundled 8×8 handwritten digits (UCI optical digits test set): the default source."""
from __future__ import annotations

import torch

from .labelled import LabelledImages, in_memory_set
from .sources import Request


def open_digits(argument: str, request: Request) -> LabelledImages:
    from sklearn.datasets import load_digits

    bunch = load_digits()  # bundled with scikit-learn: never downloads
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8), 0..16
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    origin = f"digits (scikit-learn, {len(labels):,} images)"
    return in_memory_set(images, labels, [str(d) for d in range(10)], request.shape, origin, scale=16.0)
