"""The Summary: per-layer rows and totals at a batch size and dtype, as raw numbers.

Formatting lives in ``render.py``; a Summary is a rich renderable only by delegating there.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .graph import Graph
from .infer import DTYPE_BYTES, Analysis, forward_peak_bytes, infer, saved_bytes
from .layers import lookup_known

# Optimizer state: extra tensors kept per trainable parameter (torch.optim's defaults).
OPTIMIZER_SLOTS = {
    "sgd": 0,  # plain SGD keeps nothing
    "momentum": 1,  # SGD with momentum: the momentum buffer
    "nesterov": 1,
    "rmsprop": 1,  # square average (+1 more with momentum > 0)
    "adagrad": 1,  # sum of squares
    "adam": 2,  # first and second moments
    "adamw": 2,
    "nadam": 2,
    "radam": 2,
}

SCHEMA_VERSION = 1  # of the JSON output; bumped only when a key changes meaning


@dataclass(frozen=True)
class Row:
    path: str
    type: str  # layer type, or for a collapsed block its block name
    key_params: str
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    buffers: int
    activations: int  # output elements for the whole batch
    macs: int  # for the whole batch
    receptive_field: tuple[int, int] | None
    depth: int  # nesting level: number of dots in the path
    location: str
    nodes: int = 1  # primitive nodes folded into this row (> 1 for a collapsed block)


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    non_trainable_params: int
    buffers: int
    param_bytes: int
    buffer_bytes: int
    input_bytes: int
    activation_bytes: int  # every layer output of one forward pass, input included
    forward_peak_bytes: int  # inference, freeing each tensor after its last use
    saved_bytes: int  # what autograd keeps for backward in training
    gradient_bytes: int
    optimizer_bytes: int
    training_bytes: int  # parameters + buffers + gradients + optimizer state + saved
    macs: int
    flops: int  # 2 * macs


@dataclass
class Summary:
    name: str
    input: tuple[int, ...]
    batch: int
    dtype: str
    optimizer: str
    depth: int | None
    rows: list[Row]
    totals: Totals
    analysis: Analysis = field(repr=False)
    source: str = ""
    file: str = ""

    @property
    def graph(self) -> Graph:
        return self.analysis.graph

    def to_dict(self) -> dict[str, Any]:
        """Plain data with the stable keys documented in docs/summary-json.md."""
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "file": self.file,
            "source": self.source,
            "input": list(self.input),
            "batch": self.batch,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "depth": self.depth,
            "layers": [
                {
                    "path": r.path,
                    "type": r.type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "trainable": r.trainable,
                    "buffers": r.buffers,
                    "activations": r.activations,
                    "macs": r.macs,
                    "receptive_field": list(r.receptive_field) if r.receptive_field else None,
                    "nodes": r.nodes,
                    "location": r.location,
                }
                for r in self.rows
            ],
            "totals": asdict(self.totals),
            "warnings": [{"message": w.message, "location": str(w.location) if w.location else None}
                         for w in self.graph.warnings],
        }

    def _repr_html_(self) -> str:
        """The table and totals as HTML: how a notebook shows a Summary."""
        from .render import to_html

        return to_html(self)

    def __rich__(self):
        from .render import summary_table

        return summary_table(self)


def summarize_graph(graph: Graph, batch: int = 1, dtype: str = "float32", depth: int | None = None,
                    optimizer: str = "adam") -> Summary:
    """Build the Summary of an expanded graph. Cost is independent of ``batch``."""
    from .errors import UsageError

    if dtype not in DTYPE_BYTES:
        raise UsageError(f"unknown dtype '{dtype}'; choose one of {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZER_SLOTS:
        raise UsageError(f"unknown optimizer '{optimizer}'; choose one of {', '.join(OPTIMIZER_SLOTS)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1 << 24:
        raise UsageError(f"batch must be an integer from 1 to {1 << 24}, found {batch!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise UsageError(f"depth must be an integer >= 0, found {depth!r}")
    analysis = infer(graph)
    itemsize = DTYPE_BYTES[dtype]
    rows = _rows(analysis, batch, depth)
    params = sum(f.params.total for f in analysis.figures)
    trainable = sum(f.params.total for f in analysis.figures if f.node.trainable)
    buffers = sum(f.params.buffers for f in analysis.figures)
    activations = math.prod(graph.input_shape) + sum(f.activations for f in analysis.figures)
    saved = saved_bytes(analysis, batch, itemsize)
    gradients = trainable * itemsize
    optimizer_bytes = trainable * OPTIMIZER_SLOTS[optimizer] * itemsize
    macs = sum(f.macs for f in analysis.figures) * batch
    totals = Totals(
        params=params,
        trainable_params=trainable,
        non_trainable_params=params - trainable,
        buffers=buffers,
        param_bytes=params * itemsize,
        buffer_bytes=buffers * itemsize,
        input_bytes=math.prod(graph.input_shape) * batch * itemsize,
        activation_bytes=activations * batch * itemsize,
        forward_peak_bytes=forward_peak_bytes(analysis, batch, itemsize),
        saved_bytes=saved,
        gradient_bytes=gradients,
        optimizer_bytes=optimizer_bytes,
        training_bytes=params * itemsize + buffers * itemsize + gradients + optimizer_bytes + saved,
        macs=macs,
        flops=2 * macs,
    )
    return Summary(graph.name, graph.input_shape, batch, dtype, optimizer, depth, rows, totals,
                   analysis, graph.source, graph.file)


def _rows(analysis: Analysis, batch: int, depth: int | None) -> list[Row]:
    rows: list[Row] = []
    groups: dict[str, list] = {}
    order: list[str] = []
    for f in analysis.figures:
        parts = f.path.split(".")
        key = f.path if depth is None or len(parts) <= depth + 1 else ".".join(parts[:depth + 1])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    graph = analysis.graph
    for key in order:
        members = groups[key]
        last = members[-1]
        if len(members) == 1 and members[0].path == key:
            node = last.node
            rows.append(Row(
                path=key, type=node.type, key_params=lookup_known(node.type).key_params(node.args),
                output_shape=node.shape, params=last.params.total,
                trainable=last.params.total if node.trainable else 0, buffers=last.params.buffers,
                activations=last.activations * batch, macs=last.macs * batch,
                receptive_field=last.field.size,
                depth=key.count("."), location=str(node.location)))
            continue
        group = graph.groups.get(key)
        label = group.label if group and group.kind == "block" else (group.kind if group else "group")
        if group and group.kind == "repeat":
            label = f"repeat {group.label}"
        rows.append(Row(
            path=key, type=label, key_params=f"{len(members)} layers",
            output_shape=last.node.shape,
            params=sum(m.params.total for m in members),
            trainable=sum(m.params.total for m in members if m.node.trainable),
            buffers=sum(m.params.buffers for m in members),
            activations=sum(m.activations for m in members) * batch,
            macs=sum(m.macs for m in members) * batch,
            receptive_field=last.field.size, depth=key.count("."),
            location=str(group.location if group else last.node.location), nodes=len(members)))
    return rows
