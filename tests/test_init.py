"""Weight initialisation schemes (archspec.init): spec-wide ``init:``, per item, seeds, errors.

Expected statistics come from the schemes' formulas (He, Glorot), not from archspec.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec.init import SCHEMES  # noqa: E402

# a conv with fan_in 64*3*3 = 576 and fan_out 128*3*3 = 1152 (73,728 weights), a batch norm,
# and a linear layer 128*4*4 = 2048 -> 256 (524,288 weights): big enough for tight statistics
NET = """
    archspec: 1
    name: net
    input: [64, 4, 4]
    {init}
    layers:
      - {{conv2d: {{out: 128, kernel: 3, padding: 1}}, name: conv{item}}}
      - {{batchnorm2d: {{}}, name: bn}}
      - {{relu: {{}}, name: act}}
      - flatten
      - {{linear: {{out: 256}}, name: fc}}
    """
CONV_FAN_IN, CONV_FAN_OUT = 64 * 9, 128 * 9
FC_FAN_IN, FC_FAN_OUT = 2048, 256


def net(spec_file, init: str = "", item: str = ""):
    spec_init = f"init: {init}" if init else ""
    item_init = f", init: {item}" if item else ""
    return spec_file(NET.format(init=spec_init, item=item_init))


def expected_std(name: str, args: dict, fan_in: int, fan_out: int) -> float | None:
    """The standard deviation a scheme promises, by formula (None: no single figure)."""
    gains = {"relu": math.sqrt(2), "leaky_relu": math.sqrt(2 / (1 + 0.01 ** 2)), "linear": 1, "sigmoid": 1,
             "tanh": 5 / 3}
    if name in ("kaiming", "kaiming_uniform"):
        fan = fan_in if args.get("mode", "fan_in") == "fan_in" else fan_out
        return gains[args.get("nonlinearity", "relu")] / math.sqrt(fan)
    if name in ("xavier", "xavier_normal"):
        return args.get("gain", 1.0) * math.sqrt(2 / (fan_in + fan_out))
    if name == "normal":
        return args.get("std", 0.01)
    if name == "uniform":
        return (args.get("high", 0.05) - args.get("low", -0.05)) / math.sqrt(12)
    if name == "default":  # kaiming_uniform(a = sqrt(5)): bound 1/sqrt(fan_in)
        return 1 / math.sqrt(3 * fan_in)
    return 0.0 if name == "zeros" else None


# the documented defaults of the schemes with arguments
DEFAULTS = {"normal": {"mean": 0.0, "std": 0.01}, "uniform": {"low": -0.05, "high": 0.05}, "constant": {"value": 0.0},
            "kaiming": {"mode": "fan_in", "nonlinearity": "relu"}, "xavier": {"gain": 1.0}}


def check_layer(weight, name: str, args: dict, fan_in: int, fan_out: int) -> None:
    args = {**DEFAULTS.get(name, {}), **args}
    w = weight.detach().double()
    if name == "zeros":
        assert (w == 0).all()
        return
    if name == "constant":
        assert (w == args.get("value", 0.0)).all()
        return
    std = expected_std(name, args, fan_in, fan_out)
    assert w.std().item() == pytest.approx(std, rel=0.03), name
    mean = args["mean"] if name == "normal" else (args["low"] + args["high"]) / 2 if name == "uniform" else 0.0
    assert abs(w.mean().item() - mean) < 0.05 * std
    if name in ("xavier", "kaiming_uniform", "uniform", "default"):
        bound = math.sqrt(3) * std
        low, high = (args["low"], args["high"]) if name == "uniform" else (-bound, bound)
        assert w.min().item() >= low - 1e-7 and w.max().item() <= high + 1e-7
        # the whole interval is used
        assert w.min().item() < low + 0.01 * (high - low) and w.max().item() > high - 0.01 * (high - low)


def assert_bn_untouched(module):
    assert (module.bn.weight == 1).all() and (module.bn.bias == 0).all()
    assert (module.bn.running_mean == 0).all() and (module.bn.running_var == 1).all()


CASES = [
    ("default", {}),
    ("kaiming", {}),
    ("kaiming", {"mode": "fan_out"}),
    ("kaiming", {"nonlinearity": "tanh"}),
    ("kaiming_uniform", {}),
    ("xavier", {}),
    ("xavier", {"gain": 2.0}),
    ("xavier_normal", {}),
    ("normal", {}),
    ("normal", {"mean": 0.5, "std": 0.02}),
    ("uniform", {}),
    ("uniform", {"low": 0.0, "high": 0.3}),
    ("zeros", {}),
    ("constant", {}),
    ("constant", {"value": 0.25}),
]


def test_every_scheme_is_covered():
    assert {name for name, _ in CASES} == set(SCHEMES)


def as_yaml(name: str, args: dict) -> str:
    if not args:
        return name
    inner = ", ".join(f"{k}: {v}" for k, v in args.items())
    return f"{{{name}: {{{inner}}}}}"


@pytest.mark.parametrize("name, args", CASES, ids=[as_yaml(n, a) for n, a in CASES])
def test_scheme_spec_wide(spec_file, name, args):
    module = archspec.build(net(spec_file, init=as_yaml(name, args)), seed=0)
    check_layer(module.conv.weight, name, args, CONV_FAN_IN, CONV_FAN_OUT)
    check_layer(module.fc.weight, name, args, FC_FAN_IN, FC_FAN_OUT)
    if name == "default":  # torch's own initialisation keeps its biases (uniform in +-1/sqrt(fan_in))
        assert (module.conv.bias != 0).any()
        assert module.conv.bias.abs().max().item() <= 1 / math.sqrt(CONV_FAN_IN) + 1e-7
    else:
        assert (module.conv.bias == 0).all() and (module.fc.bias == 0).all()
    assert_bn_untouched(module)


@pytest.mark.parametrize("name, args", CASES, ids=[as_yaml(n, a) for n, a in CASES])
def test_scheme_per_item(spec_file, name, args):
    module = archspec.build(net(spec_file, item=as_yaml(name, args)), seed=0)
    check_layer(module.conv.weight, name, args, CONV_FAN_IN, CONV_FAN_OUT)
    if name != "default":
        assert (module.conv.bias == 0).all()
    # the other layers keep torch's default
    check_layer(module.fc.weight, "default", {}, FC_FAN_IN, FC_FAN_OUT)
    assert (module.fc.bias != 0).any()
    assert_bn_untouched(module)


def test_item_init_overrides_spec_init(spec_file):
    module = archspec.build(net(spec_file, init="zeros", item="{constant: {value: 3}}"), seed=0)
    assert (module.conv.weight == 3).all()
    assert (module.fc.weight == 0).all()


def test_init_on_a_block_call_reaches_every_layer_inside(spec_file):
    path = spec_file("""
        archspec: 1
        name: blocky
        input: [3, 8, 8]
        blocks:
          pair:
            params: {c: int}
            body:
              - conv2d: {out: $c, kernel: 3, padding: 1}
              - relu
              - conv2d: {out: $c, kernel: 3, padding: 1}
        layers:
          - {pair: {c: 4}, name: first, init: {constant: {value: 0.5}}}
          - {pair: {c: 4}, name: second}
        """)
    module = archspec.build(path, seed=0)
    assert (module.first.conv1.weight == 0.5).all() and (module.first.conv2.weight == 0.5).all()
    assert (module.first.conv1.bias == 0).all()
    assert not (module.second.conv1.weight == 0.5).all()
    assert (module.second.conv1.bias != 0).any()


def test_init_on_repeat_and_residual(spec_file):
    path = spec_file("""
        archspec: 1
        name: res
        input: [4, 8, 8]
        layers:
          - repeat: 2
            name: stack
            init: zeros
            body:
              - residual:
                  - conv2d: {out: 4, kernel: 3, padding: 1}
                  - batchnorm2d
          - {conv2d: {out: 2, kernel: 1}, name: head}
        """)
    module = archspec.build(path, seed=0)
    convs = [m for n, m in module.named_modules() if isinstance(m, torch.nn.Conv2d) and n.startswith("stack")]
    assert len(convs) == 2 and all((c.weight == 0).all() for c in convs)
    assert (module.head.weight != 0).any()


# ---------------------------------------------------------------- seeds

def test_seeded_builds_are_reproducible(spec_file):
    path = net(spec_file, init="kaiming")
    a = archspec.build(path, seed=0).state_dict()
    b = archspec.build(path, seed=0).state_dict()
    c = archspec.build(path, seed=1).state_dict()
    assert list(a) == list(b) == list(c)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv.weight"], c["conv.weight"])
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_seeded_default_init_is_reproducible_on_a_zoo_spec():
    a = archspec.build("mnist_cnn.yaml", seed=7).state_dict()
    b = archspec.build("mnist_cnn.yaml", seed=7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_seeded_build_leaves_global_rng_alone(spec_file):
    path = net(spec_file, init="normal")
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    expected_next = torch.rand(5)
    torch.set_rng_state(state)
    archspec.build(path, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(5), expected_next)


def test_seed_does_not_depend_on_global_rng(spec_file):
    path = net(spec_file)
    torch.manual_seed(1)
    a = archspec.build(path, seed=5).state_dict()
    torch.manual_seed(2)
    torch.rand(100)
    b = archspec.build(path, seed=5).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- errors

def _located(problems, line):
    return [p for p in problems if p.location is not None and p.location.line == line]


@pytest.mark.parametrize("where", ["spec", "item"])
@pytest.mark.parametrize("init, words", [
    ("kaimnig", ["kaimnig", "did you mean 'kaiming'"]),
    ("{xavir: {gain: 2}}", ["xavir", "did you mean 'xavier'"]),
    ("{normal: {sd: 0.1}}", ["sd", "did you mean 'std'"]),
    ("{kaiming: {mode: fan_inn}}", ["fan_inn"]),
    ("{constant: {value: big}}", ["big"]),
])
def test_bad_init_is_located_with_a_hint(spec_file, where, init, words):
    if where == "spec":
        path, line = net(spec_file, init=init), 4
    else:
        path, line = net(spec_file, item=init), 6
    problems = archspec.validate(path)
    assert problems, init
    assert all(p.location is not None and p.location.file == str(path) for p in problems)
    here = _located(problems, line)
    assert here, [str(p) for p in problems]
    for word in words:
        assert any(word in p.message for p in here), (word, [str(p) for p in problems])
    with pytest.raises(archspec.SpecError):
        archspec.build(path)


def test_bad_init_reported_beside_other_mistakes(spec_file):
    path = spec_file("""
        archspec: 1
        name: net
        input: [3, 8, 8]
        layers:
          - {conv2d: {out: 4, kernel: 3}, init: zeroes}
          - {conv2d: {out: 4, kernel: 3, strid: 2}}
        """)
    problems = archspec.validate(path)
    lines = {p.location.line for p in problems}
    assert {5, 6} <= lines
    assert any("did you mean 'zeros'" in p.message for p in problems)


def test_cli_reports_bad_init_without_traceback(spec_file, invoke):
    path = net(spec_file, init="kaimnig")
    result = invoke("compile", str(path))
    assert result.exit_code == 1
    assert f"{path}:4:" in result.stderr
    assert "did you mean 'kaiming'" in result.stderr
    assert "Traceback" not in result.output
