"""Draw every zoo spec: ``python -m archspec.draw.gallery OUTDIR`` (docs/zoo/ is made this way).

For every spec of ``archspec.zoo.names()`` writes the graph style at its default settings
(``<spec>.svg`` and ``<spec>.png``) and the boxes style (``<spec>-boxes.svg``, ``-boxes.png``).
PNGs are at 2× (``--scale``), reduced to a 128-colour palette to keep the repository small.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# 128 colours chosen by maximum coverage: on ConvNeXt-T's boxes and Inception-v3's graph no pixel is
# off by more than 32 (of 765, summed over R, G, B), at about half the bytes of 256 by median cut,
# which shifted rare colours (a legend swatch) by up to 119
PALETTE_COLOURS = 128


def gallery(outdir: str | Path, names: list[str] | None = None, boxes: bool = True, png: bool = True,
            scale: float = 2) -> list[Path]:
    """Draw ``names`` (default: the whole zoo) into ``outdir``; returns the files written."""
    from .. import pipeline, zoo
    from .boxes import boxes_scene
    from .graph import graph_picture
    from .picture import Picture

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in names if names is not None else zoo.names():
        summary = pipeline.summarize(name)
        pictures = [(name, graph_picture(summary))]
        if boxes:
            pictures.append((f"{name}-boxes", Picture(boxes_scene(summary))))
        for stem, picture in pictures:
            written.append(picture.save(out / f"{stem}.svg"))
            if png:
                written.append(_small_png(picture, out / f"{stem}.png", scale))
    return written


def _small_png(picture, path: Path, scale: float) -> Path:
    """The picture as a palette PNG: the same pixels to the eye at a third of the bytes."""
    import io

    from PIL import Image

    from ..files import atomic_write

    image = Image.open(io.BytesIO(picture.to_png(scale))).convert("RGB")
    small = image.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    atomic_write(path, lambda tmp: small.save(tmp, format="PNG", optimize=True))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archspec.draw.gallery", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the pictures (created if missing)")
    parser.add_argument("names", nargs="*", help="zoo specs to draw (default: all of them)")
    parser.add_argument("--no-boxes", action="store_true", help="only the graph style")
    parser.add_argument("--no-png", action="store_true", help="only the .svg files")
    args = parser.parse_args(argv)
    from ..errors import ArchspecError

    try:
        files = gallery(args.outdir, args.names or None, boxes=not args.no_boxes, png=not args.no_png)
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
