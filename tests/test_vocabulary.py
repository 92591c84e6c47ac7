"""The language's vocabulary: merges come from the catalogue (a new merge is one entry and nothing
else), and the did-you-mean for an unknown layer type never offers a different layer as a fix
without saying what that layer computes."""
from __future__ import annotations

import textwrap

import pytest

import archspec
from archspec.layers import base
from archspec.layers.merge import Merge
from archspec.schema import build_schema
from archspec.vocabulary import merges, unknown_kind_hint


@pytest.fixture
def maximum_merge(monkeypatch):
    """A merge registered for one test only: one catalogue entry, no other edit (the schema
    validator, built once per process, is rebuilt around it)."""
    from archspec import schema

    monkeypatch.setattr(schema, "_VALIDATOR", None)
    class Maximum(Merge):
        name = "test_maximum"
        doc = "Element-wise maximum of inputs of equal shape."

        def output_shape(self, a, inputs):
            return inputs[0]

    base.register(Maximum)
    yield "test_maximum"
    del base.REGISTRY["test_maximum"]
    schema._VALIDATOR = None


def test_merges_are_the_catalogue_merge_family():
    assert merges() == ["add", "concat", "mul"]


def test_a_new_merge_entry_is_a_merge_of_parallel_everywhere(maximum_merge):
    assert maximum_merge in merges()
    assert maximum_merge in build_schema()["$defs"]["item_object"]["properties"]["merge"]["enum"]
    spec = archspec.loads(textwrap.dedent("""
        archspec: 1
        input: [4, 5, 5]
        layers:
          - parallel: [[relu], [sigmoid]]
            merge: test_maximum
        """).lstrip(), "s.yaml")
    g = archspec.expand(spec)
    assert [(n.path, n.type) for n in g.nodes][-1] == ("parallel1.test_maximum", "test_maximum")


@pytest.mark.parametrize("written, hint", [
    ("Conv2D", " (did you mean 'conv2d'?)"),  # the same word spelt another way: a plain fix
    ("max_pool2d", " (did you mean 'maxpool2d'?)"),
    ("ReLU6", " (did you mean 'relu6'?)"),
    ("Swish", " (did you mean 'swish'?)"),
    ("prelu", " (did you mean 'relu', which computes max(0, x)?)"),  # a different function: said so
    ("relu8", " (did you mean 'relu', which computes max(0, x)?)"),
    ("qwertyuiop", "; docs/layers.md lists every layer type"),
])
def test_did_you_mean_says_what_a_different_layer_computes(written, hint):
    assert unknown_kind_hint(written, blocks=[]) == hint


def test_relu6_is_a_layer_of_its_own():
    spec = archspec.loads("archspec: 1\ninput: [4]\nlayers: [relu6]\n", "s.yaml")
    assert archspec.validate(spec) == []
    assert archspec.expand(spec).nodes[0].type == "relu6"


def test_a_misspelt_block_is_suggested_plainly():
    assert unknown_kind_hint("bottlneck", blocks=["bottleneck"]) == " (did you mean 'bottleneck'?)"
