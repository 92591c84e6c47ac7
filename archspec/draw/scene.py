"""A tiny vector scene: plain shapes in one coordinate system, written as SVG or PNG.

The boxes diagram and the comparison chart both build a ``Scene`` and never draw anything
themselves, so SVG and PNG always agree. Coordinates are in scene units (SVG user units,
y downwards); ``to_png(scale=2)`` makes two pixels per unit.

Every picture uses one font, DejaVu Sans, which ships with the package (``fonts/``, with its
licence): ``text_width`` lays text out with its advance widths, the SVG names it and carries the
characters it uses as an embedded subset (``font_face_css``), and the PNG is drawn with the same
file through Pillow. So a picture looks the same on a machine with no fonts installed. Shapes are
anti-aliased by drawing at twice the size and downsampling.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Union

from ..errors import UsageError

Point = tuple[float, float]

FONT_NAME = "DejaVu Sans"  # bundled in fonts/ (its licence is fonts/LICENSE)
FONT_FAMILY = "DejaVu Sans, sans-serif"

# ------------------------------------------------------------------ items


@dataclass(frozen=True)
class Polygon:
    """A closed polygon, filled and/or stroked."""

    points: tuple[Point, ...]
    fill: str | None = None
    stroke: str | None = None
    width: float = 1.0
    opacity: float = 1.0  # of the fill


@dataclass(frozen=True)
class Line:
    """An open polyline (two points: a segment)."""

    points: tuple[Point, ...]
    stroke: str = "#000000"
    width: float = 1.0
    dash: tuple[float, float] | None = None  # (on, off) lengths
    opacity: float = 1.0


@dataclass(frozen=True)
class Curve:
    """An open cubic Bézier curve from ``start`` to ``end``."""

    start: Point
    c1: Point
    c2: Point
    end: Point
    stroke: str = "#000000"
    width: float = 1.0
    dash: tuple[float, float] | None = None
    opacity: float = 1.0

    def points(self, n: int = 48) -> list[Point]:
        """The curve flattened to ``n`` segments."""
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.start, self.c1, self.c2, self.end
        out = []
        for i in range(n + 1):
            t = i / n
            u = 1 - t
            a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
            out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
        return out


@dataclass(frozen=True)
class Spline:
    """A chain of cubic Béziers: a start point, then three points per segment; closed when filled."""

    points: tuple[Point, ...]
    fill: str | None = None
    stroke: str | None = "#000000"
    width: float = 1.0
    dash: tuple[float, float] | None = None
    opacity: float = 1.0  # of the fill

    def flat(self, per_segment: int = 12) -> list[Point]:
        out = [self.points[0]]
        for i in range(0, len(self.points) - 3, 3):
            start, c1, c2, end = self.points[i:i + 4]
            out.extend(Curve(start, c1, c2, end).points(per_segment)[1:])
        return out


@dataclass(frozen=True)
class Circle:
    center: Point
    radius: float
    fill: str | None = None
    stroke: str | None = None
    width: float = 1.0
    opacity: float = 1.0  # of the fill


@dataclass(frozen=True)
class Text:
    """One line of text; ``y`` is the baseline, ``anchor`` says which end (or the middle) is at ``x``."""

    x: float
    y: float
    text: str
    size: float = 12.0
    anchor: str = "start"  # "start", "middle" or "end"
    weight: str = "normal"  # "normal" or "bold"
    colour: str = "#000000"
    rotate: float = 0.0  # degrees clockwise about (x, y), as SVG's rotate(); -90 reads upwards

    def __post_init__(self):
        if self.anchor not in ("start", "middle", "end"):
            raise ValueError(f"text anchor must be start, middle or end, found {self.anchor!r}")
        if self.weight not in ("normal", "bold"):
            raise ValueError(f"text weight must be normal or bold, found {self.weight!r}")


@dataclass(frozen=True)
class Group:
    """Items drawn together; ``cls`` and ``label`` become the SVG group's class and title (for tests and tools)."""

    items: tuple["Item", ...]
    cls: str = ""
    label: str = ""
    id: str = ""  # the SVG element's id (a page finds a diagram's node by it)


