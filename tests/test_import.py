"""archspec import from PyTorch (``archspec.importer``): every zoo spec, built and imported back,
gives a spec with the same parameters, MACs, state_dict keys and outputs, written with its
repetition found; unsupported layers are all reported, located, and nothing is written.
"""
from __future__ import annotations

import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec import zoo  # noqa: E402
from archspec.errors import SpecError  # noqa: E402
from archspec.importer import import_model  # noqa: E402
from archspec.importer.text import items as item_lines  # noqa: E402

from shared_specs import zoo_representatives  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HEADER_LINES = 8  # schema line, archspec, name, doc (2 lines), source, input, "layers:"
# the big ones build and run large models twice: more than a few seconds on 2 cores
SLOW = {"alexnet", "vgg11", "vgg16", "vgg19", "vgg16_bn", "resnet34", "resnet50", "resnet101", "resnet152",
        "googlenet", "resnext50_32x4d", "wide_resnet50_2"}


# The importer has no readers yet for the newest catalogue entries these networks use (relu6,
# hardswish, silu, gelu, layernorm2d, layer_scale, drop_path, mul, chunk, channel_shuffle): their
# imports are refused with the list of what is missing. strict: a reader that lands flips them.
NO_READER_YET = {"convnext_tiny", "mnasnet1_0", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                 "shufflenet_v2_x1_0", *(f"efficientnet_b{k}" for k in range(8)), "regnet_y_400mf"}
# A residual whose main path is a block of its own (RegNet's f beside proj): the importer reads the
# block as giving two values. strict: an importer that reads it flips them.
BLOCK_AS_MAIN_PATH = {"regnet_x_400mf"}


def zoo_params(names):
    params = []
    for n in names:
        marks = [pytest.mark.slow] if n in SLOW else []
        if n in NO_READER_YET:
            marks.append(pytest.mark.xfail(reason="no importer reader yet for its newest layer types",
                                           raises=archspec.ArchspecError, strict=True))
        if n in BLOCK_AS_MAIN_PATH:
            marks.append(pytest.mark.xfail(reason="the importer reads a residual's block main path as two values",
                                           raises=archspec.ArchspecError, strict=True))
        params.append(pytest.param(n, marks=marks))
    return params


def round_trip(name: str):
    original = archspec.build(name, seed=0).train(False)
    graph = archspec.expand(name)
    imported = import_model(original, name=name, input=graph.input_shape)
    spec = archspec.loads(imported.text, f"{name}.yaml")
    rebuilt = archspec.build(spec, seed=1).train(False)
    rebuilt.load_state_dict({k: torch.from_numpy(v) for k, v in imported.tensors.items()}, strict=True)
    return original, graph, imported, spec, rebuilt


def line_bound(graph, spec) -> float:
    """The zoo spec's expanded form (one line per layer) divided by the repeats it contains, plus the
    header and the lines the zoo spec itself spends defining the blocks it uses."""
    repeats = max(1, sum(1 for g in graph.groups.values() if g.kind == "repeat"))
    used = {g.label for g in graph.groups.values() if g.kind == "block"}
    block_lines = sum(3 + len(item_lines(spec.blocks[b].definition["body"], 6)) for b in used if b in spec.blocks)
    return HEADER_LINES + len(graph.nodes) / repeats + block_lines


# one member per family (shared_specs.ZOO_SIBLINGS): DenseNet-201 runs the code DenseNet-121 does, in 23 s
@pytest.mark.parametrize("name", zoo_params(zoo_representatives(zoo.names())))
def test_zoo_round_trip(name):
    original, graph, imported, spec, rebuilt = round_trip(name)
    assert list(rebuilt.state_dict()) == list(original.state_dict())
    before, after = archspec.summarize(name), archspec.summarize(spec)
    assert after.totals.params == before.totals.params
    assert after.totals.macs == before.totals.macs
    # the big networks end in adaptive pooling, so a small image checks every weight at a fraction of the cost
    shape = (3, 64, 64) if name in SLOW else graph.input_shape
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), original(x), rtol=1e-5, atol=1e-5)
    lines = imported.text.count("\n")
    assert lines <= line_bound(graph, archspec.load(name)), imported.text


@pytest.mark.slow
def test_resnet50_is_a_few_dozen_lines():
    imported = import_model(archspec.build("resnet50.yaml"), name="resnet50")
    text = imported.text
    assert text.count("\n") <= 48, text
    assert "residual:" in text and "shortcut:" in text
    assert 'stride: "${2 if i == 0 else 1}"' in text  # the first copy of a stage carries the stride
    assert "${c * 4}" in text  # the bottleneck's expansion, found as a multiple of its width


