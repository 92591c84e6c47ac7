"""Property tests of the layer catalogue against real PyTorch, generated from the registry.

For every registered layer type there is a hypothesis strategy (random arguments and input
shapes) and an oracle: the equivalent torch module or function, written here independently of
archspec. For random cases the catalogue's output shape must equal what torch really produces
(batch 2), its parameter count must equal the module's ``parameters()`` (buffers too), its MACs
must be half of what torch's FLOP counter counts, and where the catalogue refuses an input with
ShapeError, torch must refuse it too (or produce an empty tensor) whenever
that comparison means something. A new catalogue entry without a strategy here fails the suite.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from archspec.layers import FAMILIES, REGISTRY, ShapeError
from fuzzing import fuzz

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

BATCH = 2
SETTINGS = fuzz(30)


# ------------------------------------------------------------------ small helpers

dim = st.integers(1, 6)


def shapes_of_rank(ranks=(1, 2, 3), lo=1, hi=6):
    return st.sampled_from(ranks).flatmap(lambda r: st.tuples(*[st.integers(lo, hi)] * r))


def pair_raw(draw, lo, hi):
    """A Pair argument as a spec writes it: an int or [h, w]."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return [draw(st.integers(lo, hi)), draw(st.integers(lo, hi))]


def rare(draw, n: int) -> bool:
    """True about once in n draws. Hypothesis favours boundary values (0 and the maximum), so
    the rare branch is a middle value, not 0."""
    return draw(st.integers(0, n - 1)) == n // 2


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def tf_same(n: int, k_eff: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same': the output is ceil(n / s); an odd total padding goes after."""
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def explicit_padding(padding, size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), computed here from the definitions of each mode."""
    k_eff = [dilation[i] * (kernel[i] - 1) + 1 for i in range(2)]
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "full":
        return (k_eff[0] - 1, k_eff[0] - 1, k_eff[1] - 1, k_eff[1] - 1)
    if padding == "same":
        (t, b), (l, r) = tf_same(size[0], k_eff[0], stride[0]), tf_same(size[1], k_eff[1], stride[1])
        return (t, b, l, r)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def symmetric_numeric(padding) -> bool:
    if isinstance(padding, str):
        return False
    if isinstance(padding, int) or len(padding) == 2:
        return True
    t, b, l, r = padding
    return t == b and l == r


def padding_raw(draw, kmax):
    kind = draw(st.sampled_from(["int", "pair", "four", "valid", "same", "full"]))
    n = st.integers(0, kmax)
    if kind == "int":
        return draw(n)
    if kind == "pair":
        return [draw(n), draw(n)]
    if kind == "four":
        return [draw(n) for _ in range(4)]
    return kind


# ------------------------------------------------------------------ one case


@dataclass
class Case:
    raw: dict  # the arguments as a spec would write them
    shapes: list  # one sample's input shapes (batch excluded)


@dataclass
class Oracle:
    strategy: Any  # st.SearchStrategy[Case]
    build: Callable[[dict, list], tuple[Callable, Any]]  # (args, shapes) -> (fn(*inputs), module or None)
    # when the catalogue raises ShapeError: does torch's refusal mean anything for this case?
    refusal_meaningful: Callable[[dict, list], bool] = lambda a, shapes: True


ORACLES: dict[str, Oracle] = {}


def oracle(*names, refusal_meaningful=None):
    def deco(pair):
        strategy, build = pair
        for name in names:
            ORACLES[name] = Oracle(strategy, build, refusal_meaningful or (lambda a, s: True))
        return pair
    return deco


# ---- element-wise activations


_NO_ARGS = st.just({})


def _activation_strategy(args_strategy=_NO_ARGS):
    @st.composite
    def case(draw):
        return Case(draw(args_strategy), [draw(shapes_of_rank())])
    return case()


def _module_builder(make):
    def build(a, shapes):
        m = make(a, shapes)
        return m, m
    return build


oracle("relu")((_activation_strategy(), _module_builder(lambda a, s: nn.ReLU())))
oracle("sigmoid")((_activation_strategy(), _module_builder(lambda a, s: nn.Sigmoid())))
oracle("tanh")((_activation_strategy(), _module_builder(lambda a, s: nn.Tanh())))
oracle("leaky_relu")((
    _activation_strategy(st.fixed_dictionaries({}, optional={"negative_slope": st.floats(0, 1)})),
    _module_builder(lambda a, s: nn.LeakyReLU(a["negative_slope"])),
))


def _torch_axis(axis: int) -> int:
    """One sample's axis -> the batched tensor's dim (the batch is dim 0)."""
    return axis + 1 if axis >= 0 else axis


@st.composite
def _softmax_case(draw):
    shape = draw(shapes_of_rank())
    axis = draw(st.integers(-len(shape) - 1, len(shape)))  # includes one out of range each side
    return Case({"axis": axis}, [shape])


# a negative axis past the sample's rank is torch's batch dim: torch accepts it, archspec must not
oracle("softmax", refusal_meaningful=lambda a, s: a["axis"] >= -len(s[0]))((
    _softmax_case(), _module_builder(lambda a, s: nn.Softmax(dim=_torch_axis(a["axis"])))))


# ---- convolution


@st.composite
def _conv_case(draw):
    kernel = pair_raw(draw, 1, 4)
    k = as_pair(kernel)
    args: dict = {"kernel": kernel}
    if draw(st.booleans()):
        args["stride"] = pair_raw(draw, 1, 3)
    if draw(st.booleans()):
        args["dilation"] = pair_raw(draw, 1, 2)
    if draw(st.booleans()):
        args["padding"] = padding_raw(draw, max(k))
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    groups = draw(st.integers(1, 3))
    if not rare(draw, 5):  # mostly channels that groups divide
        c, out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    else:
        c, out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if groups > 1 or draw(st.booleans()):
        args["groups"] = groups
    args["out"] = out
    if rare(draw, 10):
        return Case(args, [(c,)])  # wrong rank: (features,) instead of (C, H, W)
    return Case(args, [(c, draw(st.integers(1, 14)), draw(st.integers(1, 14)))])


def _conv_build(a, shapes):
    c = shapes[0][0]
    common = dict(kernel_size=a["kernel"], stride=a["stride"], dilation=a["dilation"], groups=a["groups"],
                  bias=a["bias"])
    pad = a["padding"]
    if pad == "valid":
        conv = nn.Conv2d(c, a["out"], padding="valid", **common)
        return conv, conv
    if pad == "same" and a["stride"] == (1, 1):
        conv = nn.Conv2d(c, a["out"], padding="same", **common)
        return conv, conv
    if pad == "full":
        conv = nn.Conv2d(c, a["out"], padding=tuple(d * (k - 1) for d, k in zip(a["dilation"], a["kernel"])),
                         **common)
        return conv, conv
    if pad != "same" and symmetric_numeric(pad):
        conv = nn.Conv2d(c, a["out"], padding=(pad[0], pad[2]), **common)
        return conv, conv
    # 'same' with a stride, or [top, bottom, left, right]: pad explicitly, then a valid convolution
    size = shapes[0][1:] if len(shapes[0]) == 3 else (1, 1)
    t, b, l, r = explicit_padding(pad, size, a["kernel"], a["stride"], a["dilation"])
    conv = nn.Conv2d(c, a["out"], padding=0, **common)
    return (lambda x: conv(F.pad(x, (l, r, t, b)))), conv


oracle("conv2d")((_conv_case(), _conv_build))


# ---- window pooling


def _pool_case(with_dilation: bool):
    @st.composite
    def case(draw):
        kernel = pair_raw(draw, 1, 4)
        k = as_pair(kernel)
        args: dict = {"kernel": kernel}
        if draw(st.booleans()):
            args["stride"] = pair_raw(draw, 1, 3)
        if with_dilation and draw(st.booleans()):
            args["dilation"] = pair_raw(draw, 1, 2)
        if draw(st.booleans()):
            # mostly legal (at most half the kernel), sometimes not
            args["padding"] = padding_raw(draw, max(k) if rare(draw, 4) else max(k) // 2)
        if draw(st.booleans()):
            padding = args.get("padding", 0)
            # torch's ceil_mode exists only with its own symmetric padding
            ceil_ok = padding == "valid" or symmetric_numeric(padding)
            args["rounding"] = draw(st.sampled_from(["floor", "ceil"] if ceil_ok else ["floor"]))
        if rare(draw, 10):
            return Case(args, [(draw(dim),)])  # wrong rank
        return Case(args, [(draw(st.integers(1, 4)), draw(st.integers(1, 14)), draw(st.integers(1, 14)))])
    return case()


def _pool_builder(kind: str):
    def build(a, shapes):
        stride = a["stride"] or a["kernel"]
        dilation = a.get("dilation", (1, 1))
        ceil = a["rounding"] == "ceil"
        pad = a["padding"]
        size = shapes[0][1:] if len(shapes[0]) == 3 else (1, 1)
        if pad == "valid" or symmetric_numeric(pad):
            padding, pre = ((0, 0) if pad == "valid" else (pad[0], pad[2])), (0, 0, 0, 0)
        else:
            assert not ceil
            padding = (0, 0)
            t, b, l, r = explicit_padding(pad, size, a["kernel"], stride, dilation)
            pre = (l, r, t, b)
        fill = -math.inf if kind == "max" else 0.0

        def fn(x):
            if kind == "avg" and any(pre) and not a["count_include_pad"]:
                return _mean_of_real_values(x, pre, a["kernel"], stride)
            if any(pre):
                x = F.pad(x, pre, value=fill)
            if kind == "max":
                return F.max_pool2d(x, a["kernel"], stride, padding, dilation, ceil_mode=ceil)
            if kind == "avg":
                return F.avg_pool2d(x, a["kernel"], stride, padding, ceil_mode=ceil,
                                    count_include_pad=a["count_include_pad"])
            # sum pooling: the window average times its size, i.e. a divisor of 1
            return F.avg_pool2d(x, a["kernel"], stride, padding, ceil_mode=ceil, count_include_pad=True,
                                divisor_override=1)
        return fn, None
    return build


def _mean_of_real_values(x, pre, kernel, stride):
    """Average pooling that leaves padding out of each mean: pad with NaN, average what is not NaN."""
    n, c, h, w = x.shape
    padded = F.pad(x, pre, value=math.nan)
    windows = F.unfold(padded, kernel, stride=stride).view(n, c, kernel[0] * kernel[1], -1)
    out_h = (padded.shape[2] - kernel[0]) // stride[0] + 1
    return windows.nanmean(dim=2).view(n, c, out_h, -1)


def _pool_refusal_meaningful(a, shapes):
    # torch refuses padding over half the kernel only with its own (symmetric) padding argument
    return a["padding"] == "valid" or symmetric_numeric(a["padding"])


oracle("maxpool2d", refusal_meaningful=_pool_refusal_meaningful)((_pool_case(True), _pool_builder("max")))
oracle("avgpool2d", refusal_meaningful=_pool_refusal_meaningful)((
    _pool_case(False).flatmap(lambda c: st.booleans().map(
        lambda inc: Case({**c.raw, "count_include_pad": inc}, c.shapes))),
    _pool_builder("avg")))
oracle("sumpool2d", refusal_meaningful=_pool_refusal_meaningful)((_pool_case(False), _pool_builder("sum")))


# ---- whole-map pooling


@st.composite
def _global_case(draw):
    args = {"keepdims": draw(st.booleans())} if draw(st.booleans()) else {}
    if rare(draw, 10):
        return Case(args, [(draw(dim),)])
    return Case(args, [(draw(dim), draw(dim), draw(dim))])


oracle("global_avgpool")((_global_case(), lambda a, s: (lambda x: x.mean(dim=(2, 3), keepdim=a["keepdims"]), None)))
oracle("global_maxpool")((_global_case(), lambda a, s: (lambda x: x.amax(dim=(2, 3), keepdim=a["keepdims"]), None)))


@st.composite
def _adaptive_case(draw):
    args = {"output": pair_raw(draw, 1, 6)}
    if rare(draw, 10):
        return Case(args, [(draw(dim),)])
    return Case(args, [(draw(dim), draw(st.integers(1, 9)), draw(st.integers(1, 9)))])


oracle("adaptive_avgpool2d")((_adaptive_case(), _module_builder(lambda a, s: nn.AdaptiveAvgPool2d(a["output"]))))


# ---- dense and friends


@st.composite
def _linear_case(draw):
    args = {"out": draw(st.integers(1, 12))}
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    if draw(st.booleans()):  # on the last axis of any rank; without it, a rank above 1 is refused
        args["last_axis"] = draw(st.booleans())
        return Case(args, [draw(shapes_of_rank(hi=5))])
    return Case(args, [(draw(st.integers(1, 12)),)])


# nn.Linear takes any rank on its last axis; archspec asks for last_axis: true to say so
oracle("linear", refusal_meaningful=lambda a, s: a["last_axis"] or len(s[0]) == 1)((
    _linear_case(), _module_builder(lambda a, s: nn.Linear(s[0][-1], a["out"], bias=a["bias"]))))
oracle("flatten")((_activation_strategy(), _module_builder(lambda a, s: nn.Flatten())))
oracle("identity")((_activation_strategy(), _module_builder(lambda a, s: nn.Identity())))


_p = st.fixed_dictionaries({}, optional={"p": st.floats(0, 1)})
oracle("dropout")((_activation_strategy(_p), _module_builder(lambda a, s: nn.Dropout(a["p"]).train())))


@st.composite
def _spatial_dropout_case(draw):
    return Case(draw(_p), [(draw(dim), draw(dim), draw(dim))])


oracle("spatial_dropout")((_spatial_dropout_case(), _module_builder(lambda a, s: nn.Dropout2d(a["p"]).train())))


# ---- merges


@st.composite
def _add_case(draw):
    shape = draw(shapes_of_rank(lo=2, hi=5))
    shapes = [shape] * draw(st.integers(2, 3))
    if rare(draw, 5):  # one input differs along one axis (sizes >= 2: no broadcasting)
        i, ax = draw(st.integers(0, len(shapes) - 1)), draw(st.integers(0, len(shape) - 1))
        shapes[i] = shape[:ax] + (shape[ax] + 1,) + shape[ax + 1:]
    return Case({}, shapes)


oracle("add")((_add_case(), lambda a, s: (lambda *xs: sum(xs[1:], xs[0]), None)))


@st.composite
def _concat_case(draw):
    shape = draw(shapes_of_rank())
    rank = len(shape)
    axis = draw(st.integers(-rank - 1, rank))
    shapes = []
    for _ in range(draw(st.integers(2, 3))):
        s = list(shape)
        if -rank <= axis < rank:
            s[axis] = draw(dim)  # free along the concatenation axis
        shapes.append(tuple(s))
    if rare(draw, 5):  # one input differs outside the axis
        i, ax = draw(st.integers(0, len(shapes) - 1)), draw(st.integers(0, rank - 1))
        if -rank <= axis < rank and ax == axis % rank:
            shapes[i] = shapes[i] + (2,)  # a rank mismatch instead
        else:
            shapes[i] = shapes[i][:ax] + (shapes[i][ax] + 1,) + shapes[i][ax + 1:]
    return Case({"axis": axis}, shapes)


oracle("concat", refusal_meaningful=lambda a, s: a["axis"] >= -len(s[0]))((
    _concat_case(), lambda a, s: (lambda *xs: torch.cat(xs, dim=_torch_axis(a["axis"])), None)))


# ---- normalisation


_bn_args = st.fixed_dictionaries({}, optional={"momentum": st.floats(0, 1), "eps": st.floats(1e-6, 1e-2),
                                               "affine": st.booleans()})


@st.composite
def _bn2d_case(draw):
    rank = 2 if rare(draw, 10) else 3
    return Case(draw(_bn_args), [tuple(draw(dim) for _ in range(rank))])


@st.composite
def _bn1d_case(draw):
    rank = 3 if rare(draw, 10) else draw(st.sampled_from([1, 2]))
    return Case(draw(_bn_args), [tuple(draw(dim) for _ in range(rank))])


def _bn_build(cls):
    def build(a, shapes):
        m = cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"]).train()
        return m, m
    return build


oracle("batchnorm2d")((_bn2d_case(), _bn_build(nn.BatchNorm2d)))
oracle("batchnorm1d")((_bn1d_case(), _bn_build(nn.BatchNorm1d)))


@st.composite
def _lrn_case(draw):
    args = draw(st.fixed_dictionaries({}, optional={"size": st.integers(1, 7), "alpha": st.floats(0, 1e-3),
                                                    "beta": st.floats(0, 1), "k": st.floats(0, 2)}))
    if rare(draw, 10):
        return Case(args, [(draw(dim),)])
    return Case(args, [(draw(dim), draw(dim), draw(dim))])


# archspec refuses a window wider than 2C+1 channels, which torch computes anyway: only the rank
# refusal has a torch counterpart
oracle("lrn", refusal_meaningful=lambda a, s: len(s[0]) != 3)((
    _lrn_case(), _module_builder(lambda a, s: nn.LocalResponseNorm(a["size"], a["alpha"], a["beta"], a["k"]))))


# ---- activations of today's mobile networks and ConvNeXt (written from their definitions)


def _elementwise(fn):
    return lambda a, s: (fn, None)


oracle("relu6")((_activation_strategy(), _elementwise(lambda x: x.clamp(0, 6))))
oracle("hardswish")((_activation_strategy(), _elementwise(lambda x: x * (x + 3).clamp(0, 6) / 6)))
oracle("hardsigmoid")((_activation_strategy(), _elementwise(lambda x: (x + 3).clamp(0, 6) / 6)))
oracle("silu")((_activation_strategy(), _elementwise(lambda x: x * torch.sigmoid(x))))
oracle("mish")((_activation_strategy(), _elementwise(lambda x: x * torch.tanh(F.softplus(x)))))


def _gelu(a, s):
    if a["approximate"] == "tanh":
        return (lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))), None
    return (lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))), None


oracle("gelu")((_activation_strategy(st.fixed_dictionaries({}, optional={
    "approximate": st.sampled_from(["none", "tanh"])})), _gelu))


# ---- group and layer normalisation, layer scale, stochastic depth


@st.composite
def _groupnorm_case(draw):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 3)) if not rare(draw, 5) else draw(st.integers(1, 6))
    args = {"groups": groups, **draw(st.fixed_dictionaries({}, optional={
        "eps": st.floats(1e-6, 1e-2), "affine": st.booleans()}))}
    rank = draw(st.integers(1, 3))
    return Case(args, [(c,) + tuple(draw(st.integers(1, 5)) for _ in range(rank - 1))])


oracle("groupnorm")((_groupnorm_case(), _module_builder(
    lambda a, s: nn.GroupNorm(a["groups"], s[0][0], eps=a["eps"], affine=a["affine"]))))

_ln_args = st.fixed_dictionaries({}, optional={"eps": st.floats(1e-6, 1e-2), "affine": st.booleans()})


@st.composite
def _layernorm_case(draw):
    return Case(draw(_ln_args), [draw(shapes_of_rank(hi=5))])


oracle("layernorm")((_layernorm_case(), _module_builder(
    lambda a, s: nn.LayerNorm(s[0][-1], eps=a["eps"], elementwise_affine=a["affine"]))))


@st.composite
def _layernorm2d_case(draw):
    rank = 2 if rare(draw, 10) else 3
    return Case(draw(_ln_args), [tuple(draw(st.integers(1, 5)) for _ in range(rank))])


class _ChannelLayerNorm(nn.Module):
    """Normalise each pixel over its channels, written directly from the definition."""

    def __init__(self, c, eps, affine):
        super().__init__()
        self.eps = eps
        if affine:
            self.weight, self.bias = nn.Parameter(torch.randn(c)), nn.Parameter(torch.randn(c))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("expects (N, C, H, W), as torchvision's LayerNorm2d, whose permute needs 4 axes")
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, unbiased=False, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return y


oracle("layernorm2d")((_layernorm2d_case(), _module_builder(
    lambda a, s: _ChannelLayerNorm(s[0][0], a["eps"], a["affine"]))))


class _Scale(nn.Module):
    def __init__(self, shape, value):
        super().__init__()
        self.weight = nn.Parameter(torch.full(shape, value))

    def forward(self, x):
        return x * self.weight


oracle("layer_scale")((
    _activation_strategy(st.fixed_dictionaries({}, optional={"value": st.floats(-2, 2)})),
    _module_builder(lambda a, s: _Scale((s[0][0],) + (1,) * (len(s[0]) - 1), a["value"]))))


@st.composite
def _drop_path_case(draw):
    args = {"p": draw(st.floats(0, 1)), **draw(st.fixed_dictionaries({}, optional={
        "mode": st.sampled_from(["row", "batch"])}))}
    return Case(args, [draw(shapes_of_rank())])


oracle("drop_path")((_drop_path_case(), _elementwise(lambda x: x)))  # eval mode: the identity


# ---- rearranging: shuffle, chunk, permute, padding, upsampling


@st.composite
def _shuffle_case(draw):
    groups = draw(st.integers(1, 4))
    c = groups * draw(st.integers(1, 3)) if not rare(draw, 5) else draw(st.integers(1, 7))
    if rare(draw, 10):
        return Case({"groups": groups}, [(c,)])
    return Case({"groups": groups}, [(c, draw(dim), draw(dim))])


def _shuffle(a, s):
    g = a["groups"]

    def fn(x):
        n, c, h, w = x.shape
        return x.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)
    return fn, None


# torch's ChannelShuffle checks divisibility only when it runs on real data
oracle("channel_shuffle")((_shuffle_case(), _shuffle))


@st.composite
def _chunk_case(draw):
    shape = draw(shapes_of_rank(hi=8))
    rank = len(shape)
    parts = draw(st.integers(1, 4))
    axis = draw(st.integers(-rank, rank - 1))
    part = draw(st.integers(0, parts - 1 if not rare(draw, 8) else parts))
    return Case({"parts": parts, "part": part, "axis": axis}, [shape])


def _chunk(a, s):
    def fn(x):
        chunks = torch.chunk(x, a["parts"], dim=_torch_axis(a["axis"]))
        if len(chunks) != a["parts"] or len({c.shape for c in chunks}) != 1:
            raise ValueError("unequal chunks")
        return chunks[a["part"]]
    return fn, None


oracle("chunk")((_chunk_case(), _chunk))


@st.composite
def _permute_case(draw):
    shape = draw(shapes_of_rank())
    axes = list(draw(st.permutations(range(len(shape)))))
    if rare(draw, 6):
        axes = axes + [0]  # not an order of the axes
    return Case({"axes": axes}, [shape])


oracle("permute")((_permute_case(), lambda a, s: ((lambda x: x.permute(0, *(i + 1 for i in a["axes"]))), None)))


@st.composite
def _zero_pad_case(draw):
    kind = draw(st.sampled_from(["int", "pair", "four"]))
    n = st.integers(0, 3)
    padding = draw(n) if kind == "int" else [draw(n), draw(n)] if kind == "pair" else [draw(n) for _ in range(4)]
    if rare(draw, 10):
        return Case({"padding": padding}, [(draw(dim),)])
    return Case({"padding": padding}, [(draw(dim), draw(dim), draw(dim))])


# F.pad pads the last axes of any rank; archspec's zero_pad2d is for (C, H, W) only
oracle("zero_pad2d", refusal_meaningful=lambda a, s: len(s[0]) == 3)((_zero_pad_case(), lambda a, s: (
    (lambda x: F.pad(x, (a["padding"][2], a["padding"][3], a["padding"][0], a["padding"][1]))), None)))


@st.composite
def _upsample_case(draw):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    args = {"scale": pair_raw(draw, 1, 3), "mode": mode}
    if mode == "bilinear" and draw(st.booleans()):
        args["align_corners"] = draw(st.booleans())
    if rare(draw, 10):
        return Case(args, [(draw(dim),)])
    return Case(args, [(draw(dim), draw(dim), draw(dim))])


def _upsample(a, s):
    size = tuple(n * k for n, k in zip(s[0][1:], a["scale"])) if len(s[0]) == 3 else None
    if a["mode"] == "nearest":
        return (lambda x: F.interpolate(x, size=size, mode="nearest")), None
    return (lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=a["align_corners"])), None


oracle("upsample")((_upsample_case(), _upsample))


@st.composite
def _deconv_case(draw):
    args: dict = {"kernel": pair_raw(draw, 1, 4)}
    if draw(st.booleans()):
        args["stride"] = pair_raw(draw, 1, 3)
    if draw(st.booleans()):
        args["padding"] = pair_raw(draw, 0, 2)
    if draw(st.booleans()):
        args["dilation"] = pair_raw(draw, 1, 2)
    if draw(st.booleans()):
        args["output_padding"] = pair_raw(draw, 0, 2)
    if draw(st.booleans()):
        args["bias"] = draw(st.booleans())
    groups = draw(st.integers(1, 3))
    c, out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    if groups > 1:
        args["groups"] = groups
    args["out"] = out
    if rare(draw, 10):
        return Case(args, [(c,)])
    return Case(args, [(c, draw(st.integers(1, 8)), draw(st.integers(1, 8)))])


oracle("conv_transpose2d")((_deconv_case(), _module_builder(lambda a, s: nn.ConvTranspose2d(
    s[0][0], a["out"], a["kernel"], stride=a["stride"], padding=a["padding"], output_padding=a["output_padding"],
    groups=a["groups"], bias=a["bias"], dilation=a["dilation"]))))


# ---- the broadcasting product


@st.composite
def _mul_case(draw):
    shape = draw(shapes_of_rank(lo=2, hi=5))
    gate = tuple(1 if draw(st.booleans()) else d for d in shape)
    shapes = [shape, gate] if draw(st.booleans()) else [gate, shape]
    if rare(draw, 5):  # an axis that neither agrees nor broadcasts
        ax = draw(st.integers(0, len(shape) - 1))
        shapes[0] = shapes[0][:ax] + (shape[ax] + 1,) + shapes[0][ax + 1:]
    return Case({}, shapes)


oracle("mul")((_mul_case(), lambda a, s: (lambda x, y: x * y, None)))


# ------------------------------------------------------------------ the tests


def catalogue(layer, raw: dict, shapes: list):
    """What expansion does with one layer: coerce, check the inputs, infer the output shape."""
    args, problems = layer.coerce_args(raw)
    assert not problems, problems
    assert layer.min_inputs <= len(shapes) <= layer.max_inputs
    layer.check_inputs(shapes)
    return args, layer.output_shape(args, shapes)


def run_torch(fn, shapes, flops: list | None = None):
    """fn on random inputs of batch 2; appends to ``flops`` what torch's FLOP counter counts."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = [torch.randn(BATCH, *s) for s in shapes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            y = fn(*inputs)
    if flops is not None:
        flops.append(counter.get_total_flops())
    return y


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_type_has_an_oracle(type_name):
    assert type_name in ORACLES, (
        f"layer type '{type_name}' has no hypothesis strategy and torch oracle in tests/test_layers.py: "
        "add one with @oracle so its shape and parameter rules are checked against PyTorch")


def test_no_oracle_for_an_unknown_type():
    assert set(ORACLES) <= set(REGISTRY), set(ORACLES) - set(REGISTRY)


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
@SETTINGS
@given(data=st.data())
def test_matches_torch(type_name, data):
    assert type_name in ORACLES, f"no oracle for {type_name}"
    layer, spec = REGISTRY[type_name], ORACLES[type_name]
    case = data.draw(spec.strategy, label="case")
    args, _ = layer.coerce_args(case.raw)
    try:
        _, out = catalogue(layer, case.raw, case.shapes)
    except ShapeError as exc:
        if not spec.refusal_meaningful(args, case.shapes):
            return
        try:
            fn, _ = spec.build(args, case.shapes)
            y = run_torch(fn, case.shapes)
        except (RuntimeError, ValueError, IndexError, TypeError):
            return  # torch refuses too
        assert y.numel() == 0, f"archspec refused ({exc}) but torch produced {tuple(y.shape)}"
        return
    fn, module = spec.build(args, case.shapes)
    flops: list = []
    y = run_torch(fn, case.shapes, flops)
    assert tuple(y.shape) == (BATCH, *out), f"{type_name}{case.raw} on {case.shapes}"
    # MACs: torch's FLOP counter counts 2 per multiply-accumulate of convolutions and matrix
    # products, and nothing for the other layers (torchvision's convention, as archspec's)
    assert 2 * BATCH * layer.macs(args, case.shapes, out) == flops[0], f"{type_name}{case.raw} on {case.shapes}"

    counted = layer.param_count(args, case.shapes, out)
    real = sum(p.numel() for p in module.parameters()) if module is not None else 0
    assert counted.total == real, f"{type_name}: {counted} vs {real} in torch"
    assert counted.weights + counted.biases == counted.total
    real_buffers = sum(b.numel() for b in module.buffers()) if module is not None else 0
    assert counted.buffers == real_buffers, f"{type_name}: buffers {counted.buffers} vs {real_buffers} in torch"


def test_batchnorm_buffers_are_running_stats_and_counter():
    layer = REGISTRY["batchnorm2d"]
    args, _ = layer.coerce_args({})
    counted = layer.param_count(args, [(16, 8, 8)], (16, 8, 8))
    m = nn.BatchNorm2d(16)
    names = {n: b.numel() for n, b in m.named_buffers()}
    assert names == {"running_mean": 16, "running_var": 16, "num_batches_tracked": 1}
    assert counted.buffers == sum(names.values()) == 33
    assert (counted.weights, counted.biases) == (m.weight.numel(), m.bias.numel())


# ------------------------------------------------------------------ catalogue hygiene


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_entry_is_complete(type_name):
    layer = REGISTRY[type_name]
    assert layer.family in FAMILIES
    assert layer.doc.strip(), f"{type_name} has no doc"
    assert layer.name == type_name
    for arg_name, arg in layer.args.items():
        assert arg.doc.strip(), f"{type_name}.{arg_name} has no doc"


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_schema_fragment_accepts_its_own_defaults(type_name):
    layer = REGISTRY[type_name]
    schema = layer.schema()
    Draft202012Validator.check_schema(schema)
    defaults = {k: a.default for k, a in layer.args.items() if not a.required and a.default is not None}
    for key, value in defaults.items():
        # each default validates against its property's schema and coerces to the same kind
        Draft202012Validator(schema["properties"][key]).validate(value)
        assert schema["properties"][key]["default"] == value
        layer.args[key].kind.coerce(value)
    if not any(a.required for a in layer.args.values()):
        validator = Draft202012Validator(schema)
        validator.validate(defaults)
        validator.validate(None)  # `- relu`: a layer written without arguments
    # coerce_args({}) applies every default without complaint except the required arguments
    _, problems = layer.coerce_args({})
    assert {p for _, p in problems} == {p for _, p in problems if "needs" in p}
    assert len(problems) == sum(a.required for a in layer.args.values())


# ------------------------------------------------------------------ the catalogue's own constructors


def _constructed(layer, args, shapes, out):
    """The catalogue's torch constructor as a callable (module, Call or identity) and its module."""
    from archspec.layers.base import Call

    made = layer.torch(args, shapes, out)
    if made is None:
        return (lambda x: x), None
    if isinstance(made, Call) and made.weight is not None:  # the parameter the compiler holds at the path
        holder = nn.Module()
        holder.weight = nn.Parameter(made.weight)
        return (lambda *xs: made.function(holder.weight, *xs, **made.kwargs)), holder
    if isinstance(made, Call):
        if made.list_input:
            return (lambda *xs: made.function(list(xs), **made.kwargs)), None
        return (lambda *xs: made.function(*xs, **made.kwargs)), None
    return made, made


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
@SETTINGS
@given(data=st.data())
def test_catalogue_constructor_matches_the_rules_and_torch(type_name, data):
    """layer.torch() — what archspec.build uses — gives the inferred shape, the counted parameters
    and buffers, and, with the same weights, the independent oracle's output (eval mode)."""
    layer, spec = REGISTRY[type_name], ORACLES[type_name]
    case = data.draw(spec.strategy, label="case")
    try:
        args, out = catalogue(layer, case.raw, case.shapes)
    except ShapeError:
        return  # refused before anything is built
    fn, module = _constructed(layer, args, case.shapes, out)
    counted = layer.param_count(args, case.shapes, out)
    if module is not None:
        module.eval()
        assert sum(p.numel() for p in module.parameters()) == counted.total
        assert sum(b.numel() for b in module.buffers()) == counted.buffers
    else:
        assert counted.total == 0 and counted.buffers == 0
    torch.manual_seed(0)
    inputs = [torch.randn(BATCH, *s) for s in case.shapes]
    with torch.no_grad():
        y = fn(*inputs)
    assert tuple(y.shape) == (BATCH, *out), f"{type_name}{case.raw} on {case.shapes}"
    reference, ref_module = spec.build(args, case.shapes)
    if ref_module is not None:
        ref_module.eval()
        if module is not None:
            ref_module.load_state_dict(module.state_dict())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(*inputs)
    torch.testing.assert_close(y, expected, msg=f"{type_name}{case.raw} on {case.shapes}")


# ------------------------------------------------------------------ saved for backward, against autograd

# entries whose declaration is checked elsewhere, and why
SAVED_CHECKED_ELSEWHERE = {
    "dropout": "the CPU kernel keeps float noise where the GPU's fused kernel, which the catalogue counts, "
               "keeps a bool mask; tests/test_memory.py measures both",
}


def _declared_saved_bytes(layer, args, shapes, out, trains: bool) -> int:
    """Bytes the catalogue says autograd keeps for one layer whose inputs need gradients (float32)."""
    tensors: dict = {}
    own = 0
    for s in layer.saved(args, shapes, out):
        if s.only_if_trained and not trains:
            continue
        if s.what == "own":
            own += s.numel * (BATCH if s.per_batch else 1) * (s.itemsize or 4)
        elif s.what == "input":
            tensors[("input", s.index)] = math.prod(shapes[s.index])
        else:  # a view's output is its input's storage
            tensors[("input", 0) if layer.view else "output"] = math.prod(out)
    return own + sum(tensors.values()) * BATCH * 4


def _autograd_saved_bytes(fn, module, inputs) -> int:
    """Bytes of the distinct storages autograd saves in one forward pass, parameters excluded."""
    params = {p.untyped_storage()._cdata for p in module.parameters()} if module is not None else set()
    storages: dict[int, int] = {}
    keep = []

    def pack(t):
        storage = t.untyped_storage()
        if storage._cdata not in params:
            storages[storage._cdata] = storage.nbytes()
        keep.append(t)  # alive until counted: no storage address is reused
        return t

    with warnings.catch_warnings(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        warnings.simplefilter("ignore")
        fn(*inputs)
    return sum(storages.values())


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
@fuzz(12)
@given(data=st.data())
def test_saved_for_backward_matches_autograd(type_name, data):
    """What each entry declares saved for backward is what autograd keeps, in training mode, when
    its inputs need gradients (the summary's saved_bytes adds these up)."""
    layer, spec = REGISTRY[type_name], ORACLES[type_name]
    if type_name in SAVED_CHECKED_ELSEWHERE or not layer.exact_saved:
        return
    case = data.draw(spec.strategy, label="case")
    try:
        args, out = catalogue(layer, case.raw, case.shapes)
    except ShapeError:
        return
    fn, module = _constructed(layer, args, case.shapes, out)
    if module is not None:
        module.train()
    counted = layer.param_count(args, case.shapes, out)
    inputs = [torch.randn(BATCH, *s, requires_grad=True) for s in case.shapes]
    declared = _declared_saved_bytes(layer, args, case.shapes, out, trains=counted.total > 0)
    assert declared == _autograd_saved_bytes(fn, module, inputs), f"{type_name}{case.raw} on {case.shapes}"


@pytest.mark.parametrize("raw, shape", [
    ({"kernel": 2, "padding": 1, "rounding": "ceil"}, (1, 1, 1)),  # the last window would start in the bottom pad
    ({"kernel": 3, "stride": 2, "padding": 1, "rounding": "ceil"}, (2, 4, 6)),
    ({"kernel": [2, 3], "padding": [1, 1, 1, 1], "rounding": "ceil"}, (1, 3, 2)),
])
def test_sum_pool_ceil_mode_follows_torchs_rule(raw, shape):
    """Sum pooling's compiled module, the catalogue's shape and autograd agree in ceil mode: a window
    may start in the leading padding, never in the trailing one (torch's ceil_mode, as for avg/max)."""
    layer = REGISTRY["sumpool2d"]
    args, out = catalogue(layer, raw, [shape])
    fn, _ = _constructed(layer, args, [shape], out)
    x = torch.randn(BATCH, *shape, requires_grad=True)
    y = fn(x)
    assert tuple(y.shape) == (BATCH, *out)
    padding = args["padding"] if isinstance(args["padding"], int) else args["padding"][0::2]
    expected = F.avg_pool2d(x, args["kernel"], args["stride"] or args["kernel"], padding, ceil_mode=True,
                            divisor_override=1)
    torch.testing.assert_close(y, expected)
    declared = _declared_saved_bytes(layer, args, [shape], out, trains=False)
    assert declared == _autograd_saved_bytes(fn, None, [torch.randn(BATCH, *shape, requires_grad=True)])


@pytest.mark.parametrize("type_name, raw, shape", [
    # found by bench/fuzz.sh (seed 90211): the count of real pixels PaddedAvgPool2d divides by is kept too
    ("avgpool2d", {"kernel": 2, "padding": "same", "count_include_pad": False}, (1, 1, 1)),
    ("avgpool2d", {"kernel": [2, 4], "padding": "same", "count_include_pad": False}, (3, 5, 6)),
    # with p = 1 torch multiplies by one zero scalar instead of drawing noise
    ("spatial_dropout", {"p": 1.0}, (1, 1, 1)),
    ("spatial_dropout", {"p": 1.0}, (4, 3, 3)),
    ("dropout", {"p": 1.0}, (4, 3, 3)),
])
def test_saved_for_backward_edge_cases(type_name, raw, shape):
    layer = REGISTRY[type_name]
    args, out = catalogue(layer, raw, [shape])
    fn, module = _constructed(layer, args, [shape], out)
    if module is not None:
        module.train()
    declared = _declared_saved_bytes(layer, args, [shape], out, trains=False)
    assert declared == _autograd_saved_bytes(fn, module, [torch.randn(BATCH, *shape, requires_grad=True)])
