"""Fuzzing: mutated specs must only ever produce located problems, never an exception.

Valid specs (the zoo's VGG-16 and a few small ones exercising blocks, repeats, branches and
residuals) are mutated — items deleted, duplicated and swapped, values replaced by random ints,
strings, lists, nulls, negative and huge numbers, keys renamed and inserted, the text truncated
or sprinkled with random characters — and `archspec.loads` + `archspec.validate` must return a
list of Problems, each located in a file at a line >= 1. Nothing but an ArchspecError may escape
the pipeline, and that one only from `loads` (YAML problems), itself with located problems.

Crashes found by the fuzzer are kept as @example regressions.
"""
from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

import archspec
from archspec.errors import ArchspecError, Problem
from fuzzing import fuzz
from shared_specs import RESNET_BASIC_BLOCK

ROOT = Path(__file__).resolve().parent.parent

SMALL = {
    "blocks": """
        archspec: 1
        name: blocks
        input: [3, 32, 32]
        params: {width: 16, classes: 10}
        blocks:
          unit:
            params: {c: int, stride: 1, act: {type: str, default: relu}}
            body:
              - conv2d: {out: $c, kernel: 3, stride: $stride, padding: 1, bias: false}
              - batchnorm2d
              - relu
        layers:
          - unit: {c: $width}
          - {unit: {c: "${width * 2}", stride: 2}, name: down}
          - repeat: 2
            name: stage
            body:
              - unit: {c: "${width * 2}"}
          - global_avgpool
          - linear: {out: $classes}
    """,
    "resnet": textwrap.indent("\narchspec: 1\ninput: [64, 56, 56]\n" + RESNET_BASIC_BLOCK, " " * 8) + """        layers:
          - repeat: 2
            name: layer1
            body: [{basic: {c: 64}}]
          - repeat: 2
            name: layer2
            body:
              - basic: {c: 128, stride: "${2 if i == 0 else 1}"}
          - adaptive_avgpool2d: {output: 1}
          - flatten
          - linear: {out: 1000}
    """,
    "graph": """
        archspec: 1
        input: [3, 28, 28]
        layers:
          - conv2d: {out: 8, kernel: 3, padding: same}
            name: stem
          - parallel:
              - [{conv2d: {out: 4, kernel: 1}}]
              - [{conv2d: {out: 4, kernel: 1}}, relu, {conv2d: {out: 8, kernel: 3, padding: 1}}]
              - name: pool
                body: [{maxpool2d: {kernel: 3, stride: 1, padding: 1}}]
          - conv2d: {out: 8, kernel: 1}
            from: stem
            name: side
          - add:
            from: [stem, side]
          - concat:
            from: [parallel1, add1]
            trainable: false
          - dropout: {p: 0.25}
          - flatten
          - linear: {out: 10}
    """,
}
BASES = {"vgg16": (ROOT / "specs" / "vgg16.yaml").read_text(encoding="utf-8"),
         **{name: textwrap.dedent(text).lstrip("\n") for name, text in SMALL.items()}}
BASE_DATA = {name: yaml.safe_load(text) for name, text in BASES.items()}

KEYWORDS = [
    "archspec", "name", "doc", "input", "params", "imports", "blocks", "layers", "body", "from", "trainable",
    "repeat", "index", "parallel", "merge", "residual", "shortcut", "type", "default", "out", "kernel",
    "stride", "padding", "dilation", "groups", "bias", "p", "output", "axis", "rounding", "conv2d", "relu",
    "linear", "flatten", "add", "concat", "maxpool2d", "batchnorm2d", "stage", "unit", "basic", "input",
    "c", "n", "i", "width", "classes", "metadata", "init", "freeze",
]
WORDS = KEYWORDS + [
    "$c", "$n", "$i", "$width", "$classes", "${c * 2}", "${2 if i == 0 else 1}", "${10 ** 10 ** 10}", "${1 / 0}",
    "$undefined", "${c.__class__}", "${", "$", "same", "valid", "full", "ceil", "floor", "int", "str", "float",
    "stem", "side", "pool", "parallel1", "add1", "block1", "layer1", "branch1", "down", "", " ", "1conv", "a.b",
]
scalars = st.one_of(
    st.integers(min_value=-3, max_value=300),
    st.sampled_from([0, -1, -7, 2 ** 31, 2 ** 62, 2 ** 63, 10 ** 30, -(10 ** 30), 10 ** 400, 1e308, -0.5, 0.5,
                     2.5, float("inf"), float("nan")]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYWORDS) | st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
keys = st.sampled_from(KEYWORDS) | st.text(min_size=1, max_size=8)


def containers(data, path=()):
    """Every list and mapping inside ``data`` with its path (the root included)."""
    if isinstance(data, (list, dict)):
        yield path, data
        children = data.items() if isinstance(data, dict) else enumerate(data)
        for key, child in children:
            yield from containers(child, path + (key,))


def mutate(data, draw) -> object:
    """One random structural mutation of ``data`` (a deep copy is mutated and returned)."""
    data = copy.deepcopy(data)
    spots = list(containers(data))
    if not spots:
        return draw(values)
    _, target = draw(st.sampled_from(spots))
    op = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "rename", "insert", "wrap", "root"]))
    if op == "root":
        return draw(values)
    if isinstance(target, list):
        if not target or op == "insert":
            target.insert(draw(st.integers(0, len(target))), draw(values))
            return data
        i = draw(st.integers(0, len(target) - 1))
        if op == "delete":
            del target[i]
        elif op == "duplicate":
            target.insert(i, copy.deepcopy(target[i]))
        elif op == "swap":
            j = draw(st.integers(0, len(target) - 1))
            target[i], target[j] = target[j], target[i]
        elif op == "wrap":
            target[i] = draw(st.sampled_from([[target[i]], {"body": [target[i]]}, {"repeat": 2, "body": [target[i]]},
                                              {"residual": [target[i]]}, {"parallel": [[target[i]], [target[i]]]}]))
        else:
            target[i] = draw(values)
        return data
    if not target or op == "insert":
        target[draw(keys)] = draw(values)
        return data
    key = draw(st.sampled_from(sorted(target, key=str)))
    if op == "delete":
        del target[key]
    elif op == "rename":
        new = draw(keys)
        target[new] = target.pop(key)
    elif op == "duplicate":
        target[draw(keys)] = copy.deepcopy(target[key])
    elif op == "wrap":
        target[key] = [target[key]]
    else:
        target[key] = draw(values)
    return data


