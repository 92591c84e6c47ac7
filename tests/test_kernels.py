"""Named fixed kernels for conv2d's ``weights:`` and worked examples from courses (an edge detector, a batch-norm exercise).

Every expected number here is copied from the course or computed by formula / plain Python in
the test itself, never taken from archspec.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec.kernels import KERNELS  # noqa: E402


# ---------------------------------------------------------------- helpers

def xcorr(image, kernel, stride=1, padding=0):
    """Plain-Python cross-correlation (the kernel is not flipped), as the slides compute by hand."""
    if padding:
        w = len(image[0]) + 2 * padding
        image = ([[0] * w for _ in range(padding)]
                 + [[0] * padding + list(row) + [0] * padding for row in image]
                 + [[0] * w for _ in range(padding)])
    kh, kw = len(kernel), len(kernel[0])
    oh = (len(image) - kh) // stride + 1
    ow = (len(image[0]) - kw) // stride + 1
    return [[sum(kernel[u][v] * image[i * stride + u][j * stride + v] for u in range(kh) for v in range(kw))
             for j in range(ow)] for i in range(oh)]


def run(module, image):
    """One single-channel image (list of rows) through the module -> list of rows per output channel."""
    x = torch.tensor(image, dtype=torch.float64)[None, None]
    with torch.no_grad():
        y = module.double()(x)
    return y[0].tolist()


def single_conv(spec_file, conv: str, size: int = 6, channels: int = 1, extra: str = ""):
    path = spec_file(f"""
        archspec: 1
        name: k
        input: [{channels}, {size}, {size}]
        {extra}
        layers:
          - {{conv2d: {conv}, name: conv}}
        """)
    return path


def assert_close(actual, expected, tol=1e-9):
    assert len(actual) == len(expected)
    for row_a, row_e in zip(actual, expected):
        assert len(row_a) == len(row_e)
        for a, e in zip(row_a, row_e):
            assert abs(a - e) <= tol, (actual, expected)


# ---------------------------------------------------------------- worked examples from courses

def test_course_vertical_edge_detector(spec_file):
    # A. Ng's Convolutional Neural Networks course (deeplearning.ai): a 6x6 image, bright (10) on the left half, dark (0) on the right.
    image = [[10, 10, 10, 0, 0, 0] for _ in range(6)]
    module = archspec.build(single_conv(spec_file, "{out: 1, kernel: 3, weights: vertical_edge}"))
    (out,) = run(module, image)
    # 4x4, and the edge shows as a bright band in the middle: columns 0, 30, 30, 0.
    assert out == [[0, 30, 30, 0]] * 4
    assert out == xcorr(image, [[1, 0, -1]] * 3)


def test_6x6_conv_3x3_gives_4x4(spec_file):
    image = [[3, 0, 1, 2, 7, 4],
             [1, 5, 8, 9, 3, 1],
             [2, 7, 2, 5, 1, 3],
             [0, 1, 3, 1, 7, 8],
             [4, 2, 1, 6, 2, 8],
             [2, 4, 5, 2, 3, 9]]
    expected = [[-5, -4, 0, 8],
                [-10, -2, 2, 3],
                [0, -2, -4, -7],
                [-3, -2, -3, -16]]
    module = archspec.build(single_conv(spec_file, "{out: 1, kernel: 3, weights: vertical_edge}"))
    (out,) = run(module, image)
    assert out == expected
    assert xcorr(image, KERNELS["vertical_edge"]) == expected


def test_7x7_stride2_explicit_kernel(spec_file):
    image = [[2, 3, 7, 4, 6, 2, 9],
             [6, 6, 9, 8, 7, 4, 3],
             [3, 4, 8, 3, 8, 9, 7],
             [7, 8, 3, 6, 6, 3, 4],
             [4, 2, 1, 8, 3, 4, 6],
             [3, 2, 4, 1, 9, 8, 3],
             [0, 1, 3, 9, 2, 1, 4]]
    kernel = [[3, 4, 4],
              [1, 0, 2],
              [-1, 0, 3]]
    # The slide prints [[91, 100, 83], [69, 91, 127], [44, 72, 74]], but two of its entries are
    # arithmetic slips: by hand, (0,2) = 6*3 + 2*4 + 9*4 + 7*1 + 4*0 + 3*2 + 8*(-1) + 9*0 + 7*3 = 88
    # (not 83) and (1,2) = 8*3 + 9*4 + 7*4 + 6*1 + 3*0 + 4*2 + 3*(-1) + 4*0 + 6*3 = 117 (not 127).
    true_result = [[91, 100, 88],
                   [69, 91, 117],
                   [44, 72, 74]]
    assert 6 * 3 + 2 * 4 + 9 * 4 + 7 * 1 + 4 * 0 + 3 * 2 + 8 * (-1) + 9 * 0 + 7 * 3 == 88
    assert 8 * 3 + 9 * 4 + 7 * 4 + 6 * 1 + 3 * 0 + 4 * 2 + 3 * (-1) + 4 * 0 + 6 * 3 == 117
    assert xcorr(image, kernel, stride=2) == true_result  # an independent computation

    path = spec_file("""
        archspec: 1
        name: slide
        input: [1, 7, 7]
        layers:
          - conv2d: {out: 1, kernel: 3, stride: 2, bias: false, weights: [[3, 4, 4], [1, 0, 2], [-1, 0, 3]]}
        """)
    # output size (7 - 3) / 2 + 1 = 3, analytically and when run
    assert (7 - 3) // 2 + 1 == 3
    assert archspec.expand(path).nodes[-1].shape == (1, 3, 3)
    (out,) = run(archspec.build(path), image)
    assert out == true_result


def test_course_batchnorm_exercise(spec_file):
    path = spec_file("""
        archspec: 1
        name: bn
        input: [1, 2, 2]
        layers:
          - {batchnorm2d: {eps: 0}, name: bn}
        """)
    module = archspec.build(path)
    with torch.no_grad():
        module.bn.weight.fill_(1.5)
        module.bn.bias.fill_(0.0)
    module.train()
    samples = [[[1, 3], [2, 4]], [[5, 7], [6, 8]]]
    x = torch.tensor(samples, dtype=torch.float64)[:, None]  # 2 samples, 1 channel, 2x2
    with torch.no_grad():
        y = module.double()(x)
    # by hand: mean of 1..8 = 4.5; biased variance = sum((v - 4.5)^2) / 8 = 42 / 8 = 5.25
    values = [v for s in samples for row in s for v in row]
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    assert mean == 4.5 and var == 5.25
    expected = [[[1.5 * (v - 4.5) / math.sqrt(5.25) for v in row] for row in s] for s in samples]
    for n in range(2):
        assert_close(y[n, 0].tolist(), expected[n], 1e-12)
    # e.g. the smallest input, 1 -> 1.5 * (-3.5) / sqrt(5.25) = -2.2913
    assert y[0, 0, 0, 0].item() == pytest.approx(-2.29128784747792, abs=1e-12)
    # the running statistics take the unbiased variance 42 / 7 = 6 with momentum 0.1
    assert module.bn.running_mean.item() == pytest.approx(0.1 * 4.5)
    assert module.bn.running_var.item() == pytest.approx(0.9 * 1 + 0.1 * 6.0)


# ---------------------------------------------------------------- every named kernel

@pytest.mark.parametrize("name", sorted(KERNELS))
def test_named_kernel_compiles_and_applies(spec_file, name):
    path = single_conv(spec_file, f"{{out: 1, kernel: 3, weights: {name}}}", size=5)
    module = archspec.build(path)
    assert module.conv.weight.shape == (1, 1, 3, 3)
    assert_close(module.conv.weight[0, 0].tolist(), KERNELS[name], 1e-7)
    assert module.conv.bias.tolist() == [0.0]
    image = [[(3 * i + 7 * j) % 5 - 2 for j in range(5)] for i in range(5)]
    (out,) = run(module, image)
    assert_close(out, xcorr(image, KERNELS[name]), 1e-6)  # 1/9 and 1/16 are float32 in the module


def test_named_kernels_are_3x3():
    for name, kernel in KERNELS.items():
        assert len(kernel) == 3 and all(len(row) == 3 for row in kernel), name


def test_cross_correlation_not_convolution(spec_file):
    # A one-hot image: cross-correlation returns the kernel rotated by 180 degrees around the
    # bright pixel (a true convolution would return the kernel itself), and a 3x3 image with the
    # one at the top-left corner picks out the kernel's top-left entry.
    kernel = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 5, 5]
        layers:
          - {conv2d: {out: 1, kernel: 3, padding: 1, weights: [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}, name: conv}
        """)
    impulse = [[1 if (i, j) == (2, 2) else 0 for j in range(5)] for i in range(5)]
    (out,) = run(archspec.build(path), impulse)
    rotated = [row[::-1] for row in kernel[::-1]]
    assert [row[1:4] for row in out[1:4]] == rotated
    assert [row[1:4] for row in out[1:4]] != kernel

    corner = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    module = archspec.build(single_conv(spec_file, "{out: 1, kernel: 3, weights: sobel_x}", size=3))
    (out,) = run(module, corner)
    assert out == [[KERNELS["sobel_x"][0][0]]]  # 1: unflipped (convolution would give -1)