Item = Union[Polygon, Line, Curve, Spline, Circle, Text, Group]


def rect(x: float, y: float, w: float, h: float, **style) -> Polygon:
    return Polygon(((x, y), (x + w, y), (x + w, y + h), (x, y + h)), **style)


# ------------------------------------------------------------------ text metrics

FONT_DIR = Path(__file__).parent / "fonts"
FONT_FILES = {"normal": FONT_DIR / "DejaVuSans.ttf", "bold": FONT_DIR / "DejaVuSans-Bold.ttf"}
UNITS_PER_EM = 2048  # DejaVu Sans's own grid: advances read at this size are exact


@lru_cache(maxsize=4096)
def advance(ch: str, weight: str = "normal") -> float:
    """The advance width of one character in the bundled DejaVu Sans, in ems."""
    return _measuring_font(weight).getlength(ch) / UNITS_PER_EM


@lru_cache(maxsize=2)
def _measuring_font(weight: str):
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_FILES[weight]), UNITS_PER_EM, layout_engine=ImageFont.Layout.BASIC)


def text_width(text: str, size: float, weight: str = "normal") -> float:
    """Width of ``text`` set in the bundled DejaVu Sans at ``size`` (no kerning, as Graphviz measures)."""
    w = "bold" if weight == "bold" else "normal"
    return sum(advance(ch, w) for ch in text) * size


def text_box(t: Text) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of an unrotated text item, approximately (ascent 0.76, descent 0.24)."""
    w = text_width(t.text, t.size, t.weight)
    left = t.x - {"start": 0, "middle": w / 2, "end": w}[t.anchor]
    return left, t.y - 0.76 * t.size, left + w, t.y + 0.24 * t.size


@lru_cache(maxsize=32)
def font_face_css(normal: str, bold: str) -> str:
    """@font-face rules carrying the bundled DejaVu Sans cut down to the characters used.

    ``normal`` and ``bold`` are the characters set in each weight (sorted, deduplicated). The
    subset is a TrueType file in a data: URL, so the SVG looks the same on a machine without
    the font; a viewer that ignores @font-face still finds "DejaVu Sans" by name, or a sans-serif.
    """
    import base64
    import io

    from fontTools import subset

    rules = []
    for weight, chars in (("normal", normal), ("bold", bold)):
        if not chars:
            continue
        options = subset.Options()
        options.name_IDs = ["*"]  # keep the copyright and licence records
        options.notdef_outline = True
        options.layout_features = []
        options.hinting = False
        options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing a viewer reads
        face = subset.load_font(str(FONT_FILES[weight]), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=chars)
        subsetter.subset(face)
        buffer = io.BytesIO()
        face.save(buffer)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        rules.append(f'@font-face{{font-family:"{FONT_NAME}";font-weight:{weight};'
                     f'src:url(data:font/ttf;base64,{data}) format("truetype")}}')
    return "\n".join(rules)


# ------------------------------------------------------------------ the scene


def _num(v: float) -> str:
    """A coordinate with at most 2 decimals, no trailing zeros, never '-0'."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pts(points) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _escape(text: str) -> str:
    text = _INVALID_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _colour(c: str | None) -> str:
    if c is None:
        return "none"
    if not _COLOUR.match(c):
        raise ValueError(f"colours are #rrggbb, found {c!r}")
    return c.lower()


def _stroke_attrs(stroke, width, dash=None, opacity=1.0) -> str:
    if stroke is None:
        return ' stroke="none"'
    s = f' stroke="{_colour(stroke)}" stroke-width="{_num(width)}"'
    if dash:
        s += f' stroke-dasharray="{_num(dash[0])},{_num(dash[1])}"'
    if opacity < 1:
        s += f' stroke-opacity="{_num(opacity)}"'
    return s


def _fill_attrs(fill, opacity) -> str:
    s = f' fill="{_colour(fill)}"'
    if fill is not None and opacity < 1:
        s += f' fill-opacity="{_num(opacity)}"'
    return s


