"""A CSV listing images and their labels: ``path,label`` rows (or ``path label``), an optional header.

Every row is checked before training starts and all problems are reported at once, each at its
``file.csv:LINE``: rows of the wrong shape, images that are not there, and labels that are not classes.
Labels are either class names (``cat``, ``dog``) or class numbers; when most labels are whole numbers
the set is numbered, and a label such as ``3.5``, ``cat`` or ``-1`` is a mistake at its line rather
than one more class.
"""
from __future__ import annotations

import csv
import os
import re

from ..errors import ArchspecError, Location, Problem, SpecError
from ..images import check_channels, describe
from ..text import listing
from .labelled import LabelledImages, file_backed
from .sources import Request

MAX_LISTED_PROBLEMS = 20  # row problems shown before "… and N more"
HEADER_PATH_NAMES = {"path", "file", "filename", "image"}
HEADER_LABEL_NAMES = {"label", "class"}
INTEGER = re.compile(r"[+-]?[0-9]+")


def _label_key(label: str) -> str:
    return str(int(label)) if INTEGER.fullmatch(label) else label


def _class_number(label: str) -> bool:
    return bool(INTEGER.fullmatch(label)) and int(label) >= 0


def _not_a_number(label: str) -> str:
    if INTEGER.fullmatch(label):
        return f"label {label} is negative; class numbers start at 0"
    try:
        float(label)
        return f"label {label} is not a whole number; class numbers are 0, 1, 2, …"
    except ValueError:
        return f"label {label!r} is not a class number, as the other labels are"


def open_csv(path: str, request: Request) -> LabelledImages:
    where = Location(path)
    if not os.path.isfile(path):
        raise ArchspecError(f"no such CSV file: {path}", where)
    check_channels(request.shape[0], where)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise ArchspecError("the CSV is not UTF-8 text", where) from None
    except OSError as exc:
        raise ArchspecError(f"cannot read the CSV: {describe(exc)}", where) from None
    folder = os.path.dirname(path)
    problems: list[Problem] = []
    entries: list[tuple[int, str, str]] = []  # (line number, resolved path, label text)
    first = True
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([text]))] if "," in text else text.split()
        except csv.Error as exc:  # a NUL byte, say
            problems.append(Problem(f"unreadable row: {exc}", Location(path, number)))
            continue
        if first:
            first = False
            if (len(fields) == 2 and fields[0].lower() in HEADER_PATH_NAMES
                    and fields[1].lower() in HEADER_LABEL_NAMES):
                continue
        row = Location(path, number)
        if len(fields) != 2 or not all(fields):
            problems.append(Problem(f"expected 'path,label' (or 'path label'), found {len(fields)} "
                                    f"field{'s' * (len(fields) != 1)}: {text[:80]}", row))
            continue
        image, label = fields
        resolved = image if os.path.isabs(image) else os.path.join(folder, image)
        if not os.path.isfile(resolved):
            looked = f" (looked for {resolved})" if resolved != image else ""
            what = "is not a file" if os.path.exists(resolved) else "not found"
            problems.append(Problem(f"image {what}: {image}{looked}", row))
            continue
        entries.append((number, resolved, label))
    if request.classes is None:
        numbered = sum(_class_number(label) for _, _, label in entries) * 2 > len(entries)
        if numbered:  # class numbers: anything else is a mistake at its line, not one more class
            for number, _, label in entries:
                if not _class_number(label):
                    problems.append(Problem(_not_a_number(label), Location(path, number)))
            entries = [e for e in entries if _class_number(e[2])]
            names = [str(k) for k in sorted({int(label) for _, _, label in entries})]
        else:
            names = sorted({_label_key(label) for _, _, label in entries})
    else:
        names = [str(c) for c in request.classes]
    index = {name: k for k, name in enumerate(names)}
    labels: list[int] = []
    kept: list[tuple[int, str, str]] = []
    for number, resolved, label in entries:
        key = label if label in index else _label_key(label)
        if key not in index:
            problems.append(Problem(f"label {label!r} is not one of the classes ({listing(names)})",
                                    Location(path, number)))
            continue
        labels.append(index[key])
        kept.append((number, resolved, label))
    if problems:
        problems.sort(key=lambda p: p.location.line if p.location else 0)
        if len(problems) > MAX_LISTED_PROBLEMS:
            more = len(problems) - MAX_LISTED_PROBLEMS
            problems = problems[:MAX_LISTED_PROBLEMS] + [Problem(f"… and {more:,} more problem{'s' * (more > 1)}",
                                                                 where)]
        raise SpecError(problems)
    if not kept:
        raise ArchspecError("no images listed in the CSV", where)
    return file_backed([r for _, r, _ in kept], labels, names, request, path,
                       rows=[n for n, _, _ in kept], list_file=path)
