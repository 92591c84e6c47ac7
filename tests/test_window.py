"""Sliding-window arithmetic: the textbook output-size formula, the padding modes, torch's
ceil_mode, and receptive fields (sizes, jumps and where the first field is centred)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import archspec
from archspec.layers import REGISTRY, Field, ShapeError
from archspec.layers.window import resolve_padding, window_size
from fuzzing import fuzz


def textbook_size(H: int, K: int, P_top: int, P_bottom: int, S: int) -> int:
    """H'' = 1 + floor((H - H' + P_top + P_bottom) / S), as CS231n writes it."""
    return 1 + math.floor((H - K + P_top + P_bottom) / S)


# (H, kernel H', P_top, P_bottom, S, H'') worked by hand
WORKED = [
    (224, 3, 1, 1, 1, 224),  # VGG's CONV3: keeps the size
    (224, 2, 0, 0, 2, 112),  # VGG's POOL2: halves it
    (227, 11, 0, 0, 4, 55),  # AlexNet's first layer
    (224, 7, 3, 3, 2, 112),  # ResNet's stem
    (112, 3, 1, 1, 2, 56),  # ResNet's stem pooling
    (32, 5, 0, 0, 1, 28),  # LeNet-5's C1
    (28, 2, 0, 0, 2, 14),  # LeNet-5's S2
    (7, 3, 0, 0, 2, 3),  # floor drops a partial window: (7-3)/2 = 2
    (8, 3, 0, 0, 2, 3),  # (8-3)/2 = 2.5 -> 2, + 1
    (6, 3, 0, 1, 2, 3),  # asymmetric padding: 1 + floor(4/2)
    (5, 3, 2, 0, 1, 5),  # padding only on top
    (1, 1, 0, 0, 1, 1),
    (4, 4, 0, 0, 1, 1),  # the kernel covers the whole input once
]


@pytest.mark.parametrize("H, K, top, bottom, S, expected", WORKED)
def test_output_size_formula(H, K, top, bottom, S, expected):
    assert textbook_size(H, K, top, bottom, S) == expected
    assert window_size(H, K, S, top, bottom, ceil=False) == expected


@pytest.mark.parametrize("H, K, top, bottom, S, expected", WORKED)
def test_layer_uses_the_formula(H, K, top, bottom, S, expected):
    conv = REGISTRY["conv2d"]
    args, problems = conv.coerce_args({"out": 1, "kernel": [K, 1], "stride": [S, 1], "padding": [top, bottom, 0, 0]})
    assert not problems
    assert conv.output_shape(args, [(1, H, 5)]) == (1, expected, 5)


@fuzz(200)
@given(H=st.integers(1, 64), K=st.integers(1, 9), top=st.integers(0, 4), bottom=st.integers(0, 4),
       S=st.integers(1, 5), D=st.integers(1, 3))
def test_formula_with_dilation(H, K, top, bottom, S, D):
    k_eff = D * (K - 1) + 1  # H' of a dilated kernel
    expected = textbook_size(H, k_eff, top, bottom, S) if H + top + bottom >= k_eff else 0
    assert window_size(H, k_eff, S, top, bottom, ceil=False) == expected


def test_same_is_ceil_of_input_over_stride():
    for n in range(1, 40):
        for k in range(1, 8):
            for s in range(1, 5):
                for d in (1, 2):
                    (top, left), (bottom, right) = resolve_padding("same", (n, n), (k, k), (s, s), (d, d))
                    k_eff = d * (k - 1) + 1
                    assert window_size(n, k_eff, s, top, bottom, ceil=False) == math.ceil(n / s)
                    assert 0 <= bottom - top <= 1  # an odd padding goes after (TensorFlow)
                    assert (top, bottom) == (left, right)


def test_same_keeps_size_at_stride_1_and_valid_pads_nothing():
    assert resolve_padding("same", (224, 224), (3, 3), (1, 1), (1, 1)) == ((1, 1), (1, 1))
    assert resolve_padding("same", (224, 224), (4, 4), (1, 1), (1, 1)) == ((1, 1), (2, 2))
    assert resolve_padding("valid", (224, 224), (3, 3), (1, 1), (1, 1)) == ((0, 0), (0, 0))
    # Keras: 'same' with a stride pads only what the last window needs: 224 / 2 with a 7x7
    assert resolve_padding("same", (224, 224), (7, 7), (2, 2), (1, 1)) == ((2, 2), (3, 3))


def test_full_padding_grows_by_kernel_minus_one():
    for n, k, d in [(5, 3, 1), (10, 4, 1), (7, 3, 2), (1, 5, 1)]:
        (top, _), (bottom, _) = resolve_padding("full", (n, n), (k, k), (1, 1), (d, d))
        k_eff = d * (k - 1) + 1
        assert top == bottom == k_eff - 1
        assert window_size(n, k_eff, 1, top, bottom, ceil=False) == n + k_eff - 1


def test_ceil_rounding_drops_a_last_window_starting_in_the_padding():
    # 5 inputs, 2x2 /2 windows, 1 padding each side: ceil((5+2-2)/2)+1 = 4 windows would start
    # at -1, 1, 3, 5; the last starts in the trailing padding, so torch (and archspec) keep 3
    assert window_size(5, 2, 2, 1, 1, ceil=True) == 3
    assert window_size(5, 2, 2, 1, 1, ceil=False) == 3
    # 6 inputs, 3 /2, no padding: floor gives 2, ceil keeps the partial window at 4 -> 3
    assert window_size(6, 3, 2, 0, 0, ceil=False) == 2
    assert window_size(6, 3, 2, 0, 0, ceil=True) == 3
    # GoogLeNet's 112 -> 56 pooling with ceil_mode (3 /2): 56, not 55
    assert window_size(112, 3, 2, 0, 0, ceil=True) == 56
    assert window_size(112, 3, 2, 0, 0, ceil=False) == 55


def test_ceil_rounding_matches_torch_exhaustively():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    checked = 0
    for n in range(1, 13):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        k_eff = d * (k - 1) + 1
                        for ceil in (False, True):
                            mine = window_size(n, k_eff, s, p, p, ceil)
                            try:
                                theirs = F.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil).shape[-1]
                            except RuntimeError:
                                theirs = 0
                            assert mine == theirs, (n, k, s, p, d, ceil)
                            checked += 1
    assert checked > 1000


def test_pool_layer_refuses_only_what_torch_refuses():
    pool = REGISTRY["maxpool2d"]
    args, _ = pool.coerce_args({"kernel": 2, "rounding": "ceil"})
    assert pool.output_shape(args, [(1, 1, 1)]) == (1, 1, 1)  # torch: one window hanging over the end
    args, _ = pool.coerce_args({"kernel": 3, "stride": 1, "rounding": "ceil"})
    with pytest.raises(ShapeError):
        pool.output_shape(args, [(1, 2, 2)])


def test_too_large_kernel_message_shows_the_padded_input():
    conv = REGISTRY["conv2d"]
    args, _ = conv.coerce_args({"out": 1, "kernel": [2, 9], "padding": [1, 0]})
    with pytest.raises(ShapeError) as info:
        conv.output_shape(args, [(3, 4, 6)])
    assert "padded input 6×6" in str(info.value) and "input 3×4×6" in str(info.value)


# ------------------------------------------------------------------ receptive fields

# VGG-16's receptive field after each conv and pool (well-known published values)
VGG16_RF = {
    "block1.conv1": 3, "block1.conv2": 5, "block1.pool1": 6,
    "block2.conv1": 10, "block2.conv2": 14, "block2.pool1": 16,
    "block3.conv1": 24, "block3.conv2": 32, "block3.conv3": 40, "block3.pool1": 44,
    "block4.conv1": 60, "block4.conv2": 76, "block4.conv3": 92, "block4.pool1": 100,
    "block5.conv1": 132, "block5.conv2": 164, "block5.conv3": 196, "block5.pool1": 212,
}


def recompute_rf(layers):
    """r_out = r_in + (k - 1) * j_in; j_out = j_in * s (Araujo et al., Distill 2019)."""
    r, j, out = 1, 1, []
    for k, s in layers:
        r, j = r + (k - 1) * j, j * s
        out.append(r)
    return out


def test_vgg16_receptive_fields():
    rows = {r.path: r for r in archspec.summarize("vgg16").rows}
    convs_and_pools = [p for p in rows if p.startswith("block") and ("conv" in p or "pool" in p)]
    assert convs_and_pools == list(VGG16_RF)
    stack = [(2, 2) if "pool" in p else (3, 1) for p in convs_and_pools]
    assert dict(zip(convs_and_pools, recompute_rf(stack))) == VGG16_RF
    for path, rf in VGG16_RF.items():
        assert rows[path].receptive_field == (rf, rf), path
    # a ReLU sees what its conv sees
    assert rows["block3.relu2"].receptive_field == rows["block3.conv2"].receptive_field


def test_field_start_with_padding():
    f = Field()
    assert f.start == (0.5, 0.5)  # pixel i covers [i, i + 1): its centre is i + 0.5
    same3 = f.window((3, 3), (1, 1), (1, 1))
    assert same3 == Field((3, 3), (1, 1), (0.5, 0.5))  # centred on pixel 0, half outside
    valid3 = f.window((3, 3), (1, 1), (0, 0))
    assert valid3.start == (1.5, 1.5)  # centred on pixel 1
    # ResNet's stem: 7x7 /2 pad 3, then 3x3 /2 pad 1
    stem = f.window((7, 7), (2, 2), (3, 3))
    assert stem == Field((7, 7), (2, 2), (0.5, 0.5))
    pooled = stem.window((3, 3), (2, 2), (1, 1))
    assert pooled == Field((11, 11), (4, 4), (0.5, 0.5))
    # asymmetric: more padding on top than on the left
    f2 = f.window((5, 5), (1, 1), (4, 0))
    assert f2.start == (-1.5, 2.5)
    # dilation 2 widens a 3x3 to 5x5
    assert f.window((3, 3), (1, 1), (0, 0), (2, 2)) == Field((5, 5), (1, 1), (2.5, 2.5))


@fuzz(25)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2)),
                min_size=1, max_size=4))
def test_field_matches_torch_gradient(layers):
    """size and start of a conv stack's field, against which input pixels get a gradient."""
    torch = pytest.importorskip("torch")
    f = Field()
    for k, s, p, d in layers:
        f = f.window((k, k), (s, s), (p, p), (d, d))
    n = 2 * f.size[0] + 4 * f.jump[0] + 8
    x = torch.zeros(1, 1, n, n, requires_grad=True)
    y = x
    for k, s, p, d in layers:
        y = torch.nn.functional.conv2d(y, torch.ones(1, 1, k, k), stride=s, padding=p, dilation=d)
    h = y.shape[-1]
    if h < 2:
        return
    i = h // 2  # a middle output, whose field lies inside the input
    (g,) = torch.autograd.grad(y[0, 0, i, i], x)
    rows = g[0, 0].abs().sum(dim=1).nonzero().flatten().tolist()
    lo, hi = rows[0], rows[-1]
    if lo == 0 or hi == n - 1:
        return  # clipped by the border
    assert hi - lo + 1 == f.size[0]
    centre = (lo + hi + 1) / 2  # in continuous coordinates
    assert centre == f.start[0] + i * f.jump[0]
