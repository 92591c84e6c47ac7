"""Spec fragments several test modules build their specs from."""

# A ResNet basic block whose projection shortcut is written once (torchvision's BasicBlock).
RESNET_BASIC_BLOCK = """\
blocks:
  basic:
    params: {c: int, stride: 1}
    body:
      - residual:
          - conv2d: {out: $c, kernel: 3, stride: $stride, padding: 1, bias: false}
          - batchnorm2d
          - relu
          - conv2d: {out: $c, kernel: 3, padding: 1, bias: false}
          - batchnorm2d
        shortcut:
          - conv2d: {out: $c, kernel: 1, stride: $stride, bias: false}
          - batchnorm2d
      - relu
"""

# A small net for 8×8 digits: trains an epoch in a fraction of a second on 2 cores.
TINY_DIGITS = """
archspec: 1
name: tiny
input: [1, 8, 8]
params: {classes: 10}
layers:
  - {conv2d: {out: 8, kernel: 3, padding: 1}, name: conv1}
  - relu
  - {maxpool2d: {kernel: 2}, name: pool}
  - flatten
  - {dense: {out: 32}, name: fc}
  - relu
  - {dense: {out: $classes}, name: head}
  - softmax
"""

# No batch norm (its statistics are per process) and no dropout (its masks are per process): trained
# by several processes on the same global batch, it ends with the weights of one.
PLAIN_8X8 = """
archspec: 1
name: plain
input: [1, 8, 8]
params: {classes: 4}
layers:
  - {conv2d: {out: 6, kernel: 3, padding: 1}, name: conv1}
  - relu
  - {maxpool2d: {kernel: 2}}
  - flatten
  - {dense: {out: $classes}, name: head}
"""

# Members of torchvision's families in the zoo that differ from another member only in widths and
# depths: the generic per-spec checks (compile, draw, autograd's memory) run on that other member;
# test_zoo_torchvision.py checks every member's figures and state_dict keys. Running each check on
# every member would cost minutes and exercise no other code.
ZOO_SIBLINGS = frozenset({"densenet169", "densenet201", "squeezenet1_0", "mobilenet_v3_large",
                          *(f"efficientnet_b{i}" for i in range(1, 8)), "wide_resnet50_2"})


def zoo_representatives(names: list[str]) -> list[str]:
    """The zoo's specs less ZOO_SIBLINGS."""
    return [name for name in names if name not in ZOO_SIBLINGS]