@dataclass
class Scene:
    width: float
    height: float
    items: list[Item] = field(default_factory=list)
    background: str | None = "#ffffff"
    title: str = ""

    def add(self, *items: Item) -> None:
        self.items.extend(items)

    def walk(self, items=None):
        """Every primitive item, groups flattened, in drawing order."""
        for item in self.items if items is None else items:
            if isinstance(item, Group):
                yield from self.walk(item.items)
            else:
                yield item

    # -------------------------------------------------------------- SVG

    def to_svg(self, embed_font: bool = True) -> str:
        """The scene as SVG text; ``embed_font`` carries the characters used, in DejaVu Sans, inside it."""
        w, h = _num(self.width), _num(self.height)
        out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
               f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" '
               f'viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">']
        if self.title:
            out.append(f"<title>{_escape(self.title)}</title>")
        if embed_font:
            css = font_face_css(*self._characters())
            if css:
                out.append(f"<defs><style>{css}</style></defs>")
        if self.background:
            out.append(f'<rect x="0" y="0" width="{w}" height="{h}" fill="{_colour(self.background)}"/>')
        self._svg_items(self.items, out)
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def _characters(self) -> tuple[str, str]:
        """The characters of the scene's text, (normal, bold), each sorted once."""
        chars: dict[str, set[str]] = {"normal": set(), "bold": set()}
        for item in self.walk():
            if isinstance(item, Text):
                chars[item.weight].update(_INVALID_XML.sub("", item.text))
        return "".join(sorted(chars["normal"])), "".join(sorted(chars["bold"]))

    def to_png_bytes(self, scale: float = 2) -> bytes:
        import io

        buffer = io.BytesIO()
        self.to_png(buffer, scale)
        return buffer.getvalue()

    def _svg_items(self, items, out: list[str]) -> None:
        for item in items:
            if isinstance(item, Group):
                cls = f' class="{_escape(item.cls)}"' if item.cls else ""
                if item.id:
                    cls += f' id="{_escape(item.id)}"'
                out.append(f"<g{cls}>")
                if item.label:
                    out.append(f"<title>{_escape(item.label)}</title>")
                self._svg_items(item.items, out)
                out.append("</g>")
            elif isinstance(item, Polygon):
                out.append(f'<polygon points="{_pts(item.points)}"{_fill_attrs(item.fill, item.opacity)}'
                           f'{_stroke_attrs(item.stroke, item.width)} stroke-linejoin="round"/>')
            elif isinstance(item, Line):
                out.append(f'<polyline points="{_pts(item.points)}" fill="none"'
                           f'{_stroke_attrs(item.stroke, item.width, item.dash, item.opacity)} '
                           'stroke-linecap="round" stroke-linejoin="round"/>')
            elif isinstance(item, Curve):
                d = f"M {_pts([item.start])} C {_pts([item.c1])} {_pts([item.c2])} {_pts([item.end])}"
                stroke = _stroke_attrs(item.stroke, item.width, item.dash, item.opacity)
                out.append(f'<path d="{d}" fill="none"{stroke} stroke-linecap="round"/>')
            elif isinstance(item, Spline):
                pts = item.points
                d = f"M {_pts(pts[:1])}" + "".join(f" C {_pts(pts[i:i + 3])}" for i in range(1, len(pts) - 2, 3))
                if item.fill is not None:
                    d += " Z"
                out.append(f'<path d="{d}"{_fill_attrs(item.fill, item.opacity)}'
                           f'{_stroke_attrs(item.stroke, item.width, item.dash)} stroke-linejoin="round"/>')
            elif isinstance(item, Circle):
                out.append(f'<circle cx="{_num(item.center[0])}" cy="{_num(item.center[1])}" r="{_num(item.radius)}"'
                           f'{_fill_attrs(item.fill, item.opacity)}{_stroke_attrs(item.stroke, item.width)}/>')
            elif isinstance(item, Text):
                attrs = f'x="{_num(item.x)}" y="{_num(item.y)}" font-size="{_num(item.size)}"'
                if item.anchor != "start":
                    attrs += f' text-anchor="{item.anchor}"'
                if item.weight != "normal":
                    attrs += f' font-weight="{item.weight}"'
                attrs += f' fill="{_colour(item.colour)}"'
                if item.rotate:
                    attrs += f' transform="rotate({_num(item.rotate)} {_num(item.x)} {_num(item.y)})"'
                out.append(f"<text {attrs}>{_escape(item.text)}</text>")
            else:
                raise TypeError(f"not a scene item: {item!r}")

    # -------------------------------------------------------------- PNG

    def to_png(self, path, scale: float = 2):
        """Rasterise with Pillow: ``scale`` pixels per scene unit, anti-aliased by 2× supersampling."""
        from PIL import Image, ImageDraw

        out_w, out_h = max(1, math.ceil(self.width * scale)), max(1, math.ceil(self.height * scale))
        # supersample 2x, less for very large pictures (keeps memory under ~200 MB)
        ss = max(1.0, min(2.0, math.sqrt(60e6 / (out_w * out_h))))
        f = scale * ss
        big = (max(1, round(out_w * ss)), max(1, round(out_h * ss)))
        bg = _rgba(self.background or "#ffffff")[:3]
        image = Image.new("RGB", big, bg)
        draw = ImageDraw.Draw(image, "RGBA")
        for item in self.walk():
            _draw_item(image, draw, item, f)
        if big != (out_w, out_h):
            image = image.resize((out_w, out_h), Image.Resampling.LANCZOS)
        image.save(path, format="PNG")
        return Path(path) if isinstance(path, (str, os.PathLike)) else path

    # -------------------------------------------------------------- files

    def save(self, path: str | os.PathLike, fmt: str | None = None, scale: float = 2) -> Path:
        """Write the scene as ``fmt`` ("svg" or "png"; default: the file's suffix), atomically.

        ``scale`` is the PNG's pixels per scene unit."""
        from ..files import atomic_write

        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".")).lower()
        if fmt == "svg":
            text = self.to_svg()
            atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        elif fmt == "png":
            atomic_write(path, lambda tmp: self.to_png(tmp, scale))
        else:
            raise UsageError(f"cannot write '{path}' as {fmt or 'an unknown format'}: choose svg or png")
        return path


