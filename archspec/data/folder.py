"""A folder with one subfolder of images per class (torchvision's ImageFolder layout).

The set is file-backed: images are decoded when read, so one that does not fit in memory streams
from disk through DataLoader workers (the trainer decodes it into memory once when it fits).
"""
from __future__ import annotations

import os

from ..errors import ArchspecError, Location, Problem, SpecError
from ..images import IMAGE_EXTENSIONS, check_channels, describe
from ..text import listing
from .labelled import LabelledImages, file_backed
from .sources import Request


def open_folder(folder: str, request: Request) -> LabelledImages:
    where = Location(folder)
    check_channels(request.shape[0], where)
    try:
        found = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    except OSError as exc:
        raise ArchspecError(f"cannot read the folder: {describe(exc)}", where) from None
    if not found:
        raise ArchspecError("no class subfolders (a folder source holds one subfolder of images per class)", where)
    names = found if request.classes is None else [str(c) for c in request.classes]
    index = {name: k for k, name in enumerate(names)}
    unknown = [name for name in found if name not in index]
    if unknown:
        raise ArchspecError(f"class folders not among the training classes ({listing(names)}): "
                            f"{listing(unknown)}", where)
    paths: list[str] = []
    labels: list[int] = []
    empty: list[str] = []
    for name in found:
        before = len(paths)
        for root, dirs, files in os.walk(os.path.join(folder, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # walk in a fixed order
            for file in sorted(files):
                path = os.path.join(root, file)
                # regular files only: opening a named pipe called "x.png" would wait forever
                if (not file.startswith(".") and os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS
                        and os.path.isfile(path)):
                    paths.append(path)
                    labels.append(index[name])
        if len(paths) == before:
            empty.append(name)
    kinds = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
    if not paths:
        raise ArchspecError(f"no image files ({kinds}) in the class subfolders", where)
    if empty:  # a class with no examples would train an output that can never be right
        raise SpecError([Problem(f"class folder '{name}' holds no image files ({kinds})",
                                 Location(os.path.join(folder, name))) for name in empty])
    return file_backed(paths, labels, names, request, folder)