def test_text_starts_with_schema_doc_and_source():
    text = import_model(archspec.build("lenet5.yaml"), name="lenet5", input=(1, 32, 32)).text
    lines = text.splitlines()
    assert lines[0].startswith("# yaml-language-server: $schema=")
    assert lines[1:3] == ["archspec: 1", "name: lenet5"]
    assert lines[3].startswith("doc:") and any(line.startswith("source:") for line in lines[:8])


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module file a user would write, importable as ``usernets``."""
    (tmp_path / "usernets.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Projection(nn.Module):
            def __init__(self, c_in, c, stride):
                super().__init__()
                self.conv = nn.Conv2d(c_in, c, 1, stride, bias=False)
                self.bn = nn.BatchNorm2d(c)

            def forward(self, x):
                return self.bn(self.conv(x))

        class Block(nn.Module):
            def __init__(self, c_in, c, stride=1):
                super().__init__()
                self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(c)
                self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(c)
                self.downsample = None
                if stride != 1 or c_in != c:
                    self.downsample = Projection(c_in, c, stride)

            def forward(self, x):
                out = torch.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                identity = x if self.downsample is None else self.downsample(x)
                return torch.relu(out + identity)

        class Small(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 8, 3, padding=1)
                self.stage = nn.Sequential(Block(8, 16, 2), Block(16, 16), Block(16, 16))
                self.head = nn.Linear(16, 5)

            def forward(self, x):
                x = self.stage(self.stem(x))
                return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

        class WithPool(Small):
            def forward(self, x):
                return self.head(x.mean((2, 3)))

        class Strange(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.act = nn.GELU()
                self.rnn = nn.LSTM(8, 8)

            def forward(self, x):
                return self.rnn(torch.erf(self.act(self.conv(x))))

        class Branchy(nn.Module):
            def forward(self, x):
                if x.sum() > 0:
                    return x
                return -x

        def small():
            return Small()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m == "usernets"]:
        del sys.modules[name]


def test_unsupported_layers_are_all_listed_with_where(user_module):
    with pytest.raises(SpecError) as caught:
        import_model("usernets:Strange", input=(3, 16, 16))
    where = [(p.node, p.message) for p in caught.value.problems]
    assert [w for w, _ in where] == ["act", "erf", "rnn"]
    assert "GELU" in where[0][1] and "torch.erf" in where[1][1] and "LSTM" in where[2][1]


def test_untraceable_module_is_named(user_module):
    with pytest.raises(archspec.ArchspecError, match="torch.fx cannot trace Branchy.*control flow"):
        import_model("usernets:Branchy", input=(3, 8, 8))


def test_hand_written_module_round_trips_with_residual_and_repeat(user_module, tmp_path):
    from usernets import Small

    module = Small().train(False)
    with pytest.raises(SpecError, match="adaptive_avg_pool2d"):
        import_model(module, input=(3, 16, 16))  # a function the catalogue lacks, named


def test_cli_writes_spec_and_weights_that_load(invoke, user_module, tmp_path):
    import usernets

    usernets.Small.forward = lambda self, x: self.head(torch.flatten(self.pool(self.stage(self.stem(x))), 1))
    usernets.Small.__init__ = _with_pool(usernets.Small.__init__)
    result = invoke("import", "usernets:small", "-o", "small.yaml", "--input", "3,16,16", "-w", "small.safetensors")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "small.yaml").read_text()
    assert "residual:" in text and "shortcut:" in text and "repeat: 3" in text
    model = archspec.build(str(tmp_path / "small.yaml"))
    archspec.load_weights(model, tmp_path / "small.safetensors")
    source = usernets.small()
    source.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.train(False)(x), source.train(False)(x))
    assert list(model.state_dict()) == list(source.state_dict())


def _with_pool(init):
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
    return wrapped


def test_cli_refuses_cleanly_and_writes_nothing(invoke, user_module, tmp_path):
    result = invoke("import", "usernets:Strange", "-o", "bad.yaml", "--input", "3,16,16")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "act: GELU has no catalogue entry" in result.output
    assert not (tmp_path / "bad.yaml").exists()


@pytest.mark.parametrize("args, message", [
    (["nonsense", "-o", "x.yaml"], "package.module:factory"),
    (["nosuchmodule_xyz:Net", "-o", "x.yaml"], "cannot import"),
    (["usernets:Nothing", "-o", "x.yaml"], "has no attribute"),
    (["usernets:small", "-o", "x.yaml", "--input", "3,a"], "--input"),
    (["model.h5", "-o", "x.yaml"], ".h5 files are not read"),
])
def test_command_line_mistakes_exit_2(invoke, user_module, args, message):
    result = invoke("import", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