# ------------------------------------------------------------------ Pillow backend


def _rgba(colour: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    c = _colour(colour)
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16), round(255 * max(0.0, min(1.0, opacity)))


def _scaled(points, f) -> list[tuple[float, float]]:
    return [(x * f, y * f) for x, y in points]


def _dashed(points, on: float, off: float) -> list[list[Point]]:
    """A polyline cut into dashes of length ``on`` separated by ``off``."""
    dashes: list[list[Point]] = []
    current: list[Point] = [points[0]]
    drawing, left = True, on
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while seg - pos > left:
            pos += left
            t = pos / seg
            p = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            if drawing:
                current.append(p)
                dashes.append(current)
            else:
                current = [p]
            drawing = not drawing
            left = on if drawing else off
        left -= seg - pos
        if drawing:
            current.append((x1, y1))
    if drawing and len(current) > 1:
        dashes.append(current)
    return dashes


def _polyline(draw, points, colour, width, dash, f) -> None:
    pts = _scaled(points, f)
    w = max(1, round(width * f))
    runs = _dashed(pts, dash[0] * f, dash[1] * f) if dash else [pts]
    for run in runs:
        if len(run) >= 2:
            draw.line(run, fill=colour, width=w, joint="curve")
            if w > 2:  # round caps
                r = w / 2
                for x, y in (run[0], run[-1]):
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _draw_item(image, draw, item, f) -> None:
    if isinstance(item, Polygon):
        pts = _scaled(item.points, f)
        if item.fill is not None:
            draw.polygon(pts, fill=_rgba(item.fill, item.opacity))
        if item.stroke is not None and item.width > 0:
            _polyline(draw, list(item.points) + [item.points[0]], _rgba(item.stroke), item.width, None, f)
    elif isinstance(item, Line):
        _polyline(draw, item.points, _rgba(item.stroke, item.opacity), item.width, item.dash, f)
    elif isinstance(item, Curve):
        _polyline(draw, item.points(), _rgba(item.stroke, item.opacity), item.width, item.dash, f)
    elif isinstance(item, Spline):
        flat = item.flat()
        if item.fill is not None:
            draw.polygon(_scaled(flat, f), fill=_rgba(item.fill, item.opacity))
        if item.stroke is not None and item.width > 0:
            _polyline(draw, flat, _rgba(item.stroke), item.width, item.dash, f)
    elif isinstance(item, Circle):
        x, y, r = item.center[0] * f, item.center[1] * f, item.radius * f
        box = (x - r, y - r, x + r, y + r)
        if item.fill is not None:
            draw.ellipse(box, fill=_rgba(item.fill, item.opacity))
        if item.stroke is not None and item.width > 0:
            draw.ellipse(box, outline=_rgba(item.stroke), width=max(1, round(item.width * f)))
    elif isinstance(item, Text):
        _draw_text(image, draw, item, f)
    else:
        raise TypeError(f"not a scene item: {item!r}")


