"""``archspec compile``: the generated forward reads like the spec, --seed, --save, --set, and
user mistakes exit with located messages and no traceback.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import archspec  # noqa: E402
from archspec.weights import load_weights, read_header  # noqa: E402

BROKEN = Path(__file__).resolve().parent / "broken"
LOCATED = re.compile(r"^\S+?(:\d+:\d+)?: error: ")
# `name = self.a.b(...)`, `name = getattr(self.a, "0").b(...)` or `getattr(getattr(self.a, "0").b, "0")(...)`:
# a call of a module of the spec
MODULE_CALL = re.compile(r"^    (\w+) = ((?:getattr\()*self[\w.\"(), -]*?)\((.*?)\)(;|$)")
GETATTR = re.compile(r'getattr\(([\w.-]+), "([\w-]+)"\)')  # "0", or torchvision's RegNet "block1-0"


def accessor_path(accessor: str) -> str:
    """``getattr(getattr(self.layer2, "0").downsample, "0")`` -> ``layer2.0.downsample.0``, innermost first."""
    while accessor.startswith("getattr("):
        accessor, found = GETATTR.subn(r"\1.\2", accessor, count=1)
        assert found, accessor
    assert accessor.startswith("self."), accessor
    return accessor[len("self."):]


def compile_code(invoke, *args) -> str:
    result = invoke("compile", *args, "--print-code")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.stdout.rstrip()  # (fx's code ends in a line of four spaces)


def test_print_code_resnet18_reads_like_the_spec(invoke):
    code = compile_code(invoke, "resnet18.yaml")
    lines = code.splitlines()
    assert lines[0] == "def forward(self, x):"
    assert "    conv1 = self.conv1(x);  x = None" in lines
    assert '    layer1_0_conv1 = getattr(self.layer1, "0").conv1(maxpool)' in lines
    assert any(line.startswith('    layer2_0_downsample_0 = getattr(getattr(self.layer2, "0").downsample, "0")(')
               for line in lines)
    assert any(re.match(r"    layer1_0_add1 = layer1_0_bn2 \+ maxpool\b", line) for line in lines)
    assert lines[-1].strip() == "return fc"
    # every module call is named after the module's path, so the code reads like the state_dict
    module = archspec.build("resnet18.yaml", seed=0)
    modules = dict(module.named_modules())
    calls = [MODULE_CALL.match(line) for line in lines]
    calls = [m for m in calls if m]
    assert len(calls) >= 60
    for m in calls:
        path = accessor_path(m.group(2))
        assert m.group(1) == path.replace(".", "_"), m.group(0)
        assert path in modules, path
    # the printed code is the module's own forward
    assert code.strip() == module.code.strip()


def test_print_code_vgg_and_mnist(invoke):
    vgg = compile_code(invoke, "vgg11.yaml").splitlines()
    assert "    block1_conv1 = self.block1.conv1(x);  x = None" in vgg
    assert "    block3_conv2 = self.block3.conv2(block3_relu1);  block3_relu1 = None" in vgg
    mnist = compile_code(invoke, "mnist_cnn.yaml").splitlines()
    assert "    flatten1 = torch.flatten(pool2, start_dim = 1);  pool2 = None" in mnist
    assert mnist[-1].strip() == "return softmax1"


def test_print_code_of_a_graph_spec(invoke, spec_file):
    path = spec_file("""
        archspec: 1
        name: two_paths
        input: [3, 8, 8]
        layers:
          - {conv2d: {out: 4, kernel: 3, padding: 1}, name: left}
          - {conv2d: {out: 4, kernel: 1}, name: right, from: input}
          - {add: {}, from: [left, right], name: total}
          - {concat: {}, from: [total, left], name: both}
        """)
    lines = compile_code(invoke, str(path)).splitlines()
    assert "    left = self.left(x)" in lines
    assert any(line.startswith("    right = self.right(x)") for line in lines)
    assert any(re.match(r"    total = .*\(?left, right\)?|    total = left \+ right", line) for line in lines)
    assert any(line.startswith("    both = torch.cat([total, left]") for line in lines)


def test_compile_without_print_code_prints_the_module(invoke):
    result = invoke("compile", "lenet5.yaml")
    assert result.exit_code == 0
    assert result.stdout.startswith("lenet5(")
    for name in ("(c1): Conv2d(1, 6, kernel_size=(5, 5)", "(s2): AvgPool2d", "(output): Linear(in_features=84, "
                 "out_features=10"):
        assert name in result.stdout


# ---------------------------------------------------------------- --seed, --save, --set

def saved(invoke, tmp_path, name, *args):
    path = tmp_path / name
    result = invoke("compile", *args, "--save", str(path))
    assert result.exit_code == 0, result.output
    assert f"saved {path}" in result.stderr
    from safetensors.torch import load_file

    return path, load_file(str(path))


def test_save_writes_safetensors_of_the_whole_state(invoke, tmp_path):
    path, state = saved(invoke, tmp_path, "r18.safetensors", "resnet18.yaml", "--seed", "0")
    assert path.read_bytes()[:8] != b"PK\x03\x04" and path.read_bytes()[:2] != b"\x80\x02"  # not a torch zip/pickle
    model = archspec.build("resnet18.yaml", seed=0)
    assert list(read_header(path)) and set(state) == set(model.state_dict())
    assert "layer1.0.bn1.running_var" in state and "layer2.0.downsample.0.weight" in state
    assert state["fc.weight"].shape == (1000, 512)
    fresh = archspec.build("resnet18.yaml", seed=1)
    load_weights(fresh, path)  # strict: every name and shape matches
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in fresh.state_dict().items())


def test_seed_makes_weights_reproducible(invoke, tmp_path):
    _, a = saved(invoke, tmp_path, "a.safetensors", "mnist_cnn.yaml", "--seed", "0")
    _, b = saved(invoke, tmp_path, "b.safetensors", "mnist_cnn.yaml", "--seed", "0")
    _, c = saved(invoke, tmp_path, "c.safetensors", "mnist_cnn.yaml", "--seed", "1")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    # the same weights as the Python API with the same seed
    api = archspec.build("mnist_cnn.yaml", seed=0).state_dict()
    assert all(torch.equal(a[k], api[k]) for k in a)


def test_without_seed_weights_differ(invoke, tmp_path):
    _, a = saved(invoke, tmp_path, "a.safetensors", "mnist_cnn.yaml")
    _, b = saved(invoke, tmp_path, "b.safetensors", "mnist_cnn.yaml")
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])


def test_set_overrides_a_parameter(invoke, tmp_path):
    _, state = saved(invoke, tmp_path, "m.safetensors", "mnist_cnn.yaml", "--set", "classes=3")
    assert state["fc2.weight"].shape == (3, 32) and state["fc2.bias"].shape == (3,)
    code = compile_code(invoke, "resnet18.yaml", "--set", "classes=7")
    assert "return fc" in code
    result = invoke("compile", "resnet18.yaml", "--set", "classes=7")
    assert "(fc): Linear(in_features=512, out_features=7, bias=True)" in result.stdout


def test_save_into_a_new_folder(invoke, tmp_path):
    path, state = saved(invoke, tmp_path, "deep/er/w.safetensors", "lenet5.yaml")
    assert path.exists() and "c1.weight" in state
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]


# ---------------------------------------------------------------- mistakes

def assert_clean_failure(result, code: int):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_broken_spec_is_located(invoke, spec_file, tmp_path):
    path = spec_file("""
        archspec: 1
        name: broken
        input: [3, 32, 32]
        layers:
          - conv2d: {out: 16, kernel: 3, strides: 2}
          - reul
          - conv2d: {out: 8, kernel: 3, weights: sobel_q}
        """)
    out = tmp_path / "w.safetensors"
    result = invoke("compile", str(path), "--save", str(out), "--print-code")
    assert_clean_failure(result, 1)
    lines = result.stderr.splitlines()
    assert all(line.startswith(f"{path}:") and ": error: " in line for line in lines), lines
    located = {int(line.split(":")[1]) for line in lines}
    assert {5, 6, 7} <= located
    assert "did you mean 'stride'" in result.stderr and "did you mean 'relu'" in result.stderr
    assert "did you mean 'sobel_" in result.stderr
    assert not out.exists()


def _states_an_error(path: Path) -> bool:
    """Whether a corpus file expects an error (some hold warnings only, and are valid specs)."""
    return any(line.startswith("# expect: ") and ": error: " in line
               for line in path.read_text(encoding="utf-8", errors="replace").splitlines())


@pytest.mark.parametrize("path", [p for p in sorted(BROKEN.glob("*.yaml")) if _states_an_error(p)],
                         ids=lambda p: p.stem)
def test_every_broken_spec_fails_cleanly(invoke, path):
    result = invoke("compile", str(path))
    assert_clean_failure(result, 1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(re.match(r"^\S+:\d+:\d+: (error|warning): ", line) for line in lines), lines
    assert any(LOCATED.match(line) for line in lines), lines


def test_unknown_spec_name(invoke):
    result = invoke("compile", "resnet19.yaml")
    assert_clean_failure(result, 1)
    assert "resnet19.yaml: error:" in result.stderr


def test_set_unknown_parameter_is_a_usage_error(invoke):
    result = invoke("compile", "mnist_cnn.yaml", "--set", "clases=3")
    assert_clean_failure(result, 2)
    assert "did you mean 'classes'" in result.stderr


@pytest.mark.parametrize("pair", ["classes=three", "classes", "=3"])
def test_set_malformed_is_a_usage_error(invoke, pair):
    result = invoke("compile", "mnist_cnn.yaml", "--set", pair)
    assert_clean_failure(result, 2)
    assert "error:" in result.stderr


def test_set_value_the_spec_refuses_is_located_in_the_spec(invoke):
    result = invoke("compile", "mnist_cnn.yaml", "--set", "classes=0")
    assert_clean_failure(result, 1)
    assert re.search(r"mnist_cnn\.yaml:\d+:\d+: error: .*expected an integer >= 1, found 0", result.stderr)


@pytest.mark.parametrize("args", [("--seed", "abc"), ("--save",), ("--bogus",)])
def test_bad_options_are_usage_errors(invoke, args):
    result = invoke("compile", "mnist_cnn.yaml", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_save_to_a_folder_is_refused(invoke, tmp_path):
    result = invoke("compile", "mnist_cnn.yaml", "--save", str(tmp_path))
    assert result.exit_code == 2
    assert "directory" in result.output
