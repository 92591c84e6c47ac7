"""The JSON Schema validator behind every check of options and specs: Draft 2020-12, except that a
number must be finite.

JSON has no NaN or infinity, so the standard's bounds let them through (``nan > 0`` is false), yet
YAML writes both (``.nan``, ``.inf``, ``1e999``) and Python callers and command lines pass floats.
One validator class refuses them wherever a schema asks for a number: a spec's layer arguments, its
``train:`` section, a ``--config`` file and the options of the API and of the command line alike.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

FINITE_MESSAGE = "expected a finite number"
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _types(types) -> list:
    return [types] if isinstance(types, str) else list(types)


@lru_cache(maxsize=None)
def _validator_class():
    from jsonschema import Draft202012Validator, ValidationError, validators

    draft_type = Draft202012Validator.VALIDATORS["type"]

    def finite_type(validator, types, instance, schema):
        if is_non_finite(instance) and {"number", "integer"} & set(_types(types)):
            yield ValidationError(f"{FINITE_MESSAGE}, found {instance}")
            return
        yield from draft_type(validator, types, instance, schema)

    def unless_non_finite(keyword):  # a bound says nothing more about inf: one message, the type's
        bound = Draft202012Validator.VALIDATORS[keyword]
        return lambda validator, value, instance, schema: (
            () if is_non_finite(instance) else bound(validator, value, instance, schema))

    checks = {"type": finite_type, **{k: unless_non_finite(k) for k in BOUNDS}}
    return validators.extend(Draft202012Validator, validators=checks)


def validator(schema: dict):
    """A validator for ``schema`` (its ``iter_errors`` finds every problem, each a jsonschema error)."""
    return _validator_class()(schema)
