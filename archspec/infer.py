"""Stage 3: Graph -> per-node figures, analytically (pure Python, no torch, no forward pass).

All figures are per sample; the summary multiplies by the batch. That is why the cost of an
analysis does not depend on the batch size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import INPUT, Graph, Node
from .layers import Field, ParamCount, Saved, lookup_known

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class NodeFigures:
    """The analytic record of one node: raw numbers only, formatting lives in render.py."""

    node: Node
    params: ParamCount
    macs: int  # per sample
    activations: int  # output elements per sample (0 for views, which allocate nothing)
    field: Field
    saved: tuple[Saved, ...]

    @property
    def path(self) -> str:
        return self.node.path


@dataclass(frozen=True)
class Analysis:
    graph: Graph
    figures: list[NodeFigures]
    input_field: Field

    def by_path(self) -> dict[str, NodeFigures]:
        return {f.path: f for f in self.figures}


def infer(graph: Graph) -> Analysis:
    """Parameters, MACs, activation sizes, saved tensors and receptive fields of every node."""
    fields: dict[str, Field] = {INPUT: Field()}
    figures = []
    for node in graph.nodes:
        layer = lookup_known(node.type)
        in_shapes = [graph.shape_of(i) for i in node.inputs]
        field = layer.receptive_field(node.args, [fields[i] for i in node.inputs], in_shapes, node.shape)
        fields[node.path] = field
        figures.append(NodeFigures(
            node=node,
            params=layer.param_count(node.args, in_shapes, node.shape),
            macs=layer.macs(node.args, in_shapes, node.shape),
            activations=0 if layer.view else math.prod(node.shape),
            field=field,
            saved=tuple(layer.saved(node.args, in_shapes, node.shape)),
        ))
    return Analysis(graph, figures, fields[INPUT])


def storage_of(graph: Graph) -> dict[str, str]:
    """Which tensor's memory each node's output lives in (views share their input's)."""
    owner = {INPUT: INPUT}
    for node in graph.nodes:
        owner[node.path] = owner[node.inputs[0]] if lookup_known(node.type).view else node.path
    return owner


def saved_bytes(analysis: Analysis, batch: int, itemsize: int) -> int:
    """Bytes autograd keeps for backward in one training step: distinct storages, no parameters.

    Activations saved by two layers (a conv's input that is also the previous ReLU's output)
    are counted once, as they are one tensor in memory. Autograd records a layer only when
    something it computes with needs a gradient, so frozen layers before the first trainable
    one save nothing.
    """
    graph = analysis.graph
    owner = storage_of(graph)
    sizes = {INPUT: math.prod(graph.input_shape)}
    for f in analysis.figures:
        sizes[f.path] = math.prod(f.node.shape)
    needs_grad = {INPUT: False}  # the data needs no gradient
    kept: set[str] = set()
    total = 0
    for f in analysis.figures:
        trains = f.node.trainable and f.params.total > 0
        needs_grad[f.path] = trains or any(needs_grad[i] for i in f.node.inputs)
        if not needs_grad[f.path]:
            continue
        for s in f.saved:
            if s.only_if_trained and not trains:
                continue
            if s.what == "own":
                count = s.numel * (batch if s.per_batch else 1)
                total += count * (s.itemsize or itemsize)
                continue
            tensor = owner[f.node.inputs[s.index]] if s.what == "input" else owner[f.path]
            kept.add(tensor)
    total += sum(sizes[t] for t in kept) * batch * itemsize
    return total


def forward_peak_bytes(analysis: Analysis, batch: int, itemsize: int) -> int:
    """Peak activation memory of an inference pass that frees each tensor after its last use.

    The input stays alive to the end: the caller holds it.
    """
    graph = analysis.graph
    owner = storage_of(graph)
    last_use: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for src in node.inputs:
            last_use[owner[src]] = step
    last_use[owner[graph.output]] = len(graph.nodes)
    last_use[INPUT] = len(graph.nodes)
    size = {INPUT: math.prod(graph.input_shape)}
    live = size[INPUT]
    peak = live
    for step, node in enumerate(graph.nodes):
        if owner[node.path] == node.path:
            size[node.path] = math.prod(node.shape)
            live += size[node.path]
            peak = max(peak, live)
        for tensor in {owner[s] for s in node.inputs}:
            if last_use.get(tensor) == step:
                live -= size[tensor]
        if last_use.get(node.path, -1) < step and owner[node.path] == node.path:
            live -= size[node.path]  # an unused output (a dead end) is freed at once
    return peak * batch * itemsize
