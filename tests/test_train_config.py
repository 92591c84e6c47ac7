"""Training options: defaults, precedence, and located messages for mistakes in YAML."""
from __future__ import annotations

import dataclasses

import pytest

from archspec import api
from archspec.errors import Location, SpecError, UsageError
from archspec.train.config import TrainConfig, check_options, resolve, train_schema
from archspec.train.options_file import read_options_file


def test_schema_covers_every_option():
    assert set(train_schema()["properties"]) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_defaults_follow_the_seeds():
    config = resolve(None, None, None)
    assert config.split == [0.7, 0.15, 0.15]
    assert config.data is None and config.optimizer == "adam" and config.early_stopping is None


def test_later_sources_win():
    config = resolve({"epochs": 3, "lr": 0.1, "augment": {"rotation": 5}},
                     {"epochs": 4, "augment": {"mirror": True}}, {"epochs": 7, "lr": None})
    assert config.epochs == 7  # command line over file over spec
    assert config.lr == 0.1  # an option the command line leaves unset keeps the spec's
    assert config.augment == {"rotation": 5, "mirror": True}  # augment options merge key by key


def test_nested_options_become_dataclasses():
    config = resolve({"early_stopping": {"patience": 2}, "freeze": "c1",
                      "unfreeze": [{"epoch": 3, "layers": "c*", "lr_factor": 0.1}]}, None, None)
    assert config.early_stopping.patience == 2 and config.early_stopping.metric == "val_loss"
    assert config.freeze == ["c1"]
    assert config.unfreeze[0].layers == ["c*"] and config.unfreeze[0].lr_factor == 0.1


def test_split_must_add_up():
    with pytest.raises(UsageError, match="add up to 1"):
        resolve({"split": [0.5, 0.2, 0.2]}, None, None)


def test_spec_train_section_errors_are_located(spec_file):
    path = spec_file("""
        archspec: 1
        input: [1, 8, 8]
        layers: [flatten, {dense: {out: 10}}]
        train:
          epochs: ten
          optimiser: adam
          augment: {rotation: 400}
    """)
    messages = [str(p) for p in api.validate(str(path))]
    assert any(":5:11: error: expected an integer, found string 'ten'" in m for m in messages), messages
    assert any(":6:3: error: unknown key 'optimiser' in train" in m and "did you mean 'optimizer'" in m
               for m in messages), messages
    assert any(":7:23: error: rotation: expected an integer <= 180, found 400" in m for m in messages), messages


def test_options_file_errors_are_located(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 3\nschedule: linear\nbatch_size: auto\n")
    with pytest.raises(SpecError) as caught:
        read_options_file(path)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:2:11: error: schedule: expected none or step or cosine or onecycle")
    path.write_text("epochs: 3\nbatch_size: auto\n")
    assert read_options_file(path) == {"epochs": 3, "batch_size": "auto"}


def test_api_options_are_checked():
    from archspec.errors import Location

    with pytest.raises(UsageError, match="lr"):
        check_options({"lr": -1}, Location("options"))
    check_options({"lr": 0.1, "device": "cuda:1"}, Location("options"))


def test_one_definition_gives_schema_flags_and_docs():
    from pathlib import Path

    from archspec.train.config import flag_specs, markdown_table

    schema = train_schema()["properties"]
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"] and schema[f.name]["description"] == f.metadata["help"]
    flags = [spec.flag for spec in flag_specs()]
    assert len(flags) == len(set(flags))
    assert {"--augment-rotation", "--early-stopping-patience", "--weight-decay", "--label-smoothing",
            "--checkpoint-every", "--keep-last", "--log"} <= set(flags)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, "docs/training.md's options table differs from config.markdown_table()"


def test_flags_become_nested_options():
    from archspec.train.config import options_from_flags

    options = options_from_flags({"epochs": 3, "augment__mirror": True, "early_stopping__patience": 2,
                                  "freeze": ("c1",), "log": ()})
    assert options == {"epochs": 3, "augment": {"mirror": True}, "early_stopping": {"patience": 2},
                       "freeze": ["c1"]}
    config = resolve({"early_stopping": {"metric": "val_acc"}}, None, options)
    assert config.early_stopping.metric == "val_acc" and config.early_stopping.patience == 2  # merged key by key


@pytest.mark.parametrize("name, value", [("lr", float("nan")), ("weight_decay", float("inf"))])
def test_non_finite_numbers_are_refused(name, value):
    with pytest.raises(UsageError) as info:
        check_options({name: value}, Location("options"))
    assert f"{name}: expected a finite number, found {value}" in str(info.value)
