"""Spec data -> YAML text as the zoo writes it: one flow-style line per layer, structures in block style."""
from __future__ import annotations

import json
import re
from typing import Any

PLAIN = re.compile(r"^(\$?[A-Za-z_][A-Za-z0-9_.]*)$")
YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~"}
STRUCTURE_KEYS = ("repeat", "residual", "parallel")


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:  # YAML 1.1 reads 1e-05 as text
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    text = str(value)
    if PLAIN.match(text) and text.lower() not in YAML_WORDS:
        return text
    return json.dumps(text)


def flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def _is_structure(item: Any) -> bool:
    return isinstance(item, dict) and any(k in item for k in STRUCTURE_KEYS)


def _one_line(item: dict) -> bool:
    """A repeat of one simple item reads well on one line."""
    body = item.get("body")
    return ("repeat" in item and isinstance(body, list) and len(body) == 1 and not _is_structure(body[0])
            and len(flow(item)) <= 100)


def items(entries: list, indent: int) -> list[str]:
    """A list of items, each ``- `` at ``indent`` spaces."""
    pad = " " * indent
    lines: list[str] = []
    for item in entries:
        if isinstance(item, str):
            lines.append(f"{pad}- {scalar(item)}")
        elif not _is_structure(item) or _one_line(item):
            kind = next(iter(item))
            if len(item) == 1:
                lines.append(f"{pad}- {scalar(kind)}: {flow(item[kind])}")
            else:
                order = [k for k in item if k not in ("name", "from", "body")] + ["name", "from", "body"]
                lines.append(f"{pad}- {flow({k: item[k] for k in order if k in item})}")
        else:
            lines += _structure(item, indent)
    return lines


def _structure(item: dict, indent: int) -> list[str]:
    pad, inner = " " * indent, " " * (indent + 2)
    first = True
    lines: list[str] = []

    def key_line(text: str) -> None:
        nonlocal first
        lines.append(f"{pad}- {text}" if first else f"{inner}{text}")
        first = False

    order = [k for k in item if k in STRUCTURE_KEYS] + ["index", "name", "from", "merge", "body", "shortcut"]
    for key in [k for k in order if k in item]:
        value = item[key]
        if key in ("residual", "shortcut", "body"):
            key_line(f"{key}:")
            lines.extend(items(value, indent + 4))
        elif key == "parallel":
            key_line("parallel:")
            for branch in value:
                if isinstance(branch, dict):  # {name, body}
                    lines.append(f"{inner}  - name: {scalar(branch['name'])}")
                    lines.append(f"{inner}    body:")
                    lines.extend(items(branch["body"], indent + 8))
                else:
                    branch_lines = items(branch, indent + 6)
                    branch_lines[0] = f"{inner}  - - " + branch_lines[0].lstrip()[2:]
                    lines.extend(branch_lines)
        else:
            key_line(f"{scalar(key)}: {flow(value)}")
    return lines


def spec_text(header: list[tuple[str, Any]], blocks: dict[str, dict], layers: list, schema: str) -> str:
    lines = [f"# yaml-language-server: $schema={schema}"]
    for key, value in header:
        if key == "doc":
            lines.append(f"doc: >-")
            lines += _wrapped(value, 2)
        else:
            lines.append(f"{key}: {flow(value)}")
    if blocks:
        lines.append("blocks:")
        for name, definition in blocks.items():
            lines.append(f"  {scalar(name)}:")
            if "params" in definition:
                lines.append(f"    params: {flow(definition['params'])}")
            lines.append("    body:")
            lines += items(definition["body"], 6)
    lines.append("layers:")
    lines += items(layers, 2)
    return "\n".join(lines) + "\n"


def _wrapped(text: str, indent: int, width: int = 98) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width - indent:
            lines.append(" " * indent + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(" " * indent + line)
    return lines
