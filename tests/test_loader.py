"""Stage 1, the YAML loader: source marks, refusals of unsafe or oversized input, located messages."""
from __future__ import annotations

import tracemalloc

import pytest
import yaml

import archspec
from archspec.errors import ArchspecError, LimitError, Location
from archspec.loader import (MAX_DOCUMENT_BYTES, MAX_EXPANDED_NODES, MAX_NESTING, parse_yaml,
                             read_document)


def error_of(text: str, file: str = "f.yaml") -> ArchspecError:
    with pytest.raises(ArchspecError) as info:
        parse_yaml(text, file)
    return info.value


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- marks


def test_marks_of_keys_and_values():
    doc = parse_yaml("archspec: 1\ninput: [3, 224, 224]\nlayers:\n  - conv2d: {out: 64, kernel: 3}\n  - relu\n",
                     "net.yaml")
    assert doc.data == {"archspec": 1, "input": [3, 224, 224],
                        "layers": [{"conv2d": {"out": 64, "kernel": 3}}, "relu"]}
    assert doc.locate(("archspec",), key=True) == Location("net.yaml", 1, 1)
    assert doc.locate(("archspec",)) == Location("net.yaml", 1, 11)
    assert doc.locate(("input",)) == Location("net.yaml", 2, 8)
    assert doc.locate(("input", 2)) == Location("net.yaml", 2, 17)
    assert doc.locate(("layers", 0)) == Location("net.yaml", 4, 5)
    assert doc.locate(("layers", 0, "conv2d")) == Location("net.yaml", 4, 13)
    assert doc.locate(("layers", 0, "conv2d", "kernel"), key=True) == Location("net.yaml", 4, 23)
    assert doc.locate(("layers", 0, "conv2d", "kernel")) == Location("net.yaml", 4, 31)
    assert doc.locate(("layers", 1)) == Location("net.yaml", 5, 5)


def test_locate_falls_back_to_the_nearest_enclosing_part():
    doc = parse_yaml("a:\n  b: [1, 2]\n", "f.yaml")
    assert doc.locate(("a", "b", 7)) == Location("f.yaml", 2, 6)  # no item 7: the list
    assert doc.locate(("a", "zzz"), key=True) == Location("f.yaml", 1, 1)  # no key zzz: the key of a
    assert doc.locate(("nothing", "here")) == Location("f.yaml", 1, 1)
    assert doc.locate(("a",), key=True) == Location("f.yaml", 1, 1)


def test_block_style_marks_and_multiline_values():
    doc = parse_yaml("doc: >\n  folded\n  text\nlayers:\n  -\n    relu\n", "f.yaml")
    assert doc.data["doc"] == "folded text\n"
    assert doc.locate(("layers",), key=True) == Location("f.yaml", 4, 1)
    assert doc.locate(("layers", 0)) == Location("f.yaml", 6, 5)


def test_only_core_scalars_are_built():
    doc = parse_yaml("a: 1\nb: 1.5\nc: true\nd: null\ne: '2'\nf: 0x10\n")
    assert doc.data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "2", "f": 16}


def test_merge_keys_are_resolved():
    doc = parse_yaml("base: &b {kernel: 3, padding: 1}\nconv: {<<: *b, out: 64}\n")
    assert doc.data["conv"] == {"kernel": 3, "padding": 1, "out": 64}


def test_shown_name_is_used_in_locations():
    assert str(error_of("a: [1,\n", file="specs/x.yaml").problem.location).startswith("specs/x.yaml:")


# ---------------------------------------------------------------- refusals


def test_duplicate_key_is_refused_at_the_second_key():
    err = error_of("archspec: 1\ninput: [3, 8, 8]\ninput: [3, 9, 9]\n")
    assert str(err) == "f.yaml:3:1: error: duplicate key 'input'"


def test_duplicate_key_inside_a_flow_mapping():
    err = error_of("layers:\n  - conv2d: {out: 16, kernel: 3, out: 32}\n")
    assert str(err) == "f.yaml:2:34: error: duplicate key 'out'"


