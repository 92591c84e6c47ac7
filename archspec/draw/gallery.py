"""Draw every zoo spec: ``python -m archspec.draw.gallery OUTDIR`` (docs/zoo/ is made this way).

Writes ``<spec>.svg`` (the graph style at its default settings) for every spec of
``archspec.zoo.names()`` and, where the boxes style is available and works, ``<spec>-boxes.svg``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _boxes():
    try:
        from .boxes import boxes_scene
    except ImportError:
        return None
    return boxes_scene


def gallery(outdir: str | Path, names: list[str] | None = None, boxes: bool = True) -> list[Path]:
    """Draw ``names`` (default: the whole zoo) into ``outdir``; returns the files written."""
    from .. import pipeline, zoo
    from .graph import render_dot, to_dot

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    boxes_scene = _boxes() if boxes else None
    written: list[Path] = []
    for name in names if names is not None else zoo.names():
        summary = pipeline.summarize(name)
        written.append(render_dot(to_dot(summary), out / f"{name}.svg", "svg"))
        if boxes_scene is not None:
            try:
                written.append(boxes_scene(summary).save(out / f"{name}-boxes.svg", "svg"))
            except Exception as exc:  # the boxes style is optional here: report it, keep drawing graphs
                print(f"{name}: boxes style failed: {exc}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archspec.draw.gallery", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the .svg files (created if missing)")
    parser.add_argument("names", nargs="*", help="zoo specs to draw (default: all of them)")
    parser.add_argument("--no-boxes", action="store_true", help="only the graph style")
    args = parser.parse_args(argv)
    from ..errors import ArchspecError

    try:
        files = gallery(args.outdir, args.names or None, boxes=not args.no_boxes)
    except ArchspecError as exc:
        print(exc, file=sys.stderr)
        return 1
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f}  {f.stat().st_size / 1024:.0f} KiB")
    print(f"{len(files)} files, {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
