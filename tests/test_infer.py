"""Analytic inference: what autograd saves for backward, and the inference peak.

The accounting rules are checked on hand-computed small chains; then, with torch in the test
only, the analytic "saved for backward" bytes of small specs are compared with what autograd
really keeps, measured by packing every saved tensor through
``torch.autograd.graph.saved_tensors_hooks`` and counting distinct storages (parameters
excluded). The torch models are built by hand here, node by node, with torch's own modules and
functions.
"""
from __future__ import annotations

import math
import textwrap
import warnings

import pytest

import archspec
from archspec.graph import INPUT
from archspec.infer import forward_peak_bytes, infer, saved_bytes
from archspec.layers import REGISTRY


def graph_of(spec_file, layers: str, input_shape="[3, 8, 8]"):
    """A spec of the given layers, one item per unindented line (indented lines continue it)."""
    lines = textwrap.dedent(layers).strip().splitlines()
    body = "\n".join(("    " if line.startswith(" ") else "  - ") + line for line in lines)
    return archspec.expand(spec_file(f"archspec: 1\nname: t\ninput: {input_shape}\nlayers:\n{body}\n"))


# ------------------------------------------------------------------ accounting on small chains


def test_conv_input_that_is_a_relu_output_is_counted_once(spec_file):
    g = graph_of(spec_file, """
        conv2d: {out: 4, kernel: 3, padding: 1}
        relu
        conv2d: {out: 4, kernel: 3, padding: 1}
    """)
    a = infer(g)
    # conv1 keeps the input (3*8*8); relu keeps its output, which conv2 keeps too (4*8*8)
    assert saved_bytes(a, batch=1, itemsize=4) == (3 * 8 * 8 + 4 * 8 * 8) * 4
    assert saved_bytes(a, batch=5, itemsize=2) == (3 * 8 * 8 + 4 * 8 * 8) * 5 * 2
    saves = {f.path: [(s.what, s.index) for s in f.saved] for f in a.figures}
    assert saves == {"conv1": [("input", 0)], "relu1": [("output", 0)], "conv2": [("input", 0)]}


def test_flatten_is_a_view(spec_file):
    g = graph_of(spec_file, """
        conv2d: {out: 4, kernel: 3, padding: 1}
        relu
        flatten
        linear: {out: 10}
    """)
    a = infer(g)
    flat = a.by_path()["flatten1"]
    assert flat.activations == 0 and REGISTRY["flatten"].view
    # linear keeps its input: the flatten view of relu's output, already kept by relu
    assert saved_bytes(a, 1, 4) == (3 * 8 * 8 + 4 * 8 * 8) * 4
    s = archspec.summarize(g.file)
    assert s.totals.activation_bytes == (3 * 64 + 4 * 64 + 4 * 64 + 0 + 10) * 4


def test_maxpool_keeps_int64_indices(spec_file):
    g = graph_of(spec_file, """
        conv2d: {out: 3, kernel: 1}
        maxpool2d: {kernel: 2}
    """)
    # the conv keeps the data (3*8*8); the pool keeps its input, the conv's output (3*8*8
    # floats), and one int64 argmax index per output (3*4*4)
    assert saved_bytes(infer(g), 1, 4) == 3 * 64 * 4 + 3 * 64 * 4 + 3 * 16 * 8
    assert saved_bytes(infer(g), 3, 2) == 3 * (2 * 3 * 64 * 2 + 3 * 16 * 8)  # indices stay 8 bytes


def test_nothing_is_saved_before_something_needs_a_gradient(spec_file):
    g = graph_of(spec_file, """
        maxpool2d: {kernel: 2}
        relu
    """)
    assert saved_bytes(infer(g), 4, 4) == 0  # the data needs no gradient, and nothing here learns


def test_dropout_keeps_a_one_byte_mask(spec_file):
    g = graph_of(spec_file, """
        linear: {out: 100}
        dropout: {p: 0.3}
    """, "[100]")
    data = 100  # what the linear layer keeps, per sample
    assert saved_bytes(infer(g), 1, 4) == data * 4 + 100
    assert saved_bytes(infer(g), 7, 8) == 7 * data * 8 + 700


