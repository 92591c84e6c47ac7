"""Does a picture fit a slide? Measured from the laid-out scene, never guessed from item counts.

A picture is put on a 16:9 slide of ``SLIDE_WIDTH`` × ``SLIDE_HEIGHT`` pixels (1920 × 1080) at the
largest size that fits, ``slide_scale``; its smallest text then measures ``text_on_slide`` pixels
(font size). It *fits* when that is at least ``MIN_TEXT_PX``: 6 px, about a two-hundredth of the
slide's height, the smallest at which a projected slide or a full-screen 1080p window still reads
shapes such as "64×112×112" (judged by eye on the zoo's pictures, scaled so). The main labels of
both styles are larger than the smallest text (a shape line or the boxes caption), 8 to 10 px
when the smallest is at 6.

The styles use this to choose what they draw by default: the boxes style how many rows the
spine wraps into and how deep blocks are opened (``boxes.py``), the graph style how deep blocks
are opened and how many columns its chain wraps into (``graph.py``).
"""
from __future__ import annotations

from .scene import Scene, Text

SLIDE_WIDTH = 1920
SLIDE_HEIGHT = 1080
MIN_TEXT_PX = 6.0


def slide_scale(width: float, height: float) -> float:
    """How much a picture ``width`` × ``height`` is scaled to fill as much of the slide as it can."""
    return min(SLIDE_WIDTH / max(width, 1e-9), SLIDE_HEIGHT / max(height, 1e-9))


def smallest_text(scene: Scene) -> float:
    """The size of the smallest text in ``scene`` (scene units; 0 where it has none)."""
    return min((item.size for item in scene.walk() if isinstance(item, Text) and item.text.strip()), default=0.0)


def text_on_slide(scene: Scene) -> float:
    """The size in slide pixels of ``scene``'s smallest text, the picture as large as the slide allows
    (a picture with no text counts as legible)."""
    size = smallest_text(scene)
    return size * slide_scale(scene.width, scene.height) if size else float("inf")


def fits_slide(scene: Scene) -> bool:
    """Whether ``scene`` on a 1920 × 1080 slide keeps its smallest text at ``MIN_TEXT_PX`` or more."""
    return text_on_slide(scene) >= MIN_TEXT_PX
