"""Namespaces of an expansion: which names an item can read with ``from:``, and where its path goes."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..graph import INPUT
from ..loader import Document

FAILED = object()  # stands for the output of an item that could not be expanded


@dataclass(frozen=True)
class Parts:
    """The outputs of an item that gives several tensors (a chunk): read one with from: name.0."""

    local: str  # the item's name in its namespace
    paths: tuple[str, ...]


@dataclass
class Scope:
    prefix: str  # dotted path of this namespace ("" at the top)
    params: dict[str, Any]
    input: str  # node path this namespace reads as "input"
    document: Document
    parent: "Scope | None" = None  # lexical parent for from: lookups (branches, repeat copies)
    names: dict[str, Any] = field(default_factory=dict)  # local name -> node path (or FAILED)
    counters: Counter = field(default_factory=Counter)
    calls: tuple[str, ...] = ()  # block call stack, to refuse recursion
    trainable: bool = True
    init: tuple | None = None  # the weight initialisation inherited by nodes inside
    removed: set = field(default_factory=set)  # names of items an if: removed, for from: messages

    def join(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def transparent(self, input: str, params: dict, trainable: bool) -> "Scope":
        """The same namespace (shared names and counters) with another input and parameters."""
        return Scope(self.prefix, params, input, self.document, self.parent, self.names, self.counters,
                     self.calls, trainable, self.init, self.removed)

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            if name == INPUT:
                return scope.input
            scope = scope.parent
        return None

    def was_removed(self, name: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.removed:
                return True
            scope = scope.parent
        return False

    def child(self, prefix: str, input: str, params: dict | None = None, lexical: bool = True,
              document: Document | None = None, calls: tuple[str, ...] | None = None,
              trainable: bool | None = None) -> "Scope":
        return Scope(prefix, self.params if params is None else params, input,
                     document or self.document, self if lexical else None,
                     calls=self.calls if calls is None else calls,
                     trainable=self.trainable if trainable is None else trainable, init=self.init)
