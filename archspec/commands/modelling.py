"""compile and export: the commands that build the torch module."""
from __future__ import annotations

import click

from .. import api
from ..expand import parse_overrides
from .common import set_option, user_errors


@click.command(name="compile")
@click.argument("spec")
@click.option("--print-code", is_flag=True, help="Print the generated forward() (plain torch code).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible initial weights.")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Save the initial weights as safetensors.")
@set_option
@user_errors
def compile_command(spec, print_code, seed, save_path, overrides):
    """Compile SPEC into a torch.fx GraphModule and check it runs (imports torch)."""
    from ..weights import save_weights

    module = api.build(spec, seed=seed, **parse_overrides(overrides))
    if print_code:
        click.echo(module.code.strip())
    else:
        click.echo(module)
    if save_path:
        save_weights(module, save_path)
        click.echo(f"saved {save_path}", err=True)




@click.command()
@click.argument("spec")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), required=True, help="Output .onnx file.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="safetensors weights to load first (strict).")
@click.option("--seed", type=int, default=None, help="Seed for the initial weights when --weights is not given.")
@set_option
@user_errors
def export(spec, onnx_path, weights, seed, overrides):
    """Export SPEC to ONNX (needs: pip install 'archspec[onnx]')."""
    from ..export import export_onnx
    from ..weights import load_weights

    graph = api.expand(spec, parse_overrides(overrides))
    from ..compiler import compile_graph

    module = compile_graph(graph, seed=seed)
    if weights:
        load_weights(module, weights)
    export_onnx(module, graph.input_shape, onnx_path)
    click.echo(f"wrote {onnx_path}")
