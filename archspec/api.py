"""The public Python API: the functions ``import archspec`` offers, and the CLI's commands call.

Internal modules import the pipeline from ``archspec.pipeline``, never this facade.
"""
from __future__ import annotations

from .pipeline import build, check, expand, summarize, validate


def import_model(source, output=None, *, input=None, name=None, weights=None):
    """An existing model (``pkg.module:factory`` or an nn.Module, a ``.keras`` or ``.onnx`` file) as a spec.

    Returns the ``Imported`` result (``.text``, ``.tensors``); writes ``output`` and ``weights``
    when given, and nothing when the model has layers the catalogue lacks (``SpecError``).
    """
    from .importer import import_model as _import  # the readers import torch, onnx, h5py when used

    return _import(source, output, input=input, name=name, weights=weights)


__all__ = ["build", "check", "expand", "import_model", "summarize", "validate"]
