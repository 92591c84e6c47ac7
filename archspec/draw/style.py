"""Colours shared by every picture: one colour per layer family, and a palette for comparisons.

``FAMILY_COLOURS`` is the single table of family colours (the families are those of
``archspec.layers.FAMILIES``); the boxes diagram, the comparison chart and the DOT graphs all
read it, so a convolution is the same blue everywhere. The colours are Tableau 10, chosen to
stay distinct for the common forms of colour blindness and in greyscale print (they differ in
lightness as well as hue).
"""
from __future__ import annotations

from ..layers import FAMILIES, REGISTRY, lookup

FAMILY_COLOURS: dict[str, str] = {
    "input": "#bab0ac",  # grey
    "conv": "#4e79a7",  # blue
    "pool": "#e15759",  # red
    "norm": "#76b7b2",  # teal
    "activation": "#f28e2b",  # orange
    "dense": "#b07aa1",  # purple
    "regularization": "#ff9da7",  # pink
    "reshape": "#9c755f",  # brown
    "merge": "#59a14f",  # green
}
assert set(FAMILY_COLOURS) == set(FAMILIES), "every layer family needs a colour"

FAMILY_LABELS: dict[str, str] = {
    "input": "input",
    "conv": "convolution",
    "pool": "pooling",
    "norm": "normalization",
    "activation": "activation",
    "dense": "fully connected",
    "regularization": "dropout",
    "reshape": "reshape",
    # the merge types, from the catalogue: "merge (add, concat, mul)"
    "merge": "merge (" + ", ".join(t.name for t in REGISTRY.values() if t.family == "merge") + ")",
}

# Distinct colours for the specs of a comparison chart (Tableau 20, dark tones first).
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)

INK = "#222222"  # text and outlines
MUTED = "#666666"  # secondary text, axes
GRID = "#e4e4e4"


def family_of(node_type: str) -> str:
    """The family of a layer type ("input" for the graph input)."""
    if node_type == "input":
        return "input"
    layer = lookup(node_type)
    return layer.family if layer is not None else "reshape"


def family_colour(family: str) -> str:
    return FAMILY_COLOURS.get(family, FAMILY_COLOURS["reshape"])


def palette(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def mix(colour: str, other: str, t: float) -> str:
    """``colour`` moved a fraction ``t`` of the way towards ``other`` (both #rrggbb)."""
    a, b = _rgb(colour), _rgb(other)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def lighter(colour: str, t: float = 0.35) -> str:
    return mix(colour, "#ffffff", t)


def darker(colour: str, t: float = 0.25) -> str:
    return mix(colour, "#000000", t)
