"""``archspec train``: a trainer that works on any nn.Module, with runs, plots and checkpoints.

Importing this package does not import torch (the spec schema includes the train section);
the trainer's modules do, when they are used.

The package is also callable: ``archspec.train(spec, data=..., epochs=..., **options)`` runs
``archspec.train.api.train``. A function of that name cannot sit beside the package in
``archspec`` (importing ``archspec.train.config`` binds the package to that attribute), so the
package's module takes a ``__call__``.
"""
import sys
import types

from .config import TrainConfig

__all__ = ["TrainConfig"]


class _CallablePackage(types.ModuleType):
    def __call__(self, spec, data=None, epochs=None, **options):
        from .api import train

        return train(spec, data, epochs, **options)


sys.modules[__name__].__class__ = _CallablePackage
