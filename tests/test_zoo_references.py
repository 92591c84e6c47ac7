"""Zoo specs against hand-written torch references: the same weights give the same outputs.

The references (tests/reference_nets.py) are plain torch modules written from the papers, with
torchvision's module names; tests/torchvision_facts.py --references checked them against
torchvision itself (identical outputs). Here a spec's compiled module and its reference load the
same random state_dict strictly and run the same input in eval mode, at a small size (the
networks end in a global pool, so any size that survives their strides will do).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec import zoo  # noqa: E402

from reference_nets import REFERENCES, random_state  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden" / "torchvision"
SPECCED = sorted(name for name in REFERENCES if name in zoo.names())


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_has_torchvisions_keys_and_shapes(name):
    facts = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    with torch.device("meta"):
        reference = REFERENCES[name]()
    ours = {key: list(t.shape) for key, t in reference.state_dict().items()}
    assert ours == {key: shape for key, shape in facts["state_dict"]}


def empty(make):
    """A module built on the meta device and given uninitialised CPU storage: no time spent on an
    initialisation that load_state_dict overwrites anyway."""
    with torch.device("meta"):
        module = make()
    return module.to_empty(device="cpu").eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECCED)
def test_spec_computes_what_the_reference_computes(name):
    reference = empty(REFERENCES[name])
    state = random_state(reference)
    model = empty(lambda: archspec.build(name))
    model.load_state_dict(state, strict=True)
    reference.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert ours.shape == theirs.shape == (2, 1000)
    assert theirs.abs().max() > 0.1  # the weights keep the signal alive to the end
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
