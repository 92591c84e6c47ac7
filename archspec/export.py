"""Export a compiled spec to ONNX (optional extra: ``pip install archspec[onnx]``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import ArchspecError, UsageError
from .files import atomic_write


def export_onnx(module, input_shape, path: str | os.PathLike, batch: int = 1, check: bool = True,
                opset: int | None = None) -> Path:
    """Write ``module`` as ONNX with a dynamic batch axis, then check it with onnx.checker."""
    try:
        import onnx
    except ImportError:
        raise UsageError("ONNX export needs the onnx package: pip install 'archspec[onnx]'") from None
    import torch

    module = module.train(False)  # inference mode for export
    example = torch.randn(batch, *input_shape)

    def write(tmp: str) -> None:
        kwargs: dict[str, Any] = dict(input_names=["x"], output_names=["y"], opset_version=opset)
        try:  # the TorchScript exporter keeps the batch axis dynamic and needs only onnx
            torch.onnx.export(module, (example,), tmp, dynamo=False,
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **kwargs)
        except TypeError:  # a torch without the dynamo switch
            torch.onnx.export(module, (example,), tmp, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              **kwargs)
        if check:
            try:
                onnx.checker.check_model(onnx.load(tmp))
            except onnx.checker.ValidationError as exc:
                raise ArchspecError(f"the exported model fails onnx.checker: {exc}") from None

    atomic_write(Path(path), write)
    return Path(path)