def test_list_of_names_one_kernel_per_output(spec_file):
    path = single_conv(spec_file, "{out: 2, kernel: 3, weights: [sobel_x, sobel_y]}")
    module = archspec.build(path)
    assert module.conv.weight[0, 0].tolist() == KERNELS["sobel_x"]
    assert module.conv.weight[1, 0].tolist() == KERNELS["sobel_y"]
    image = [[(i * i + 2 * j) % 7 for j in range(6)] for i in range(6)]
    sx, sy = run(module, image)
    assert sx == xcorr(image, KERNELS["sobel_x"])
    assert sy == xcorr(image, KERNELS["sobel_y"])


def test_one_name_for_every_output_and_every_input_channel(spec_file):
    path = single_conv(spec_file, "{out: 3, kernel: 3, weights: laplacian4}", channels=2)
    module = archspec.build(path)
    assert module.conv.weight.shape == (3, 2, 3, 3)
    for o in range(3):
        for c in range(2):
            assert module.conv.weight[o, c].tolist() == KERNELS["laplacian4"]
    a = [[(i + 3 * j) % 4 for j in range(6)] for i in range(6)]
    b = [[(2 * i + j) % 5 for j in range(6)] for i in range(6)]
    x = torch.tensor([a, b], dtype=torch.float64)[None]
    with torch.no_grad():
        y = module.double()(x)[0]
    expected = [[p + q for p, q in zip(ra, rb)]
                for ra, rb in zip(xcorr(a, KERNELS["laplacian4"]), xcorr(b, KERNELS["laplacian4"]))]
    for o in range(3):
        assert y[o].tolist() == expected