def test_batchnorm_statistics_ignore_the_batch(spec_file):
    g = graph_of(spec_file, """
        batchnorm2d
    """, "[6, 4, 4]")
    one, two = saved_bytes(infer(g), 1, 4), saved_bytes(infer(g), 2, 4)
    per_sample = 6 * 16 * 4
    assert two - one == per_sample  # only the input grows with the batch
    assert (one - per_sample) % (6 * 4) == 0  # the rest: per-channel float32 statistics


def test_spatial_dropout_keeps_only_its_channel_noise(spec_file):
    g = graph_of(spec_file, """
        conv2d: {out: 6, kernel: 1}
        spatial_dropout: {p: 0.3}
    """, "[6, 4, 4]")
    # output = input * noise(N, C, 1, 1): autograd keeps the noise, not the input
    data = 5 * 6 * 16 * 4  # what the conv keeps
    assert saved_bytes(infer(g), 5, 4) == data + 5 * 6 * 4


def test_adaptive_pool_to_one_keeps_nothing(spec_file):
    conv = "conv2d: {out: 6, kernel: 1}\n"
    one = graph_of(spec_file, conv + "adaptive_avgpool2d: {output: 1}", "[6, 4, 4]")
    two = graph_of(spec_file, conv + "adaptive_avgpool2d: {output: 2}", "[6, 4, 4]")
    data = 2 * 6 * 16 * 4  # what the conv keeps
    assert saved_bytes(infer(one), 2, 4) == data  # torch computes it as a mean over (H, W)
    assert saved_bytes(infer(two), 2, 4) == data + 2 * 6 * 16 * 4  # and the pool's input


def test_nothing_saved_by_views_and_merges(spec_file):
    g = graph_of(spec_file, """
        {identity, name: a}
        {flatten, name: b}
    """)
    assert saved_bytes(infer(g), 4, 4) == 0


def test_forward_peak_on_a_small_chain(spec_file):
    g = graph_of(spec_file, """
        conv2d: {out: 8, kernel: 3, padding: 1}
        relu
        maxpool2d: {kernel: 2}
        flatten
        linear: {out: 10}
    """)
    x, conv, relu, pool, fc = 3 * 64, 8 * 64, 8 * 64, 8 * 16, 10
    # live tensors step by step; the caller holds the input x throughout
    peak = max(x + conv, x + conv + relu, x + relu + pool, x + pool + fc)
    assert peak == x + conv + relu
    assert forward_peak_bytes(infer(g), 1, 4) == peak * 4
    assert forward_peak_bytes(infer(g), 16, 2) == peak * 16 * 2
    s = archspec.summarize(g.file, batch=16, dtype="float16")
    assert s.totals.forward_peak_bytes == peak * 16 * 2


def test_forward_peak_keeps_a_branch_input_alive(spec_file):
    g = graph_of(spec_file, """
        {conv2d: {out: 4, kernel: 1}, name: a}
        {conv2d: {out: 4, kernel: 1}, name: b, from: input}
        {add, from: [a, b], name: c}
    """)
    x, a, b, c = 3 * 64, 4 * 64, 4 * 64, 4 * 64
    # a stays alive while b is computed; the caller holds x throughout
    assert forward_peak_bytes(infer(g), 1, 1) == max(x + a, x + a + b, x + a + b + c)


# ------------------------------------------------------------------ against real autograd

