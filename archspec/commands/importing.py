"""import: an existing model (PyTorch module, Keras 3 file, ONNX file) written as a spec."""
from __future__ import annotations

import click

from .. import api
from ..errors import UsageError
from .common import user_errors


def parse_input(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        raise UsageError(f"--input: expected C,H,W (positive integers), found {text!r}") from None
    if not 1 <= len(shape) <= 4 or any(d < 1 for d in shape):
        raise UsageError(f"--input: expected 1 to 4 positive integers (C,H,W), found {text!r}")
    return shape


@click.command(name="import")
@click.argument("source")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="The spec to write (.yaml).")
@click.option("--input", "input_shape", metavar="C,H,W", default=None,
              help="One sample's shape (PyTorch: default 3,224,224; Keras and ONNX: read from the file).")
@click.option("--name", default=None, help="The spec's name (default: the factory's or the file's).")
@click.option("--weights", "-w", type=click.Path(dir_okay=False), default=None,
              help="Also write the source's weights as safetensors, under the spec's names.")
@user_errors
def import_command(source, output, input_shape, name, weights):
    """Write SOURCE as a spec: a .keras file, an .onnx file, or a PyTorch module as package.module:factory."""
    imported = api.import_model(source, output, input=parse_input(input_shape), name=name, weights=weights)
    lines = imported.text.count("\n")
    click.echo(f"wrote {output} ({lines} lines, {len(imported.model.layers)} layers)"
               + (f" and {weights} ({len(imported.tensors)} tensors)" if weights else ""))