# ---------------------------------------------------------------- located validation errors

def _problem_lines(problems):
    return {p.location.line for p in problems if p.location is not None}


def test_unknown_kernel_name_is_located_with_did_you_mean(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - conv2d: {out: 2, kernel: 3, weights: [sobel_x, sobel_z]}
        """)
    problems = archspec.validate(path)
    assert problems
    assert _problem_lines(problems) == {5}
    assert all(p.location.file == str(path) for p in problems)
    assert any("unknown kernel 'sobel_z'" in p.message and "did you mean 'sobel_y'" in p.message for p in problems)


def test_wrong_kernel_count_is_located(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - relu
          - conv2d: {out: 3, kernel: 3, weights: [sobel_x, sobel_y]}
        """)
    problems = archspec.validate(path)
    assert len(problems) == 1
    assert problems[0].location.line == 6
    assert "2 kernels for out: 3" in problems[0].message


def test_wrong_kernel_size_is_located(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - conv2d: {out: 1, kernel: 5, weights: sobel_x}
        """)
    problems = archspec.validate(path)
    assert len(problems) == 1
    assert problems[0].location.line == 5
    assert "3×3 kernel but kernel is 5×5" in problems[0].message


@pytest.mark.parametrize("weights, words", [
    ("[[1, 2], [3]]", "rows of equal length"),
    ("[[1, 2], [3, x]]", ""),
    ("42", ""),
])
def test_malformed_kernel_matrices_are_located(spec_file, weights, words):
    path = spec_file(f"""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - conv2d: {{out: 1, kernel: 2, weights: {weights}}}
        """)
    problems = archspec.validate(path)
    assert problems
    assert _problem_lines(problems) == {5}
    if words:
        assert any(words in p.message for p in problems)


def test_every_mistake_is_reported_at_once(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - {conv2d: {out: 3, kernel: 3, weights: [sobel_x, sobel_y]}, from: input, name: a}
          - {conv2d: {out: 1, kernel: 5, weights: box}, from: input, name: b}
          - {conv2d: {out: 1, kernel: 3, weights: gausian}, from: input, name: c}
        """)
    problems = archspec.validate(path)
    assert {5, 6, 7} <= _problem_lines(problems)