torch_specs = {
    # name: (layers, input shape, analytic figure expected exact)
    "vgg_like": ("""
        conv2d: {out: 8, kernel: 3, padding: 1}
        relu
        conv2d: {out: 8, kernel: 3, padding: 1}
        relu
        maxpool2d: {kernel: 2, stride: 2}
        conv2d: {out: 16, kernel: 3, padding: 1}
        relu
        maxpool2d: {kernel: 2, stride: 2}
        adaptive_avgpool2d: {output: 2}
        flatten
        linear: {out: 32}
        relu
        dropout: {p: 0.5}
        linear: {out: 10}
    """, "[3, 16, 16]"),
    "batchnorm": ("""
        conv2d: {out: 8, kernel: 3, padding: 1, bias: false}
        batchnorm2d
        relu
        avgpool2d: {kernel: 2}
        conv2d: {out: 16, kernel: 3, stride: 2, padding: same}
        batchnorm2d: {affine: false}
        relu
        global_avgpool
        batchnorm1d
        linear: {out: 10}
        softmax
    """, "[3, 16, 16]"),
    "branches": ("""
        {conv2d: {out: 8, kernel: 3, padding: 1}, name: stem}
        relu
        parallel:
          - - conv2d: {out: 4, kernel: 1}
          - - conv2d: {out: 4, kernel: 3, padding: 1}
            - leaky_relu
          - - maxpool2d: {kernel: 3, stride: 1, padding: 1}
            - conv2d: {out: 4, kernel: 1}
        residual:
          - conv2d: {out: 12, kernel: 3, padding: 1}
          - tanh
          - conv2d: {out: 12, kernel: 3, padding: 1}
        spatial_dropout: {p: 0.2}
        sigmoid
        conv2d: {out: 6, kernel: 3, dilation: 2, groups: 2}
        global_maxpool
        linear: {out: 5}
    """, "[3, 12, 12]"),
    "pools": ("""
        conv2d: {out: 6, kernel: 3}
        sumpool2d: {kernel: 2}
        relu
        maxpool2d: {kernel: 3, stride: 2, padding: 1, rounding: ceil}
        identity
        conv2d: {out: 6, kernel: 1}
        adaptive_avgpool2d: {output: 1}
        flatten
        linear: {out: 4}
    """, "[2, 15, 15]"),
    "lrn": ("""
        conv2d: {out: 8, kernel: 5, stride: 2}
        relu
        lrn: {size: 5, k: 2}
        maxpool2d: {kernel: 3, stride: 2}
        flatten
        linear: {out: 3}
    """, "[3, 21, 21]"),
}


