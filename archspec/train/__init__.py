"""``archspec train``: a trainer that works on any nn.Module, with runs, plots and checkpoints.

Importing this package does not import torch (the spec schema includes the train section);
the trainer's modules do, when they are used.
"""
from .config import TrainConfig

__all__ = ["TrainConfig"]
