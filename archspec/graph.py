"""The data between expansion and its consumers: primitive nodes with paths, shapes and sources."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import Location, Problem
from .layers import Shape

INPUT = "input"  # the path of the graph's input tensor


@dataclass
class Node:
    """One primitive layer after blocks, repeats, branches and residuals are unrolled."""

    path: str  # dotted, e.g. "layer2.0.conv1"; becomes the module name when compiled
    type: str  # canonical catalogue name
    args: dict[str, Any]  # coerced, with defaults applied
    inputs: list[str]  # paths of the nodes it reads; INPUT for the graph input
    shape: Shape  # output shape of one sample
    location: Location
    trainable: bool = True
    init: tuple | None = None  # (scheme, arguments) from archspec.init, None = torch's default

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@dataclass
class Group:
    """A namespace in the expanded graph: a block call, a repeat, one of its copies, a branch."""

    path: str
    kind: str  # "block", "repeat", "iteration", "parallel", "branch", "shortcut"
    label: str  # the block's name for calls, else the kind
    location: Location


@dataclass
class Graph:
    """A fully expanded spec: nodes in execution (topological) order."""

    name: str
    input_shape: Shape
    nodes: list[Node]
    output: str
    groups: dict[str, Group] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # the spec's params, overrides applied
    doc: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    file: str = ""
    warnings: list[Problem] = field(default_factory=list)  # valid but likely not meant (the spec's input order…)

    def __post_init__(self) -> None:
        self._by_path = {n.path: n for n in self.nodes}

    def node(self, path: str) -> Node:
        return self._by_path[path]

    def shape_of(self, path: str) -> Shape:
        return self.input_shape if path == INPUT else self._by_path[path].shape

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {INPUT: []}
        for node in self.nodes:
            users.setdefault(node.path, [])
            for src in node.inputs:
                users.setdefault(src, []).append(node.path)
        return users

    def to_networkx(self):
        """The graph as a networkx.DiGraph (nodes keyed by path, edges carry shapes)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        g.add_node(INPUT, type="input", shape=self.input_shape)
        for node in self.nodes:
            g.add_node(node.path, type=node.type, shape=node.shape)
            for src in node.inputs:
                g.add_edge(src, node.path, shape=self.shape_of(src))
        return g