class TorchModel:
    """A graph's forward pass, node by node, in plain torch written here (not archspec's compiler)."""

    def __init__(self, graph):
        import torch
        from torch import nn

        F = nn.functional
        self.graph, self.modules, self.calls = graph, nn.ModuleDict(), {}
        for node in graph.nodes:
            a, key = node.args, node.path.replace(".", "_")
            shapes = [graph.shape_of(i) for i in node.inputs]
            c = shapes[0][0]
            t = node.type
            if t == "conv2d":
                pad = a["padding"]
                common = dict(kernel_size=a["kernel"], stride=a["stride"], dilation=a["dilation"],
                              groups=a["groups"], bias=a["bias"])
                if pad == "same" and a["stride"] != (1, 1):
                    # TensorFlow 'same': out = ceil(n / s); the odd pixel of padding goes after
                    pads = []
                    for ax in (1, 0):
                        n, k, s = shapes[0][1 + ax], a["kernel"][ax], a["stride"][ax]
                        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                        pads += [total // 2, total - total // 2]
                    conv = nn.Conv2d(c, a["out"], padding=0, **common)
                    self.calls[node.path] = lambda x, conv=conv, pads=pads: conv(F.pad(x, pads))
                    self.modules[key] = conv
                    continue
                padding = pad if isinstance(pad, str) else (pad[0], pad[2])
                self.modules[key] = nn.Conv2d(c, a["out"], padding=padding, **common)
            elif t in ("relu", "sigmoid", "tanh"):
                self.calls[node.path] = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[t]
            elif t == "leaky_relu":
                self.calls[node.path] = lambda x, s=a["negative_slope"]: F.leaky_relu(x, s)
            elif t == "softmax":
                self.calls[node.path] = lambda x, d=a["axis"]: F.softmax(x, d + 1 if d >= 0 else d)
            elif t == "maxpool2d":
                p = a["padding"]
                self.modules[key] = nn.MaxPool2d(a["kernel"], a["stride"] or a["kernel"], (p[0], p[2]), a["dilation"],
                                                 ceil_mode=a["rounding"] == "ceil")
            elif t == "avgpool2d":
                p = a["padding"]
                self.modules[key] = nn.AvgPool2d(a["kernel"], a["stride"] or a["kernel"], (p[0], p[2]),
                                                 a["rounding"] == "ceil", a["count_include_pad"])
            elif t == "sumpool2d":
                # zero-pad (a copy, even of nothing), then sum: what the catalogue describes
                t_, b_, l_, r_ = a["padding"]
                self.calls[node.path] = lambda x, a=a, p=(l_, r_, t_, b_): F.avg_pool2d(
                    F.pad(x, p), a["kernel"], a["stride"] or a["kernel"], 0, a["rounding"] == "ceil",
                    divisor_override=1)
            elif t == "adaptive_avgpool2d":
                self.modules[key] = nn.AdaptiveAvgPool2d(a["output"])
            elif t == "global_avgpool":
                self.calls[node.path] = lambda x, k=a["keepdims"]: x.mean(dim=(2, 3), keepdim=k)
            elif t == "global_maxpool":
                self.calls[node.path] = lambda x, k=a["keepdims"]: x.amax(dim=(2, 3), keepdim=k)
            elif t == "linear":
                self.modules[key] = nn.Linear(c, a["out"], bias=a["bias"])
            elif t == "flatten":
                self.calls[node.path] = lambda x: torch.flatten(x, 1)
            elif t == "identity":
                self.calls[node.path] = lambda x: x
            elif t == "dropout":
                # nn.Dropout's kernel on GPUs (its CPU path keeps a float noise tensor instead)
                self.calls[node.path] = lambda x, p=a["p"]: torch.native_dropout(x, p, True)[0]
            elif t == "spatial_dropout":
                self.modules[key] = nn.Dropout2d(a["p"])
            elif t == "add":
                self.calls[node.path] = lambda *xs: sum(xs[1:], xs[0])
            elif t == "concat":
                self.calls[node.path] = lambda *xs, d=a["axis"]: torch.cat(xs, d + 1 if d >= 0 else d)
            elif t in ("batchnorm2d", "batchnorm1d"):
                cls = nn.BatchNorm2d if t == "batchnorm2d" else nn.BatchNorm1d
                self.modules[key] = cls(c, eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
            elif t == "lrn":
                self.modules[key] = nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"])
            else:
                raise NotImplementedError(f"no hand-built torch for {t}: extend TorchModel")
            if key in self.modules:
                self.calls[node.path] = self.modules[key]
        self.modules.train()

    def __call__(self, x):
        values = {INPUT: x}
        for node in self.graph.nodes:
            values[node.path] = self.calls[node.path](*[values[i] for i in node.inputs])
        return values[self.graph.output]


def measure_saved(model: TorchModel, x) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass, parameters excluded."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.modules.parameters()}
    storages: dict[int, int] = {}
    keep = []

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        keep.append(t)  # alive until the end: no address is reused by another storage
        return t

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
    y.sum().backward()  # the graph is complete and usable
    return sum(storages.values())


def compare(spec_file, name: str, batch: int = 4):
    torch = pytest.importorskip("torch")
    layers, shape = torch_specs[name]
    graph = graph_of(spec_file, layers, shape)
    torch.manual_seed(0)
    model = TorchModel(graph)
    measured = measure_saved(model, torch.randn(batch, *graph.input_shape))
    analytic = archspec.summarize(graph.file, batch=batch).totals.saved_bytes
    exact = all(REGISTRY[n.type].exact_saved for n in graph.nodes)
    return analytic, measured, exact


@pytest.mark.parametrize("name", sorted(torch_specs))
def test_saved_bytes_against_autograd(spec_file, name):
    analytic, measured, exact = compare(spec_file, name)
    ratio = analytic / measured
    print(f"{name}: analytic {analytic:,} B, autograd {measured:,} B, ratio {ratio:.4f}")
    if exact:
        assert abs(ratio - 1) <= 0.05, f"{name}: analytic {analytic:,} vs autograd {measured:,} bytes"
    else:
        assert abs(ratio - 1) <= 0.5, f"{name}: analytic {analytic:,} vs autograd {measured:,} bytes (estimate)"


@pytest.mark.parametrize("batch", [1, 3])
def test_saved_bytes_vgg_like_exact_at_every_batch(spec_file, batch):
    analytic, measured, _ = compare(spec_file, "vgg_like", batch)
    assert analytic == measured


def test_every_layer_type_is_measured(spec_file):
    """Every type is measured against autograd: in a chain here, or alone, for random arguments, by
    tests/test_layers.py's registry-driven test_saved_for_backward_matches_autograd."""
    from test_layers import SAVED_CHECKED_ELSEWHERE

    used = set()
    for layers, shape in torch_specs.values():
        used |= {n.type for n in graph_of(spec_file, layers, shape).nodes}
    alone = {t for t, layer in REGISTRY.items() if layer.exact_saved and t not in SAVED_CHECKED_ELSEWHERE}
    assert used | alone == set(REGISTRY), f"not measured against autograd: {sorted(set(REGISTRY) - used - alone)}"