def check_problems(problems) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, Problem), problem
        assert isinstance(problem.message, str) and problem.message
        assert problem.location is not None, problem
        assert problem.location.file, problem
        assert problem.location.line >= 1, problem
        assert problem.location.col >= 1, problem
        assert "Traceback" not in str(problem)


def check_text(text: str) -> list:
    """Load and validate ``text``; only located problems may come out."""
    try:
        spec = archspec.loads(text, "fuzz.yaml")
    except ArchspecError as exc:  # YAML and import problems stop loading: still located
        check_problems(exc.problems)
        assert exc.problems
        return exc.problems
    problems = archspec.validate(spec)
    check_problems(problems)
    return problems


@st.composite
def mutated_trees(draw) -> str:
    """A base spec's data, mutated 1 to 4 times, dumped back to YAML."""
    tree = BASE_DATA[draw(st.sampled_from(sorted(BASES)))]
    for _ in range(draw(st.integers(1, 4))):
        tree = mutate(tree, draw)
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)


@st.composite
def mutated_texts(draw) -> str:
    """A base spec's text, damaged 1 to 3 times."""
    text = BASES[draw(st.sampled_from(sorted(BASES)))]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "insert", "delete_line", "duplicate_line", "swap_lines",
                                   "replace_char"]))
        lines = text.splitlines(keepends=True)
        if op == "truncate":
            text = text[:draw(st.integers(0, len(text)))]
        elif op == "insert":
            at = draw(st.integers(0, len(text)))
            chunk = draw(st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\"#%@`$?~ \t\n\x00\x85é0123456789aZ"))
                                 | st.characters(), min_size=1, max_size=5))
            text = text[:at] + chunk + text[at:]
        elif op == "replace_char" and text:
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + draw(st.characters()) + text[at + 1:]
        elif lines:
            i = draw(st.integers(0, len(lines) - 1))
            if op == "delete_line":
                del lines[i]
            elif op == "duplicate_line":
                lines.insert(i, lines[i])
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


FUZZ = fuzz(300)


def test_the_bases_are_valid():
    for name, text in BASES.items():
        assert check_text(text) == [], name


@FUZZ
@given(text=mutated_trees())
@example(text="archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - " + "{residual: [" * 150 + "relu" + "]}" * 150)
@example(text="archspec: 1\ninput: [3, 8, 8]\nblocks:\n  b0:\n    body: [relu]\n"
              + "".join(f"  b{k}:\n    body: [b{k - 1}]\n" for k in range(1, 2000)) + "layers: [b1999]\n")
@example(text="archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: '${round(1, -10 ** 18)}', kernel: 1}\n")
@example(text="archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: '${(-8) ** 0.5}', kernel: 1}\n")
def test_mutated_specs_give_only_located_problems(text):
    check_text(text)


@FUZZ
@given(text=mutated_texts())
@example(text="archspec: 1\ninput: [3, 8, 8]\nlayers: [re\x00lu]\n")
@example(text="archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - " + "[" * 5000 + "]" * 5000 + "\n")
def test_mutated_text_gives_only_located_problems(text):
    check_text(text)


# ---------------------------------------------------------------- regressions the fuzzer (and its author) found


REGRESSIONS = {
    # a control character: PyYAML raised a ReaderError without a mark, reported without a line
    "control character": "archspec: 1\ninput: [3, 8, 8]\nlayers: [re\x00lu]\n",
    # deep nesting used to crash with RecursionError in the schema pass and in expansion
    "deep residuals": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - " + "{residual: [" * 150 + "relu" + "]}" * 150,
    "deep lists": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - " + "[" * 5000 + "]" * 5000 + "\n",
    # a chain of 2000 blocks each calling the next crashed with RecursionError
    "block chain": "archspec: 1\ninput: [3, 8, 8]\nblocks:\n  b0:\n    body: [relu]\n"
                   + "".join(f"  b{k}:\n    body: [b{k - 1}]\n" for k in range(1, 2000)) + "layers: [b1999]\n",
    # round(1, -10**18) computed 10**10**18 and never returned
    "round": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: '${round(1, -10 ** 18)}', kernel: 1}\n",
    # a complex number from a fractional power of a negative number
    "complex": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: '${(-8) ** 0.5}', kernel: 1}\n",
    # failing layers add no nodes, so 10,000 x 10,000 of them ran for minutes under the node limit
    "failing repeats": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - repeat: 10000\n    body:\n"
                       "      - repeat: 10000\n        body: [{conv2d: {out: 4, kernel: 50}}]\n",
    "empty item": "archspec: 1\ninput: [3, 8, 8]\nlayers: [{}]\n",
    "null layer args": "archspec: 1\ninput: [3, 8, 8]\nlayers: [{conv2d: }]\n",
    "date": "archspec: 1\ninput: [3, 8, 8]\nlayers: [relu]\nmetadata: {paper: 2015-04-10}\n",
    "two documents": "archspec: 1\n---\ninput: [3, 8, 8]\n",
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions(name):
    problems = check_text(REGRESSIONS[name])
    assert problems, name
