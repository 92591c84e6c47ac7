"""Hand-picked convolution kernels, by name, for conv2d's ``weights:`` (Sobel, Prewitt, Laplacian, line detectors, blurs).

Deep-learning "convolution" is cross-correlation: these kernels are applied as written, not
flipped. So ``vertical_edge`` ([1 0 -1] on each row) gives +30 on a bright-to-dark step from
10 to 0, as in the edge-detection example of A. Ng's Convolutional Neural Networks course (deeplearning.ai).
"""
from __future__ import annotations

from typing import Any

KERNELS: dict[str, list[list[float]]] = {
    # edges: bright-to-dark transitions give positive responses
    "vertical_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal_edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "sobel_x": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "sobel_y": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "scharr_x": [[3, 0, -3], [10, 0, -10], [3, 0, -3]],
    "scharr_y": [[3, 10, 3], [0, 0, 0], [-3, -10, -3]],
    "prewitt_x": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "prewitt_y": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    # second derivative
    "laplacian4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    # smoothing
    "box_blur": [[1 / 9] * 3 for _ in range(3)],
    "gaussian_blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    # line detectors: a bright one-pixel line on a dark background
    "line_horizontal": [[-1, -1, -1], [2, 2, 2], [-1, -1, -1]],
    "line_vertical": [[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]],
    "line_45": [[-1, -1, 2], [-1, 2, -1], [2, -1, -1]],
    "line_135": [[2, -1, -1], [-1, 2, -1], [-1, -1, 2]],
}
KERNELS["gaussian"] = KERNELS["gaussian_blur"]
KERNELS["box"] = KERNELS["box_blur"]

MAX_KERNEL_SIDE = 64


def is_matrix(value: Any) -> bool:
    return (isinstance(value, list) and bool(value) and all(isinstance(row, list) and row for row in value)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in value for v in row))


def resolve(value: Any) -> list[list[list[float]]]:
    """A name, a matrix, or a list of names/matrices -> one matrix per output channel.

    Raises ValueError with a message naming what is wrong.
    """
    from .text import did_you_mean

    if isinstance(value, str) or is_matrix(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a kernel name, a matrix [[...], ...], or a list of them (one per output)")
    kernels = []
    for item in value:
        if isinstance(item, str):
            if item not in KERNELS:
                raise ValueError(f"unknown kernel '{item}'" + did_you_mean(item, KERNELS)
                                 + f"; known: {', '.join(sorted(KERNELS))}")
            kernels.append(KERNELS[item])
        elif is_matrix(item):
            if len({len(row) for row in item}) != 1:
                raise ValueError("a kernel matrix needs rows of equal length")
            if len(item) > MAX_KERNEL_SIDE or len(item[0]) > MAX_KERNEL_SIDE:
                raise ValueError(f"a kernel matrix may be at most {MAX_KERNEL_SIDE}×{MAX_KERNEL_SIDE}")
            kernels.append([[float(v) for v in row] for row in item])
        else:
            raise ValueError(f"expected a kernel name or a matrix, found {item!r}")
    return kernels
