"""The one validator behind specs, training sections, options files and API options: a number must be
finite (JSON Schema's bounds let NaN and infinity through), and says so once, at its place."""
from __future__ import annotations

import pytest

from archspec.errors import Location, SpecError, UsageError
from archspec.loader import read_document
from archspec.schema import check_document
from archspec.train.config import check_options, train_schema
from archspec.train.options_file import read_options_file
from archspec.validator import validator

SPEC = """archspec: 1
input: [1, 8, 8]
layers:
  - dropout: {p: .nan}
  - flatten
  - linear: {out: 2}
train:
  lr: .nan
  momentum: -.inf
  batch_size: .inf
  augment: {rotation: .inf}
"""


def test_the_validator_refuses_non_finite_numbers_once():
    schema = {"type": "object", "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1}}}
    for value in (float("nan"), float("inf"), float("-inf")):
        errors = list(validator(schema).iter_errors({"x": value}))
        assert [e.message for e in errors] == [f"expected a finite number, found {value}"]
    assert not list(validator(schema).iter_errors({"x": 0.5}))
    assert [e.validator for e in validator(schema).iter_errors({"x": 2})] == ["maximum"]  # the bounds still hold


def test_spec_numbers_are_refused_at_their_place(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    problems = check_document(read_document(path))
    assert [(p.location.line, p.location.col, p.message) for p in problems] == [
        (4, 18, "dropout.p: expected a finite number, found nan"),
        (8, 7, "lr: expected a finite number, found nan"),
        (9, 13, "momentum: expected a finite number, found -inf"),
        (10, 15, "batch_size: expected a finite number, found inf"),  # integer or auto: not "expected auto"
        (11, 23, "rotation: expected a finite number, found inf"),
    ]


def test_options_files_use_the_same_check(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 2\nlr: .inf\n")
    with pytest.raises(SpecError) as info:
        read_options_file(path)
    assert [str(p) for p in info.value.problems] == [f"{path}:2:5: error: lr: expected a finite number, found inf"]


def test_api_and_command_line_options_use_the_same_check():
    # top-level options are in tests/test_train_config.py; a nested one is found too
    with pytest.raises(UsageError) as info:
        check_options({"augment": {"noise": float("-inf")}}, Location("options"))
    assert info.value.problem.message == "augment.noise: expected a finite number, found -inf"


def test_every_number_of_the_training_schema_is_checked():
    numbers = [k for k, s in train_schema()["properties"].items() if s.get("type") in ("number", "integer")]
    assert {"lr", "momentum", "weight_decay"} <= set(numbers)
    for key in numbers:
        assert list(validator(train_schema()).iter_errors({key: float("nan")})), key


def test_a_document_holding_nan_is_never_remembered_as_valid():
    from archspec import validity

    assert validity.digest("{}", {"train": {"lr": 0.1}}) is not None
    assert validity.digest("{}", {"train": {"lr": float("nan")}}) is None  # checked on every run
