"""Stage 1: YAML text -> Document (plain data + the source position of every key and value).

Loading is safe by construction: only the YAML core types are built (no object tags), and
documents are refused before they are built when they are too large, too deep, or expand
into too many nodes through aliases (the "billion laughs" attack).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ArchspecError, LimitError, Location

MAX_DOCUMENT_BYTES = 1 << 20  # 1 MiB: far beyond any hand-written network
MAX_EXPANDED_NODES = 100_000  # YAML nodes after alias expansion
MAX_IMPORT_DEPTH = 32
MAX_NESTING = 64  # YAML levels: a hand-written spec rarely nests 15 deep

SAFE_TAGS = {
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "map", "seq")
}

PathKey = tuple  # a path into the document: ("layers", 3, "conv2d", "out")


@dataclass
class Document:
    """A parsed YAML file: plain data plus where each part of it was written."""

    file: str  # the name shown in messages
    data: Any
    path: Path | None = None  # the resolved file, None for text given directly
    value_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey = (), key: bool = False) -> Location:
        """Location of the value (or its key) at ``path``, or of the nearest enclosing part."""
        asked = path = tuple(path)
        marks = self.key_marks if key else self.value_marks
        while True:
            if path in marks:
                line, col = marks[path]
                return Location(self.file, line, col, asked)
            if path in self.value_marks:
                line, col = self.value_marks[path]
                return Location(self.file, line, col, asked)
            if not path:
                return Location(self.file, 1, 1, asked)
            path = path[:-1]


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing documents nested more than MAX_NESTING levels as it composes them
    (before Python's own recursion limit would stop it somewhere less helpful)."""

    file = "<string>"
    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise LimitError(f"YAML is nested more than {MAX_NESTING} levels deep; archspec refuses it",
                                 Location(self.file, mark.line + 1, mark.column + 1))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _position(text: str, index: int) -> tuple[int, int]:
    """(line, col) of a character offset, for errors that carry no YAML mark."""
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _mapping_value_hint(lines: list[str], line: int, column: int) -> tuple[str, int]:
    """Why PyYAML found ``key:`` where it reads a value, and the column to point at.

    Mostly indentation: a line indented deeper than the one above continues that line's value, so
    its key cannot start a mapping there. Otherwise a value on the same line holds ``: `` unquoted.
    """
    text = lines[line] if line < len(lines) else ""
    key = text[:column].strip()
    indent = len(text) - len(text.lstrip(" "))
    above = next((n for n in range(line - 1, -1, -1) if lines[n].strip()), None)  # a blank line folds into it
    if key and ":" not in key and above is not None and indent > len(lines[above]) - len(lines[above].lstrip(" ")):
        return (f": '{key}' is indented deeper than line {above + 1} above it, so YAML reads it as more of "
                f"that line's value; indent it as the keys beside it", indent)
    return ("; a value holding ': ' must be quoted, and a nested mapping goes in {...} or on its own "
            "indented lines", column)


class _Builder:
    """Turns a composed YAML node graph into plain data, recording marks and enforcing limits."""

    def __init__(self, file: str):
        self.file = file
        self.constructor = yaml.SafeLoader("")  # only used to build scalars of the core schema
        self.value_marks: dict[PathKey, tuple[int, int]] = {}
        self.key_marks: dict[PathKey, tuple[int, int]] = {}
        self.count = 0

    def _loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def expanded_size(self, root: yaml.Node) -> int:
        """Node count with every alias expanded, computed without expanding anything."""
        sizes: dict[int, int] = {}
        on_stack: set[int] = set()

        def size(node: yaml.Node) -> int:
            key = id(node)
            if key in sizes:
                return sizes[key]
            if key in on_stack:  # a recursive alias expands forever
                raise LimitError("recursive YAML alias: the value anchored here contains an alias of itself",
                                 self._loc(node))
            on_stack.add(key)
            total = 1
            if isinstance(node, yaml.SequenceNode):
                total += sum(size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                total += sum(size(k) + size(v) for k, v in node.value)
            on_stack.discard(key)
            sizes[key] = min(total, MAX_EXPANDED_NODES + 1)
            return sizes[key]

        return size(root)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.value_marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if node.tag not in SAFE_TAGS:
            if node.tag == "tag:yaml.org,2002:timestamp" and isinstance(node, yaml.ScalarNode):
                raise ArchspecError(f"YAML reads {node.value} as a date, which specs do not use; "
                                    f"quote it: \"{node.value}\"", self._loc(node))
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ArchspecError(
                f"YAML tag {tag} is not allowed: specs use plain YAML values only",
                self._loc(node),
            )
        if isinstance(node, yaml.ScalarNode):
            return self.constructor.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, path + (i,)) for i, child in enumerate(node.value)]
        result: dict[str, Any] = {}
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ArchspecError("mapping keys must be plain names", self._loc(key_node))
            key = self.constructor.construct_object(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise ArchspecError("mapping keys must be plain names", self._loc(key_node))
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                raise ArchspecError(f"duplicate key {key!r}", self._loc(key_node))
            self.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, path + (key,))
        return result