# ---------------------------------------------------------------- trainable, init, bias

def test_trainable_false_counts_as_non_trainable(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 8, 8]
        layers:
          - {conv2d: {out: 2, kernel: 3, weights: [sobel_x, sobel_y]}, trainable: false, name: edges}
          - {conv2d: {out: 4, kernel: 3}, name: learned}
        """)
    totals = archspec.summarize(path).totals
    fixed = 2 * 9 + 2  # weights and biases of the fixed convolution
    learned = 4 * 2 * 9 + 4
    assert totals.params == fixed + learned
    assert totals.non_trainable_params == fixed
    assert totals.trainable_params == learned
    module = archspec.build(path)
    assert not module.edges.weight.requires_grad and not module.edges.bias.requires_grad
    assert module.learned.weight.requires_grad and module.learned.bias.requires_grad
    # a training step leaves the fixed kernels as they are
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1)
    module(torch.randn(2, 1, 8, 8)).square().mean().backward()
    optimizer.step()
    assert module.edges.weight[0, 0].tolist() == KERNELS["sobel_x"]
    assert module.edges.weight.grad is None


def test_fixed_kernels_trainable_by_default(spec_file):
    module = archspec.build(single_conv(spec_file, "{out: 1, kernel: 3, weights: sobel_x}"))
    assert module.conv.weight.requires_grad


def test_fixed_kernels_are_not_reinitialised_by_spec_init(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 8, 8]
        init: {constant: {value: 7}}
        layers:
          - {conv2d: {out: 2, kernel: 3, weights: [laplacian8, line_45]}, name: fixed}
          - {conv2d: {out: 2, kernel: 3}, name: learned}
        """)
    module = archspec.build(path, seed=0)
    assert module.fixed.weight[0, 0].tolist() == KERNELS["laplacian8"]
    assert module.fixed.weight[1, 0].tolist() == KERNELS["line_45"]
    assert module.fixed.bias.tolist() == [0.0, 0.0]
    assert (module.learned.weight == 7).all()
    assert (module.learned.bias == 0).all()


def test_fixed_kernels_are_not_reinitialised_by_item_init(spec_file):
    path = spec_file("""
        archspec: 1
        name: k
        input: [1, 6, 6]
        layers:
          - {conv2d: {out: 1, kernel: 3, weights: box_blur}, init: zeros, name: conv}
        """)
    module = archspec.build(path, seed=3)
    assert_close(module.conv.weight[0, 0].tolist(), KERNELS["box_blur"], 1e-7)


def test_fixed_kernel_bias_starts_at_zero_and_no_bias_means_none(spec_file):
    for seed in (0, 1, 2):
        module = archspec.build(single_conv(spec_file, "{out: 3, kernel: 3, weights: gaussian}"), seed=seed)
        assert module.conv.bias.tolist() == [0.0, 0.0, 0.0]
    module = archspec.build(single_conv(spec_file, "{out: 1, kernel: 3, bias: false, weights: gaussian}"))
    assert module.conv.bias is None


def test_summary_marks_fixed_kernels(spec_file):
    summary = archspec.summarize(single_conv(spec_file, "{out: 2, kernel: 3, weights: [sobel_x, sobel_y]}"))
    assert "fixed" in str(summary.to_dict())
