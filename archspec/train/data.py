"""The trainer's view of `archspec.data` (where the data sources, their readers and the splits live)."""
from __future__ import annotations

from ..data.labelled import BadImageWarning, ImageError, ImageLimitError, LabelledImages, collate
from ..data.loading import Splits, channel_stats, load_splits, open_data, split
from ..images import load_image

__all__ = ["BadImageWarning", "ImageError", "ImageLimitError", "LabelledImages", "Splits", "channel_stats",
           "collate", "load_image", "load_splits", "open_data", "split"]