def parse_yaml(text: str, file: str = "<string>", path: Path | None = None) -> Document:
    """Parse one YAML document safely, keeping the position of every key and value."""
    if len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise LimitError(
            f"document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; archspec refuses it",
            Location(file),
        )
    builder = _Builder(file)
    loader = None
    try:
        loader = _Loader(text)  # checks that every character is allowed in YAML
        loader.file = file
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        what = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.problem == "but found another document":
            what, start = "a spec is one YAML document; found a second one (after ---)", None
        if exc.problem and exc.context and start and mark and start.line != mark.line:
            what += f" ({exc.context} started at line {start.line + 1}, column {start.column + 1})"
        if mark and text[mark.index:mark.index + 1] == "{" and text[mark.index - 1:mark.index] == "$":
            what += "; inside {...}, quote a ${...} expression: \"${...}\""
        if mark and exc.problem == "mapping values are not allowed here":
            hint, column = _mapping_value_hint(text.splitlines(), mark.line, mark.column)
            what += hint
            where = Location(file, mark.line + 1, column + 1)
        elif mark and (exc.problem or "").startswith("expected <block end>"):
            what += ("; check this line's indentation: the keys of one mapping, and the items of one list, "
                     "start in the same column")
        raise ArchspecError(f"YAML syntax: {what}", where) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow; it has no mark
        line, col = _position(text, exc.position)
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ArchspecError(f"YAML syntax: character {what} is not allowed in YAML text",
                            Location(file, line, col)) from None
    except yaml.YAMLError as exc:
        raise ArchspecError(f"YAML syntax: {exc}", Location(file, 1, 1)) from None
    except RecursionError:
        raise LimitError("YAML is nested too deeply", Location(file, 1, 1)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        return Document(file, None, path)
    try:
        if builder.expanded_size(root) > MAX_EXPANDED_NODES:
            raise LimitError(
                f"document expands to more than {MAX_EXPANDED_NODES:,} YAML nodes "
                "(aliases included); archspec refuses it",
                Location(file, root.start_mark.line + 1, root.start_mark.column + 1),
            )
        data = builder.build(root, ())
    except RecursionError:
        raise LimitError("YAML is nested too deeply", Location(file, 1, 1)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        raise ArchspecError(f"YAML: {getattr(exc, 'problem', None) or exc}", where) from None
    return Document(file, data, path, builder.value_marks, builder.key_marks)


def read_document(path: Path, shown_as: str | None = None) -> Document:
    """Read and parse a YAML file, refusing oversized files before reading them."""
    shown = shown_as or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ArchspecError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    if size > MAX_DOCUMENT_BYTES:
        raise LimitError(
            f"file is {size:,} bytes, larger than the {MAX_DOCUMENT_BYTES // 1024} KiB archspec accepts",
            Location(shown),
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArchspecError("file is not UTF-8 text", Location(shown)) from None
    except OSError as exc:
        raise ArchspecError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    return parse_yaml(text, shown, path.resolve())
