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
