"""Image files as tensors: the one decoder that training, `predict` and `inspect` share.

Every image a network sees from a file passes through `decode_file`, so for the same ``fit`` the
three see the same pixels: Pillow decodes (its header is read first and the pixel count checked
against MAX_IMAGE_PIXELS before anything is decoded: a decompression bomb stops there), 16-bit grey
is scaled (not clipped) to 8 bits, the picture is converted to grey (ITU-R 601 luminance, as Pillow's
"L") or RGB, fitted to the spec's height and width, and returned as (C, H, W) float32 in [0, 1].

fit: "stretch" resizes the whole picture to H×W (what the data sets do, so a trained network is
asked about pictures prepared as its training images were); "crop" first cuts the centre to the
aspect ratio of H×W, so a photo is not distorted (torchvision's Resize + CenterCrop, in one step).
Both resize with Pillow's bilinear filter, which widens its support when shrinking (antialiased).
"""
from __future__ import annotations

import os
import warnings
from typing import Any, cast

from .errors import ArchspecError, LimitError, Location, UsageError

MAX_IMAGE_PIXELS = 64_000_000  # one image; far beyond any training image, well below a decompression bomb
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FITS = ("stretch", "crop")


class _SurvivesWorkers:
    """A DataLoader worker re-raises an exception in the main process as ``type(exc)(traceback_text)``,
    which would print a traceback where archspec promises one line. Recover that line instead."""

    def __init__(self, message: str, location: Location | None = None, node: str = ""):
        if message.startswith(f"Caught {type(self).__name__} in DataLoader worker"):
            message, location = _original_problem(message, type(self).__name__)
        super().__init__(message, location, node)  # type: ignore[call-arg]


class ImageError(_SurvivesWorkers, ArchspecError):
    """An image that cannot be read, raised with its path (and CSV row)."""


class ImageLimitError(_SurvivesWorkers, LimitError):
    """An image larger than MAX_IMAGE_PIXELS: refused whatever the bad-image policy (it is not merely unreadable)."""


class TooLarge(Exception):
    """Raised by `decode_file` before decoding an image over the pixel limit."""


def _original_problem(wrapped: str, class_name: str) -> tuple[str, Location | None]:
    # The traceback ends with "module.ClassName: <str(problem)>", and str(problem) is
    # "<file>:<line>:<col>: error: <message>" or "error: <message>" (see errors.Problem).
    last = next((line for line in reversed(wrapped.splitlines()) if f"{class_name}: " in line), "")
    text = last.split(f"{class_name}: ", 1)[-1]
    if text.startswith("error: "):
        return text[len("error: "):], None
    where, sep, message = text.partition(": error: ")
    if not sep:
        return text, None
    file, line, col = _split_location(where)
    return message, Location(file, line, col)


def _split_location(where: str) -> tuple[str, int, int]:
    """"file:line:col", "file:line" or "file" back into its parts (Location's str, reversed)."""
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    file, _, line = where.rpartition(":")
    if file and line.isdigit():
        return file, int(line), 0
    return where, 0, 0


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise UsageError(f"fit must be {' or '.join(repr(f) for f in FITS)}, not {fit!r}")
    return fit


def check_channels(channels: int, where: Location | None = None) -> None:
    if channels not in (1, 3):
        raise ArchspecError(f"the input has {channels} channels; images from files can be converted to "
                            "1 (grayscale) or 3 (RGB)", where)


def describe(exc: BaseException) -> str:
    """Why a file could not be read, in words (Pillow raises many types for corrupt files)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image file Pillow can decode"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def decode_file(path: str, shape: tuple[int, int, int], fit: str = "stretch") -> Any:
    """One image file as a (C, H, W) float32 tensor in [0, 1]. Raises TooLarge over the pixel limit and
    Pillow's or the OS's exceptions for unreadable files (a data set decides whether to stop or skip)."""
    return picture_tensor(decode_picture(path, shape, fit), shape)


def decode_picture(path: str, shape: tuple[int, int, int], fit: str = "stretch") -> Any:
    """One image file as a Pillow picture in mode "L" or "RGB", fitted to (H, W); raises as `decode_file`."""
    from PIL import Image

    channels, height, width = shape
    with warnings.catch_warnings():
        # Pillow's own bomb check only warns below twice its limit; make it refuse, like ours.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)  # lazy: reads the header only
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise TooLarge(str(exc)) from None
        with image:
            pixels = image.size[0] * image.size[1]
            if pixels > MAX_IMAGE_PIXELS:
                raise TooLarge(f"{image.size[0]}×{image.size[1]} = {pixels:,} pixels, more than "
                               f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels")
            mode = "L" if channels == 1 else "RGB"
            image.draft(mode, (width, height))  # JPEG: decode at a reduced scale when much larger
            image.load()
            picture: Any = image
            if image.mode.startswith("I;16") or (image.mode == "I" and cast(Any, image.getextrema())[1] > 255):
                # 16-bit grey (PNG, TIFF): Pillow's conversion to 8 bits would clip, not scale
                picture = image.convert("I").point(lambda v: v / 257)
            converted = picture.convert(mode) if picture.mode != mode else picture.copy()  # grey -> RGB replicates
    return fit_picture(converted, (height, width), fit)


def picture_tensor(picture, shape: tuple[int, int, int], fit: str = "stretch") -> Any:
    """A Pillow picture, converted to grey (ITU-R 601) or RGB, fitted to (C, H, W) and scaled to [0, 1]."""
    import numpy as np
    import torch

    channels, height, width = shape
    mode = "L" if channels == 1 else "RGB"
    picture = fit_picture(picture if picture.mode == mode else picture.convert(mode), (height, width), fit)
    array = torch.from_numpy(np.array(picture).reshape(height, width, channels))
    return array.permute(2, 0, 1).float().div_(255.0)


def fit_picture(picture, size: tuple[int, int], fit: str = "stretch"):
    """Resize a Pillow picture to ``size`` (H, W); with fit="crop", centre-crop to its aspect ratio first."""
    from PIL import Image

    height, width = size
    w, h = picture.size
    if (w, h) == (width, height):
        return picture
    if check_fit(fit) == "crop":
        if w * height > h * width:  # too wide: crop the sides
            keep = max(1, round(h * width / height))
            left = (w - keep) // 2
            picture = picture.crop((left, 0, left + keep, h))
        elif w * height < h * width:  # too tall: crop top and bottom
            keep = max(1, round(w * height / width))
            top = (h - keep) // 2
            picture = picture.crop((0, top, w, top + keep))
    return picture.resize((width, height), Image.Resampling.BILINEAR)


def load_image(path: str | os.PathLike, shape: tuple[int, int, int], fit: str = "stretch") -> Any:
    """One image file as (C, H, W) float32 in [0, 1], every failure an ImageError naming the file."""
    path = os.fspath(path)
    where = Location(path)
    check_fit(fit)
    check_channels(shape[0], where)
    if not os.path.exists(path):
        raise ImageError(f"cannot read image {path}: no such file", where)
    if not os.path.isfile(path):  # a FIFO named x.png would block the open forever
        raise ImageError(f"cannot read image {path}: not a regular file", where)
    try:
        return decode_file(path, shape, fit)
    except TooLarge as exc:
        raise ImageLimitError(f"image {path} is too large to decode ({exc})", where) from None
    except Exception as exc:  # Pillow raises many types for corrupt files; all mean "unreadable"
        raise ImageError(f"cannot read image {path}: {describe(exc)}", where) from None
