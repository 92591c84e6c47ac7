"""archspec/commands/common.py: how the commands print text laid out for a width."""
from __future__ import annotations

import io
import sys

import pytest

from archspec.commands.common import print_lines
from archspec.text_table import Column, table_lines


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines_for(width: int):
    return table_lines("title", [Column("Layer"), Column("Params", right=True)], [["conv1", "1,728"]],
                       [max(5, width // 4), 6])


@pytest.fixture
def terminal(monkeypatch):
    """A terminal as standard output; installed by each test, since pytest's own capture replaces
    sys.stdout between a fixture's set-up and the test."""
    out = Terminal()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "100")  # the terminal's width, as shutil.get_terminal_size reads it
    return out


def test_a_terminal_gets_bold_and_italic_at_its_width(terminal, monkeypatch):
    monkeypatch.setattr(sys, "stdout", terminal)
    widths = []
    print_lines(lambda width: widths.append(width) or lines_for(width))
    assert widths == [100]
    assert "\x1b[1mLayer" in terminal.getvalue() and "\x1b[3m" in terminal.getvalue()


@pytest.mark.parametrize("variable, value", [("NO_COLOR", "1"), ("TERM", "dumb")])
def test_no_color_and_a_dumb_terminal_get_plain_text(terminal, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(sys, "stdout", terminal)
    print_lines(lines_for)
    assert "\x1b[" not in terminal.getvalue() and "conv1" in terminal.getvalue()


@pytest.mark.parametrize("columns, width", [("120", 120), ("wide", 160), (None, 160), ("3", 20)])
def test_a_pipe_is_160_columns_unless_columns_says_otherwise(monkeypatch, columns, width):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    widths = []
    print_lines(lambda w: widths.append(w) or lines_for(w))
    assert widths == [width] and "\x1b[" not in out.getvalue()
