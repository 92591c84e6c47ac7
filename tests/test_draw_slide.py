"""Fitting a slide: the scale a picture is shown at on 1920×1080 and the size its smallest text gets."""
from __future__ import annotations

import pytest

from archspec.draw.scene import Group, Scene, Text, rect
from archspec.draw.slide import MIN_TEXT_PX, SLIDE_HEIGHT, SLIDE_WIDTH, fits_slide, slide_scale, smallest_text, \
    text_on_slide


def scene(width, height, *sizes):
    texts = tuple(Text(10, 20 + 20 * i, "64×112×112", size=s) for i, s in enumerate(sizes))
    return Scene(width, height, [rect(0, 0, 5, 5, fill="#000000"), Group(texts)])


def test_the_slide_scale_is_set_by_the_tighter_side():
    assert (SLIDE_WIDTH, SLIDE_HEIGHT) == (1920, 1080)
    assert slide_scale(960, 540) == 2  # a 16:9 picture fills the slide
    assert slide_scale(3840, 1080) == 0.5  # a strip: its width decides
    assert slide_scale(1000, 2160) == 0.5  # a column: its height decides


def test_the_smallest_text_decides_whether_a_picture_fits():
    assert smallest_text(scene(100, 100, 12, 9, 10)) == 9  # looked for inside groups
    assert smallest_text(Scene(10, 10, [Text(0, 0, " ", size=2)])) == 0  # blank text is no text
    assert text_on_slide(scene(3840, 1000, 12)) == pytest.approx(6.0)
    big = scene(2 * SLIDE_WIDTH * 12 / MIN_TEXT_PX, 100, 12)  # shrunk until 12-unit text is half the bound
    assert text_on_slide(big) == pytest.approx(MIN_TEXT_PX / 2) and not fits_slide(big)
    assert fits_slide(scene(1920, 1080, MIN_TEXT_PX)) and not fits_slide(scene(1921, 1080, MIN_TEXT_PX))
    assert fits_slide(Scene(5000, 5000, [rect(0, 0, 5, 5)]))  # no text: nothing to read


def test_every_picture_of_the_docs_gallery_fits_a_slide():
    # docs/zoo is drawn by the gallery at the default settings (test_draw_graph checks that it holds every
    # zoo spec): measured from each SVG's size and text, every picture keeps its smallest text legible
    import xml.etree.ElementTree as ET
    from pathlib import Path

    svgs = sorted((Path(__file__).resolve().parent.parent / "docs" / "zoo").glob("*.svg"))
    assert len(svgs) >= 80
    for path in svgs:
        root = ET.parse(path).getroot()
        width, height = float(root.get("width")), float(root.get("height"))
        sizes = [float(t.get("font-size")) for t in root.iter("{http://www.w3.org/2000/svg}text")
                 if t.get("font-size") and (t.text or "").strip()]
        assert sizes, path.name
        assert min(sizes) * slide_scale(width, height) >= MIN_TEXT_PX, (path.name, width, height, min(sizes))
