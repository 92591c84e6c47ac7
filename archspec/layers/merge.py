"""Merges of several inputs: element-wise add (residual), channel concatenation (Inception) and a
broadcasting product (squeeze-and-excitation).

Every entry of the "merge" family is also a ``merge:`` of ``parallel``: a new merge is one entry here.
"""
from __future__ import annotations

from .base import Arg, Call, Field, Int, LayerType, Saved, ShapeError, fmt_shape, register


class Merge(LayerType):
    family = "merge"
    min_inputs = 2
    max_inputs = 64

    def receptive_field(self, a, fields, inputs, out):
        widest = max(fields, key=lambda f: f.size)
        return Field(widest.size, widest.jump, widest.start)


@register
class Add(Merge):
    name = "add"
    glyph = "+"
    glyph_words = "addition"
    doc = "Element-wise sum of inputs of equal shape (the residual connection)."

    def output_shape(self, a, inputs):
        first = inputs[0]
        for other in inputs[1:]:
            if other != first:
                shapes = ", ".join(fmt_shape(s) for s in inputs)
                raise ShapeError(f"inputs differ in shape: {shapes}")
        return first

    def torch(self, a, inputs, out):
        import operator

        from ..modules import add

        return Call(operator.add if len(inputs) == 2 else add)  # a + b reads best in gm.code


@register
class Concat(Merge):
    name = "concat"
    aliases = ("cat",)
    doc = "Concatenation along an axis, by default channels (Inception)."
    args = {"axis": Arg(Int(), 0, "axis of one sample's shape; 0 is channels or features")}

    def output_shape(self, a, inputs):
        rank = len(inputs[0])
        axis = a["axis"] % rank if -rank <= a["axis"] < rank else None
        if axis is None:
            raise ShapeError(f"axis {a['axis']} is out of range for shape of rank {rank}")
        for other in inputs[1:]:
            if len(other) != rank or any(x != y for i, (x, y) in enumerate(zip(inputs[0], other)) if i != axis):
                shapes = ", ".join(fmt_shape(s) for s in inputs)
                raise ShapeError(f"inputs differ in shape outside axis {a['axis']}: {shapes}")
        total = sum(s[axis] for s in inputs)
        return inputs[0][:axis] + (total,) + inputs[0][axis + 1:]

    def torch(self, a, inputs, out):
        import torch

        rank = len(inputs[0])
        return Call(torch.cat, {"dim": a["axis"] % rank + 1}, list_input=True)  # skip the batch axis


@register
class Mul(Merge):
    name = "mul"
    aliases = ("multiply",)
    glyph = "×"
    glyph_words = "product (a gate)"
    max_inputs = 2
    doc = ("Element-wise product of two inputs of the same rank, a size-1 axis broadcasting: a (C, 1, 1) "
           "gate times a (C, H, W) map is squeeze-and-excitation (Hu et al., 2018).")

    def output_shape(self, a, inputs):
        first, second = inputs
        if len(first) != len(second) or any(x != y and 1 not in (x, y) for x, y in zip(first, second)):
            raise ShapeError(f"inputs do not broadcast: {fmt_shape(first)} and {fmt_shape(second)} (each axis "
                             "must agree or be 1 in one of them, e.g. C×1×1 and C×H×W)")
        return tuple(max(x, y) for x, y in zip(first, second))

    def saved(self, a, inputs, out):
        return [Saved("input", 0), Saved("input", 1)]  # each factor's gradient is the other factor

    def torch(self, a, inputs, out):
        import operator

        return Call(operator.mul)