@lru_cache(maxsize=64)
def font(size: int, weight: str = "normal"):
    """The bundled DejaVu Sans at a pixel size, for Pillow."""
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_FILES["bold" if weight == "bold" else "normal"]), size)


def _draw_text(image, draw, t: Text, f) -> None:
    from PIL import Image, ImageDraw

    size = max(1, round(t.size * f))
    fnt = font(size, t.weight)
    text = t.text
    if not text:
        return
    colour = _rgba(t.colour)
    anchor = {"start": "ls", "middle": "ms", "end": "rs"}[t.anchor]
    x, y = t.x * f, t.y * f
    if not t.rotate:
        draw.text((x, y), text, font=fnt, fill=colour, anchor=anchor)
        return
    # rotated: draw about the centre of a square layer, rotate it there, paste the centre onto (x, y)
    length = draw.textlength(text, font=fnt)
    side = int(2 * (length + size)) + 4
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    c = side / 2
    ImageDraw.Draw(layer).text((c, c), text, font=fnt, fill=colour, anchor=anchor)
    layer = layer.rotate(-t.rotate, resample=Image.Resampling.BICUBIC, center=(c, c))
    image.paste(layer, (round(x - c), round(y - c)), layer)


def moved(item: Item, dx: float, dy: float) -> Item:
    """``item`` (a group: everything in it) moved by (dx, dy)."""
    from dataclasses import replace

    def shift(points):
        return tuple((x + dx, y + dy) for x, y in points)

    if isinstance(item, Group):
        return replace(item, items=tuple(moved(i, dx, dy) for i in item.items))
    if isinstance(item, (Polygon, Line, Spline)):
        return replace(item, points=shift(item.points))
    if isinstance(item, Curve):
        start, c1, c2, end = shift((item.start, item.c1, item.c2, item.end))
        return replace(item, start=start, c1=c1, c2=c2, end=end)
    if isinstance(item, Circle):
        return replace(item, center=(item.center[0] + dx, item.center[1] + dy))
    return replace(item, x=item.x + dx, y=item.y + dy)


def bounds(items) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of ``items`` (groups looked into; text by its approximate box)."""
    xs: list[float] = []
    ys: list[float] = []
    for item in Scene(0, 0, list(items)).walk():
        if isinstance(item, Text):
            left, top, right, bottom = text_box(item)
            xs += [left, right]
            ys += [top, bottom]
        elif isinstance(item, Circle):
            xs += [item.center[0] - item.radius, item.center[0] + item.radius]
            ys += [item.center[1] - item.radius, item.center[1] + item.radius]
        else:
            pts = item.points(12) if isinstance(item, Curve) else item.points
            xs += [x for x, _ in pts]
            ys += [y for _, y in pts]
    if not xs:
        return 0.0, 0.0, 0.0, 0.0
    return min(xs), min(ys), max(xs), max(ys)
