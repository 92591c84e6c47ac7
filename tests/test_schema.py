"""The JSON Schema of the spec language: the committed file is the generated one, it is a valid
2020-12 schema, every bundled spec passes it with plain jsonschema, and wrong documents do not."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from archspec.layers import ALIASES, REGISTRY
from archspec.schema import build_schema, schema_json

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schemas" / "archspec.schema.json"
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))


def test_committed_schema_is_the_generated_one():
    assert COMMITTED.read_text(encoding="utf-8") == schema_json(), (
        "schemas/archspec.schema.json is out of date with the layer catalogue; regenerate it with\n"
        "    archspec schema -o schemas/archspec.schema.json")


def test_schema_is_valid_2020_12():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    Draft202012Validator.check_schema(build_schema())


def test_every_layer_type_and_alias_is_in_the_schema():
    schema = build_schema()
    items = schema["$defs"]["item_object"]["properties"]
    for name in REGISTRY:
        assert f"layer.{name}" in schema["$defs"]
        assert items[name] == {"$ref": f"#/$defs/layer.{name}"}
    for alias, target in ALIASES.items():
        assert items[alias] == {"$ref": f"#/$defs/layer.{target}"}


@pytest.fixture(scope="module")
def validator():
    return Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))


def test_there_are_specs():
    assert ROOT / "specs" / "vgg16.yaml" in SPECS


@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_bundled_spec_validates_with_plain_jsonschema(validator, path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, "\n".join(errors)


VALID = {
    "archspec": 1,
    "name": "ok",
    "input": [3, 32, 32],
    "params": {"classes": 10},
    "layers": [
        {"conv2d": {"out": 8, "kernel": 3, "padding": "same"}},
        "relu",
        {"maxpool2d": {"kernel": 2}},
        {"conv": {"out": "$classes", "kernel": [1, 1], "padding": [0, 0, 0, 0]}},
        "global_avgpool",
    ],
}


def with_layers(*layers):
    return {**VALID, "layers": list(layers)}


def test_a_valid_document(validator):
    validator.validate(VALID)


@pytest.mark.parametrize("doc", [
    pytest.param({k: v for k, v in VALID.items() if k != "archspec"}, id="no archspec key"),
    pytest.param({**VALID, "archspec": 2}, id="wrong language version"),
    pytest.param({**VALID, "inputs": [3, 32, 32]}, id="unknown top-level key"),
    pytest.param({k: v for k, v in VALID.items() if k != "input"}, id="layers without input"),
    pytest.param(with_layers({"conv2d": {"kernel": 3}}), id="conv2d without out"),
    pytest.param(with_layers({"conv2d": {"out": 8, "kernel": 0}}), id="kernel 0"),
    pytest.param(with_layers({"conv2d": {"out": 8, "kernel": 3, "padding": "sam"}}), id="padding mode typo"),
    pytest.param(with_layers({"conv2d": {"out": 8, "kernel": [3, 3, 3]}}), id="kernel of three"),
    pytest.param(with_layers({"conv2d": {"out": 8, "kernel": 3, "padding": [1, 1, 1]}}), id="padding of three"),
    pytest.param(with_layers({"conv2d": {"out": 8, "kernel": 3, "strides": 2}}), id="unknown argument"),
    pytest.param(with_layers({"dropout": {"p": 1.5}}), id="dropout p over 1"),
    pytest.param(with_layers({"maxpool2d": {"kernel": 2, "rounding": "up"}}), id="rounding"),
    pytest.param(with_layers(), id="empty layers"),
    pytest.param({**VALID, "input": []}, id="empty input"),
    pytest.param({**VALID, "input": [3, 0, 32]}, id="zero dimension"),
    pytest.param(with_layers({"linear": {"out": 10}, "from": 3.5}), id="from not a name"),
    pytest.param({**VALID, "blocks": {"b": {"params": {"c": "int"}}}}, id="block without body"),
    pytest.param(with_layers({"repeat": 2}), id="repeat without body"),
])
def test_invalid_documents_are_rejected(validator, doc):
    assert list(validator.iter_errors(doc)), "accepted an invalid document"
