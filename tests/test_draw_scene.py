"""The vector scene: valid, deterministic SVG; PNG through Pillow; atomic files; fonts anywhere."""
from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archspec.draw import scene as sc
from archspec.draw.scene import Circle, Curve, Group, Line, Polygon, Scene, Text, rect, text_width
from archspec.errors import UsageError

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample() -> Scene:
    s = Scene(200, 100, title="a <sample> & more")
    s.add(rect(10, 10, 40, 30, fill="#4e79a7", stroke="#222222", width=0.7),
          Polygon(((60, 10), (80, 0), (90, 30)), fill="#e15759", opacity=0.5),
          Line(((10, 60), (100, 60), (120, 80)), stroke="#59a14f", width=1.5, dash=(4, 2)),
          Curve((10, 90), (40, 50), (80, 50), (110, 90), stroke="#777777", width=1.3),
          Circle((150, 50), 20.123456, fill="#f28e2b", stroke="#222222", opacity=0.3),
          Text(100, 20, "64×112×112", size=10, anchor="middle"),
          Text(190, 95, "bold", size=9, anchor="end", weight="bold", colour="#e15759"),
          Text(20, 98, "up", size=8, rotate=-90),
          Group((Text(5, 5, "grouped"),), cls="box", label="block1"))
    return s


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_svg_parses_and_holds_every_item():
    root = ET.fromstring(sample().to_svg())
    assert root.tag == f"{SVG}svg" and root.get("version") == "1.1"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("200", "100", "0 0 200 100")
    count = lambda tag: len(root.findall(f".//{SVG}{tag}"))  # noqa: E731
    assert count("polygon") == 2 and count("polyline") == 1 and count("path") == 1 and count("circle") == 1
    assert count("text") == 4 and count("rect") == 1  # the rect is the background
    group = root.find(f".//{SVG}g[@class='box']")
    assert group is not None and group.find(f"{SVG}title").text == "block1"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "64×112×112" in texts
    assert root.find(f"{SVG}title").text == "a <sample> & more"
    rotated = next(t for t in root.iter(f"{SVG}text") if t.text == "up")
    assert rotated.get("transform") == "rotate(-90 20 98)"
    assert 'stroke-dasharray="4,2"' in sample().to_svg()


def test_svg_escapes_text_and_drops_characters_xml_cannot_hold():
    s = Scene(50, 20, [Text(1, 10, 'a<b & "c" > d\x01\x1f')])
    text = s.to_svg()
    assert "&lt;b &amp; &quot;c&quot; &gt; d<" in text
    assert ET.fromstring(text).find(f".//{SVG}text").text == 'a<b & "c" > d'


def test_svg_is_deterministic_with_short_numbers():
    a, b = sample().to_svg(), sample().to_svg()
    assert a == b
    numbers = re.findall(r"-?\d+\.\d+", a)
    assert numbers and all(len(n.split(".")[1]) <= 2 for n in numbers)
    assert 'r="20.12"' in a
    assert sc._num(-0.001) == "0" and sc._num(3.0) == "3" and sc._num(2.505) in ("2.5", "2.51")


def test_png_signature_and_size(tmp_path):
    s = sample()
    assert png_size(s.to_png(tmp_path / "a.png").read_bytes()) == (400, 200)
    assert png_size(s.to_png(tmp_path / "b.png", scale=1).read_bytes()) == (200, 100)


def test_png_text_is_drawn_with_the_bundled_font(tmp_path):
    from PIL import Image

    assert Path(sc.font(20).path) == sc.FONT_FILES["normal"] and Path(sc.font(20, "bold").path) == sc.FONT_FILES["bold"]
    assert all(f.is_file() for f in sc.FONT_FILES.values()) and (sc.FONT_DIR / "LICENSE").is_file()
    s = Scene(120, 30, [Text(5, 20, "64×112×112 √", size=14), Text(115, 20, "b", size=14, anchor="end", weight="bold")])
    image = Image.open(s.to_png(tmp_path / "t.png")).convert("L")
    assert image.getextrema()[0] < 100  # dark text pixels were drawn


def test_text_width_is_the_bundled_fonts_advance_widths():
    from fontTools.ttLib import TTFont

    for weight, path in sc.FONT_FILES.items():
        face = TTFont(str(path))
        em, cmap, hmtx = face["head"].unitsPerEm, face.getBestCmap(), face["hmtx"]
        for text in ("conv1conv2d", "64×112×112", "Wi·→√"):
            expected = sum(hmtx[cmap[ord(ch)]][0] for ch in text) / em * 10
            assert text_width(text, 10, weight) == pytest.approx(expected, abs=0.02)


def test_svg_carries_the_characters_it_uses_in_the_bundled_font():
    import base64
    import io

    from fontTools.ttLib import TTFont

    s = Scene(200, 40, [Text(5, 20, "conv 3×3", size=12), Text(5, 35, "relu", size=12, weight="bold")])
    svg = s.to_svg()
    faces = re.findall(r'font-weight:(\w+);src:url\(data:font/ttf;base64,([A-Za-z0-9+/=]+)\)', svg)
    assert [w for w, _ in faces] == ["normal", "bold"]
    for (_weight, data), text in zip(faces, ("conv 3×3", "relu")):
        face = TTFont(io.BytesIO(base64.b64decode(data)))
        assert set(text) <= {chr(c) for c in face.getBestCmap()} and len(face.getBestCmap()) <= len(set(text)) + 1
        assert face["name"].getDebugName(1) == "DejaVu Sans"
    assert len(svg) < 40_000  # a subset, not the 740 KB font
    assert 'font-family="DejaVu Sans, sans-serif"' in svg
    assert "@font-face" not in s.to_svg(embed_font=False)


def test_save_writes_atomically_and_picks_the_format(tmp_path, monkeypatch):
    s = sample()
    out = s.save(tmp_path / "pic.svg", "svg")
    assert out == tmp_path / "pic.svg" and out.read_text(encoding="utf-8") == s.to_svg()
    assert png_size(s.save(tmp_path / "pic.png").read_bytes()) == (400, 200)
    before = (tmp_path / "pic.png").read_bytes()

    def broken(self, path, scale=2):
        open(path, "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Scene, "to_png", broken)
    with pytest.raises(RuntimeError):
        s.save(tmp_path / "pic.png", "png")
    assert (tmp_path / "pic.png").read_bytes() == before  # the old picture survives whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pic.png", "pic.svg"]  # no temporary left
    with pytest.raises(UsageError):
        s.save(tmp_path / "pic.pdf")


def test_text_width_and_validation():
    assert text_width("", 10) == 0
    assert text_width("mm", 10) == 2 * text_width("m", 10)
    assert text_width("conv", 10, "bold") > text_width("conv", 10)
    assert text_width("64×112×112", 20) == 2 * text_width("64×112×112", 10)
    with pytest.raises(ValueError):
        Text(0, 0, "x", anchor="left")
    with pytest.raises(ValueError):
        Scene(10, 10, [Circle((1, 1), 1, fill="red")]).to_svg()


def test_dashes_cover_the_line_in_runs():
    runs = sc._dashed([(0, 0), (10, 0), (10, 10)], 3, 2)  # 20 units long: on 3, off 2, around the corner
    assert runs == [[(0, 0), (3, 0)], [(5, 0), (8, 0)], [(10, 0), (10, 3)], [(10, 5), (10, 8)]]