def test_python_object_tag_is_refused_and_never_run(monkeypatch):
    import os
    import subprocess

    def boom(*args, **kwargs):  # pragma: no cover - reaching this is the failure
        raise AssertionError("a YAML tag ran a command")

    monkeypatch.setattr(os, "system", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    err = error_of("archspec: 1\nlayers:\n  - !!python/object/apply:os.system ['echo pwned']\n")
    assert str(err) == ("f.yaml:3:5: error: YAML tag !!python/object/apply:os.system is not allowed: "
                        "specs use plain YAML values only")


@pytest.mark.parametrize("text, where, tag", [
    ("a: !!python/name:os.system\n", (1, 4), "!!python/name:os.system"),
    ("a: !!binary aGVsbG8=\n", (1, 4), "!!binary"),
    ("a: !custom {x: 1}\n", (1, 4), "!custom"),
    ("a: !!set {x, y}\n", (1, 4), "!!set"),
    ("a:\n  - !!omap [{x: 1}]\n", (2, 5), "!!omap"),
])
def test_non_core_tags_are_refused_with_their_place(text, where, tag):
    err = error_of(text)
    assert err.problem.location == Location("f.yaml", *where)
    assert err.problem.message == f"YAML tag {tag} is not allowed: specs use plain YAML values only"


def test_an_unquoted_date_is_explained():
    err = error_of("metadata:\n  date: 2015-04-10\n")
    assert str(err) == ('f.yaml:2:9: error: YAML reads 2015-04-10 as a date, which specs do not use; '
                        'quote it: "2015-04-10"')


def test_non_scalar_keys_are_refused():
    assert str(error_of("? [a, b]\n: 1\n")) == "f.yaml:1:3: error: mapping keys must be plain names"
    assert str(error_of("{a: 1}: 2\n")) == "f.yaml:1:1: error: mapping keys must be plain names"


def test_null_key_is_refused():
    assert str(error_of("~: 1\n")) == "f.yaml:1:1: error: mapping keys must be plain names"


def test_numeric_keys_become_strings():
    assert parse_yaml("1: a\ntrue: b\n").data == {"1": "a", "True": "b"}


# ---------------------------------------------------------------- syntax errors


def test_syntax_error_is_located_and_names_the_open_bracket():
    err = error_of("archspec: 1\ninput: [3, 224, 224\nlayers: []\n")
    assert str(err) == ("f.yaml:3:7: error: YAML syntax: expected ',' or ']', but got ':' "
                        "(while parsing a flow sequence started at line 2, column 8)")


def test_bad_indentation_is_located():
    err = error_of("layers:\n  - relu\n - relu\n")
    assert err.problem.location == Location("f.yaml", 3, 2)
    assert err.problem.message.startswith("YAML syntax: ")
    assert err.problem.message.endswith("; check this line's indentation: the keys of one mapping, and the items "
                                        "of one list, start in the same column")


def test_a_key_indented_too_deep_gets_a_hint_at_the_key():
    err = error_of("train:\n  lr: 0.1\n    epochs: 3\n")
    assert err.problem.location == Location("f.yaml", 3, 5)  # the key, not PyYAML's colon
    assert err.problem.message == ("YAML syntax: mapping values are not allowed here: 'epochs' is indented deeper "
                                   "than line 2 above it, so YAML reads it as more of that line's value; "
                                   "indent it as the keys beside it")
    err = error_of("name: vgg\n\n  input: [1, 8, 8]\n")  # a blank line is part of the value too
    assert err.problem.location == Location("f.yaml", 3, 3) and "than line 1 above it" in err.problem.message


def test_a_colon_inside_a_value_gets_a_hint():
    err = error_of("layers:\n  - conv2d: out: 4\n")
    assert err.problem.location == Location("f.yaml", 2, 16)
    assert err.problem.message.endswith("; a value holding ': ' must be quoted, and a nested mapping goes in {...} "
                                        "or on its own indented lines")


def test_tab_indentation_is_located():
    err = error_of("layers:\n\t- relu\n")
    assert err.problem.location == Location("f.yaml", 2, 1)
    assert "'\\t'" in err.problem.message


def test_unclosed_quote():
    err = error_of('name: "vgg\ninput: [3, 8, 8]\n')
    assert err.problem.location.line == 3
    assert "quoted scalar started at line 1, column 7" in err.problem.message


def test_unquoted_expression_in_flow_mapping_gets_a_hint():
    err = error_of("layers:\n  - conv2d: {out: ${c * 2}, kernel: 3}\n")
    assert str(err) == ("f.yaml:2:20: error: YAML syntax: expected ',' or '}', but got '{'; "
                        'inside {...}, quote a ${...} expression: "${...}"')


def test_unquoted_expression_in_block_style_is_fine():
    assert parse_yaml("out: ${c * 2}\n").data == {"out": "${c * 2}"}


def test_undefined_alias_is_located():
    assert str(error_of("a: 1\nb: *nope\n")) == "f.yaml:2:4: error: YAML syntax: found undefined alias 'nope'"


def test_two_documents_are_refused():
    assert str(error_of("a: 1\n---\nb: 2\n")) == (
        "f.yaml:2:1: error: YAML syntax: a spec is one YAML document; found a second one (after ---)")


@pytest.mark.parametrize("char, line, col", [("\x00", 2, 8), ("\x07", 2, 8), ("\ufffe", 2, 8)])
def test_forbidden_characters_are_located(char, line, col):
    err = error_of(f"a: 1\nname: x{char}y\n")
    assert err.problem.location == Location("f.yaml", line, col)
    assert err.problem.message == f"YAML syntax: character U+{ord(char):04X} is not allowed in YAML text"


# ---------------------------------------------------------------- empty input


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_document_parses_to_none(text):
    assert parse_yaml(text, "e.yaml").data is None


def test_empty_spec_is_reported(spec_file):
    path = spec_file("# nothing yet\n")
    assert [str(p) for p in archspec.validate(path)] == [f"{path}:1:1: error: the spec is empty"]


# ---------------------------------------------------------------- size limits


def test_oversized_text_is_refused_before_parsing(monkeypatch):
    import archspec.loader as loader

    def no_parse(*args, **kwargs):  # pragma: no cover - reaching this is the failure
        raise AssertionError("parsed an oversized document")

    monkeypatch.setattr(loader, "_Loader", no_parse)
    monkeypatch.setattr(yaml, "compose", no_parse)
    text = "a: " + "x" * MAX_DOCUMENT_BYTES + "\n"
    with pytest.raises(LimitError) as info:
        parse_yaml(text, "big.yaml")
    assert str(info.value) == "big.yaml: error: document is larger than 1024 KiB; archspec refuses it"


def test_oversized_text_counts_bytes_not_characters():
    text = "a: '" + "é" * (MAX_DOCUMENT_BYTES // 2) + "'\n"  # fewer characters than bytes
    assert len(text) < MAX_DOCUMENT_BYTES
    with pytest.raises(LimitError):
        parse_yaml(text)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    from pathlib import Path

    path = tmp_path / "big.yaml"
    with path.open("w") as f:
        f.write("# padding\n" * (MAX_DOCUMENT_BYTES // 10 + 1))

    def no_read(*args, **kwargs):  # pragma: no cover - reaching this is the failure
        raise AssertionError("read an oversized file")

    monkeypatch.setattr(Path, "read_text", no_read)
    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(LimitError) as info:
        read_document(path, "big.yaml")
    assert str(info.value) == ("big.yaml: error: file is 1,048,580 bytes, larger than the 1024 KiB "
                               "archspec accepts")


def test_document_just_under_the_limit_is_accepted():
    text = "a: '" + "x" * (MAX_DOCUMENT_BYTES - 10) + "'\n"
    assert len(parse_yaml(text).data["a"]) == MAX_DOCUMENT_BYTES - 10


def test_alias_bomb_is_refused_quickly_without_allocating():
    text = billion_laughs(9)  # 9**9 = 387 million strings once expanded
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as info:
            parse_yaml(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # the work is bounded by what is allocated, not timed
    assert str(info.value) == (f"bomb.yaml:1:1: error: document expands to more than {MAX_EXPANDED_NODES:,} "
                               "YAML nodes (aliases included); archspec refuses it")


def test_a_few_aliases_are_fine():
    doc = parse_yaml(billion_laughs(3))  # 9**3 = 729 strings
    assert len(doc.data["l2"]) == 9 and doc.data["l2"][0] == doc.data["l1"]


def test_alias_bomb_through_the_api_is_a_located_problem(spec_file):
    path = spec_file("archspec: 1\ninput: [3, 8, 8]\nlayers: [relu]\nmetadata:\n"
                     + "".join("  " + line + "\n" for line in billion_laughs(9).splitlines()))
    tracemalloc.start()
    try:
        problems = archspec.validate(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    assert len(problems) == 1 and "more than 100,000 YAML nodes" in problems[0].message


@pytest.mark.parametrize("text, where", [
    ("a: &x [1, *x]\n", (1, 4)),
    ("a: &x\n  b: *x\n", (1, 4)),
    ("a: &x {b: [c, *x]}\n", (1, 4)),
])
def test_recursive_alias_is_refused(text, where):
    err = error_of(text)
    assert isinstance(err, LimitError)
    assert err.problem.message == "recursive YAML alias: the value anchored here contains an alias of itself"
    assert err.problem.location.line == where[0]


def test_deep_nesting_is_refused_at_the_place_it_goes_too_deep():
    tracemalloc.start()
    try:
        err = error_of("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # refused where it goes too deep, not after building it all
    assert isinstance(err, LimitError)
    assert str(err) == f"f.yaml:1:{4 + MAX_NESTING - 1}: error: YAML is nested more than {MAX_NESTING} levels deep; archspec refuses it"


def test_deep_block_mappings_are_refused():
    text = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"
    err = error_of(text)
    assert err.problem.location.line == MAX_NESTING  # one mapping per line
    assert "nested more than" in err.problem.message


def test_nesting_up_to_the_limit_is_accepted():
    depth = MAX_NESTING - 1  # the root mapping is one level
    data = parse_yaml("a: " + "[" * depth + "]" * depth + "\n").data["a"]
    for _ in range(depth - 1):
        data = data[0]
    assert data == []


# ---------------------------------------------------------------- files


def test_missing_file(tmp_path):
    with pytest.raises(ArchspecError) as info:
        read_document(tmp_path / "nope.yaml", "nope.yaml")
    assert str(info.value) == "nope.yaml: error: cannot read file: No such file or directory"


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ArchspecError) as info:
        read_document(path, "latin1.yaml")
    assert str(info.value) == "latin1.yaml: error: file is not UTF-8 text"


def test_read_document_keeps_marks_and_resolved_path(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("a:\n  - 1\n", encoding="utf-8")
    doc = read_document(path, "s.yaml")
    assert doc.path == path.resolve()
    assert doc.locate(("a", 0)) == Location("s.yaml", 2, 5)
