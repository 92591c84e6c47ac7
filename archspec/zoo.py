"""The spec zoo bundled with the package: the top-level ``specs/`` folder is its single source.

A wheel carries ``specs/`` as ``archspec/zoo/`` (see pyproject.toml); a source checkout or
editable install reads ``specs/`` beside the package directly.
"""
from __future__ import annotations

from pathlib import Path

from .layers import did_you_mean

_PACKAGE = Path(__file__).resolve().parent


def directory() -> Path | None:
    for candidate in (_PACKAGE / "zoo", _PACKAGE.parent / "specs"):
        if candidate.is_dir():
            return candidate
    return None


def names() -> list[str]:
    folder = directory()
    if folder is None:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def find(name: str) -> Path | None:
    """The bundled spec for "vgg16" or "vgg16.yaml" (no paths: a name only)."""
    folder = directory()
    if folder is None or "/" in name or "\\" in name:
        return None
    stem = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    path = folder / f"{stem}.yaml"
    return path if stem in names() else None


def libraries() -> list[str]:
    """The bundled block libraries (``specs/lib/*.yaml``), importable by name from any spec."""
    folder = directory()
    if folder is None or not (folder / "lib").is_dir():
        return []
    return sorted(p.stem for p in (folder / "lib").glob("*.yaml"))


def library(name: str) -> Path | None:
    """The bundled library for ``imports: [resnet]`` (a name alone, ".yaml" optional; no paths)."""
    folder = directory()
    if folder is None or "/" in name or "\\" in name:
        return None
    stem = name[:-5] if name.endswith(".yaml") else name
    return folder / "lib" / f"{stem}.yaml" if stem in libraries() else None


def suggest(name: str) -> str:
    stem = Path(name).stem
    return did_you_mean(stem, names())
