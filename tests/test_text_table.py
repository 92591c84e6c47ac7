"""archspec/text_table.py: widths, wrapping, the look, and the three ways of writing the lines."""
from __future__ import annotations

from archspec.text_table import (Column, ansi, column_widths, pairs_lines, plain, table_lines, table_width,
                                 wrap)

COLUMNS = [Column("Name"), Column("Note", wrap="words"), Column("Count", right=True)]
ROWS = [["alpha", "a short note", "1"], ["beta", "a much longer note that wraps", "1,234"]]


def test_a_table_that_fits_keeps_every_column_as_wide_as_its_widest_cell():
    widths = column_widths(COLUMNS, ROWS, 200)
    assert widths == [5, len("a much longer note that wraps"), 5]
    lines = plain(table_lines("title", COLUMNS, ROWS, widths)).splitlines()
    assert lines[0] == "title".ljust(table_width(widths))
    assert lines[1].strip() == "" and lines[-1].strip() == ""  # a blank line above and below the body
    assert lines[2] == " Name    " + "Note".ljust(widths[1]) + "   Count "
    assert set(lines[3].strip()) == {"─"}
    assert lines[5].endswith("   1,234 ")  # numbers right-aligned
    assert {len(line) for line in lines} == {table_width(widths)}


def test_a_narrow_width_wraps_the_wrapping_column_at_words_and_never_the_others():
    widths = column_widths(COLUMNS, ROWS, 30)
    assert widths is not None and table_width(widths) <= 30
    assert widths[0] == 5 and widths[2] == 5
    lines = plain(table_lines("", COLUMNS, ROWS, widths)).splitlines()
    body = " ".join(line[9:9 + widths[1]].strip() for line in lines[3:])
    assert "a much longer note that wraps" in " ".join(body.split())
    assert all(len(line) <= 30 for line in lines)


def test_a_width_below_every_floor_is_refused():
    assert column_widths(COLUMNS, ROWS, 20) is None  # "wraps"/"longer" still needs 6; names and counts never wrap


def test_fold_breaks_inside_a_word_and_words_does_not():
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert wrap("abcdefghij klm", 4, fold=False) == ["abcdefghij", "klm"]
    assert wrap("fits", 4) == ["fits"]


def test_pairs_are_two_columns_or_each_value_under_its_label():
    pairs = [("Parameters", "61,706 (trainable 61,706)"), ("Gradients", "241.04 KiB")]
    wide = plain(pairs_lines(pairs, 80)).splitlines()
    assert wide[0] == "Parameters  61,706 (trainable 61,706)"
    assert wide[1] == "Gradients   241.04 KiB".ljust(len(wide[0]))
    narrow = plain(pairs_lines(pairs, 20)).splitlines()
    assert narrow[:2] == ["Parameters", "  61,706 (trainable"] and max(map(len, narrow)) <= 20


def test_ansi_styles_only_the_styled_text():
    lines = table_lines("t", COLUMNS[:1], [["x"]], [4])
    text = ansi(lines)
    assert "\x1b[3mt     \x1b[0m" in text and "\x1b[1mName\x1b[0m" in text
    assert plain(lines) == text.replace("\x1b[3m", "").replace("\x1b[1m", "").replace("\x1b[0m", "")
