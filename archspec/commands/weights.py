"""weights: turn published torch weights into safetensors a spec accepts."""
from __future__ import annotations

import click

from ..expand import parse_overrides
from .common import set_option, user_errors


@click.group(name="weights")
def weights_group():
    """Published weights as a starting point (see docs/pretrained.md)."""


@weights_group.command(name="convert")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True,
              help="The .safetensors file to write.")
@click.option("--spec", required=True, help="The spec the weights belong to (a file, or a zoo name).")
@click.option("--drop", multiple=True, metavar="PATTERN",
              help="Leave out tensors the spec does not have, by name pattern (repeatable), e.g. 'AuxLogits.*'.")
@set_option
@user_errors
def convert_command(source, out, spec, drop, overrides):
    """Check a torch state_dict (SOURCE: .pth, .pt, .bin or .safetensors) against SPEC, write safetensors.

    The file is read by torch's loader with weights_only=True: tensors only, never other
    pickled objects. Every missing, extra or differently shaped tensor is listed, and nothing is written
    unless all match. The result is what `archspec train SPEC --init OUT` starts from.
    """
    from ..pretrained import convert

    result = convert(source, out, spec, drop=drop, **parse_overrides(overrides))
    where = f" (the state_dict under '{result.nested}')" if result.nested else ""
    click.echo(f"wrote {result.path}: {result.tensors} tensors, {result.values:,} values{where}")
    if result.dropped:
        click.echo(f"left out {len(result.dropped)} tensors matching --drop", err=True)
