"""Tables laid out as lines of text, for a terminal, a pipe or a rich console alike.

The summary's table is what `archspec summary` prints on every run, so it is laid out here in a
few lines of plain Python instead of by a terminal library: importing and running rich's table
took 80 ms, more than the rest of the command. The look is the familiar one (a title, a header
ruled with ``─``, columns three spaces apart, one space of margin at each side, every line padded
to the table's width), and a narrow console gets wrapped text columns, never a cut number.

A line is a list of spans ``(text, style)``, style being "", "bold" or "italic", so that the same
layout can be written plainly (a pipe), with ANSI codes (a terminal) or as rich segments
(``rich.print(summary)`` in a notebook).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

Span = tuple[str, str]  # text, style: "", "bold" or "italic"
Line = list[Span]
GAP = 3  # between two columns: a space of padding each side of a blank divider
MARGIN = 1  # at each edge of a table
ANSI = {"bold": "\x1b[1m", "italic": "\x1b[3m"}
RESET = "\x1b[0m"


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # numbers are right-aligned
    wrap: str = "none"  # "none": one line, as wide as its widest cell; "words": wraps at spaces;
    #                     "fold": wraps at spaces, and inside a word still too wide for the column
    min_width: int = 0  # a wrapping column never gets narrower than this (nor than its header)


def table_width(widths: list[int]) -> int:
    return sum(widths) + GAP * (len(widths) - 1) + 2 * MARGIN


def _narrowest(column: Column, cells: list[str]) -> int:
    """The least width a column can be drawn at without cutting its header, a word (when it wraps at
    words) or anything (when it does not wrap)."""
    floor = max(len(column.header), column.min_width)
    if column.wrap == "none":
        return max([floor] + [len(c) for c in cells])
    if column.wrap == "words":
        return max([floor] + [len(word) for c in cells for word in c.split()])
    return floor


def column_widths(columns: list[Column], rows: list[list[str]], width: int) -> list[int] | None:
    """Each column's width for a table at most ``width`` wide, or None when it cannot fit.

    Every column starts as wide as its widest cell; while the table is too wide, the widest column
    that may wrap gives up one character.
    """
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    widths = [max([len(c.header)] + [len(x) for x in col]) for c, col in zip(columns, cells)]
    floors = [_narrowest(c, col) for c, col in zip(columns, cells)]
    while table_width(widths) > width:
        shrinkable = [i for i, (w, f) in enumerate(zip(widths, floors)) if w > f]
        if not shrinkable:
            return None
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    return widths


def wrap(text: str, width: int, fold: bool = True) -> list[str]:
    """``text`` in lines at most ``width`` wide, broken at spaces (and inside words when ``fold``)."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=fold, break_on_hyphens=False) or [""]


def table_lines(title: str, columns: list[Column], rows: list[list[str]], widths: list[int]) -> list[Line]:
    """The title (italic; none when empty), the header (bold) over a rule, the rows, and a blank line
    around the body."""
    total = table_width(widths)
    edge = " " * MARGIN

    def row_lines(cells: list[str], style: str) -> list[Line]:
        wrapped = [wrap(cell, w, c.wrap == "fold") if c.wrap != "none" else [cell]
                   for cell, w, c in zip(cells, widths, columns)]
        lines = []
        for k in range(max(len(w) for w in wrapped)):
            spans: Line = [(edge, "")]
            for i, (parts, w, c) in enumerate(zip(wrapped, widths, columns)):
                part = parts[k] if k < len(parts) else ""
                spans.append((part.rjust(w) if c.right else part.ljust(w), style if part else ""))
                spans.append((" " * GAP if i < len(columns) - 1 else edge, ""))
            lines.append(spans)
        return lines

    lines: list[Line] = [[(part.ljust(total), "italic")] for part in wrap(title, total)] if title else []
    lines.append([(" " * total, "")])
    lines += row_lines([c.header for c in columns], "bold")
    lines.append([(edge + "─" * (total - 2 * MARGIN) + edge, "")])
    for row in rows:
        lines += row_lines(row, "")
    lines.append([(" " * total, "")])
    return lines


def pairs_lines(pairs: list[tuple[str, str]], width: int, gap: int = 2) -> list[Line]:
    """Labelled values in two columns (labels bold), every line as wide as the widest; a value too
    wide for the width wraps in its column, or under its label when the labels leave it no room."""
    label_width = max(len(label) for label, _ in pairs)
    value_width = max(len(value) for _, value in pairs)
    room = width - label_width - gap
    lines: list[Line] = []
    if label_width + gap + value_width <= width or room >= 16:
        value_width = min(value_width, room) if room >= 16 else value_width
        for label, value in pairs:
            for k, part in enumerate(wrap(value, value_width)):
                lines.append([((label if k == 0 else "").ljust(label_width), "bold"), (" " * gap, ""),
                              (part.ljust(value_width), "")])
        return lines
    for label, value in pairs:  # too narrow for two columns: each value indented under its label
        lines += [[(part, "bold")] for part in wrap(label, width)]
        lines += [[("  " + part, "")] for part in wrap(value, max(width - 2, 1))]
    return lines


def plain(lines: list[Line]) -> str:
    return "".join("".join(text for text, _ in line) + "\n" for line in lines)


def ansi(lines: list[Line]) -> str:
    """The lines with their bold and italic as terminal escape codes."""
    return "".join("".join(f"{ANSI[style]}{text}{RESET}" if style and text.strip() else text for text, style in line)
                   + "\n" for line in lines)
