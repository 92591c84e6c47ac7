"""archspec train / evaluate / predict on the command line: output, exit codes, messages."""
from __future__ import annotations

import pytest

from shared_specs import TINY_DIGITS

TINY = TINY_DIGITS + """
train:
  epochs: 2
  batch_size: 128
  lr: 0.01
  workers: 0
"""


@pytest.fixture
def tiny(spec_file):
    return str(spec_file(TINY, "tiny.yaml"))


def test_train_prints_a_line_per_epoch_off_a_terminal(invoke, tiny, tmp_path):
    result = invoke("train", tiny, "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert any(line.startswith("test: accuracy ") for line in lines)
    assert lines[-1] == f"wrote {tmp_path / 'run'}"
    assert "\x1b" not in result.stdout  # no control characters in a log


def test_options_file_and_command_line(invoke, tiny, tmp_path):
    options = tmp_path / "opts.yaml"
    options.write_text("epochs: 3\noptimizer: sgd\n")
    result = invoke("train", tiny, "--config", str(options), "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "epochs: 1" in config and "optimizer: sgd" in config


def test_bad_options_file_is_located(invoke, tiny, tmp_path):
    options = tmp_path / "opts.yaml"
    options.write_text("epochs: 3\nlearning_rate: 0.1\n")
    result = invoke("train", tiny, "--config", str(options))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{options}:2:1: error: unknown key 'learning_rate'")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_data_source(invoke, tiny, tmp_path):
    result = invoke("train", tiny, "--data", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1 and "missing.csv" in result.stderr and "Traceback" not in result.output


def test_bad_command_line(invoke, tiny):
    assert invoke("train", tiny, "--batch-size", "huge").exit_code == 2
    assert invoke("train").exit_code == 2
    result = invoke("train", tiny, "--freeze", "nothing_like_this")
    assert result.exit_code == 2 and "'nothing_like_this' matches no layer" in result.stderr


def test_evaluate_and_predict(invoke, tiny, tmp_path):
    from PIL import Image

    assert invoke("train", tiny, "--out", str(tmp_path / "run")).exit_code == 0
    result = invoke("evaluate", tiny, "--weights", str(tmp_path / "run"))
    assert result.exit_code == 0 and result.stdout.startswith("270 images  accuracy ")
    assert len(result.stdout.splitlines()) == 11  # the totals and one line per class
    image = tmp_path / "x.png"
    Image.new("L", (8, 8), 128).save(image)
    result = invoke("predict", tiny, str(image), "--weights", str(tmp_path / "run" / "best.safetensors"), "--top", "3")
    assert result.exit_code == 0 and result.stdout.startswith(f"{image}: ") and result.stdout.count("%") == 3


def test_predict_unreadable_image(invoke, tiny, tmp_path):
    assert invoke("train", tiny, "--out", str(tmp_path / "run"), "--epochs", "1").exit_code == 0
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    result = invoke("predict", tiny, str(bad), "--weights", str(tmp_path / "run"))
    assert result.exit_code == 1 and "bad.png" in result.stderr and "Traceback" not in result.output


def test_weights_folder_without_weights(invoke, tiny, tmp_path):
    result = invoke("evaluate", tiny, "--weights", str(tmp_path))
    assert result.exit_code == 2 and "has no best.safetensors or last.safetensors" in result.stderr


def test_every_option_a_person_changes_has_a_flag(invoke, tiny, tmp_path):
    import yaml

    result = invoke("train", tiny, "--epochs", "1", "--out", str(tmp_path / "run"), "--augment-rotation", "10",
                    "--augment-mirror", "--early-stopping-patience", "3", "--early-stopping-metric", "val_acc",
                    "--weight-decay", "0.0005", "--label-smoothing", "0.1", "--checkpoint-every", "1",
                    "--keep-last", "2", "--split", "0.8,0.1,0.1", "--channels-last", "off", "--workers", "auto")
    assert result.exit_code == 0, result.output
    train = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]
    assert train["augment"] == {"rotation": 10.0, "mirror": True}
    assert train["early_stopping"] == {"metric": "val_acc", "patience": 3, "min_delta": 0.0}
    assert (train["weight_decay"], train["label_smoothing"], train["checkpoint_every"], train["keep_last"]) == \
        (0.0005, 0.1, 1, 2)
    assert train["split"] == [0.8, 0.1, 0.1] and train["channels_last"] is False
    assert (tmp_path / "run" / "epoch-1.safetensors").exists()


def test_flags_are_derived_from_the_config(invoke):
    import dataclasses

    from archspec.train.config import TrainConfig, flag_specs

    help_text = invoke("train", "--help").stdout
    for spec in flag_specs():
        assert spec.flag in help_text
    flagged = {spec.path[0] for spec in flag_specs()}
    unflagged = {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata["flag"]}
    assert flagged | unflagged == {f.name for f in dataclasses.fields(TrainConfig)}
    assert invoke("train", "x.yaml", "--label-smoothing", "1").exit_code == 2  # bounds come from the schema
    assert invoke("train", "x.yaml", "--log", "wandb").exit_code == 2
