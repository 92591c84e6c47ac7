"""inspect (filters, activations, top patches) and apply: pictures of what a network sees."""
from __future__ import annotations

import click

from ..expand import parse_overrides
from .common import fit_option, set_option, user_errors


@click.group(name="inspect")
def inspect_group():
    """Pictures of what a network's filters and layers see (imports torch)."""


@inspect_group.command(name="filters")
@click.argument("weights", metavar="RUN_OR_WEIGHTS")
@click.option("--layer", default=None, help="A conv layer's path, e.g. conv1 (default: the first).")
@click.option("--mode", type=click.Choice(["auto", "rgb", "per-channel", "mean"]), default="auto", show_default=True,
              help="rgb for 3 input channels, one tile per input channel, or their mean; auto picks.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@user_errors
def inspect_filters(weights, layer, mode, output):
    """A labelled grid of a layer's kernels (weights file or run folder), each normalised on its own."""
    from ..inspection import filters_picture

    click.echo(f"wrote {filters_picture(weights, output, layer=layer, mode=mode).path}")


@inspect_group.command(name="activations")
@click.argument("spec")
@click.argument("image", default="sample")
@click.option("--weights", "-w", metavar="RUN_OR_WEIGHTS", default=None,
              help="safetensors weights or a run folder (default: the spec's initial weights, seed 0).")
@click.option("--layer", default=None, help="Any node path, e.g. relu1 (default: the first conv2d).")
@click.option("--invert", is_flag=True, help="Invert the image first (dark digits on white paper).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@fit_option()
@set_option
@user_errors
def inspect_activations(spec, image, weights, layer, invert, output, fit, overrides):
    """Every feature map of a layer for one IMAGE (a file, or sample, sample:flower)."""
    from ..inspection import activations_picture

    picture = activations_picture(spec, weights, image, output, layer=layer, params=parse_overrides(overrides),
                                  invert=invert, fit=fit)
    click.echo(f"wrote {picture.path}")


@inspect_group.command(name="top-patches")
@click.argument("spec")
@click.option("--weights", "-w", metavar="RUN_OR_WEIGHTS", default=None,
              help="safetensors weights or a run folder (default: the spec's initial weights, seed 0).")
@click.option("--data", default=None, help="digits (default), synthetic:N, a .csv of path,label or a class folder.")
@click.option("--layer", required=True, help="Any node path, e.g. conv2 or relu2.")
@click.option("--units", type=click.IntRange(1, 256), default=8, show_default=True,
              help="How many units (channels): those with the strongest response.")
@click.option("--channels", default=None, metavar="LIST", help="These units instead, e.g. 0,3,5.")
@click.option("--k", type=click.IntRange(1, 64), default=9, show_default=True, help="Patches per unit.")
@click.option("--limit", type=click.IntRange(1), default=2000, show_default=True, help="Images to scan.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@set_option
@user_errors
def inspect_top_patches(spec, weights, data, layer, units, channels, k, limit, output, overrides):
    """For each unit of a layer, the k data patches (its receptive field) that excite it most."""
    from ..inspection import parse_channels, top_patches

    result = top_patches(spec, weights, data, layer, units=units, k=k, channels=parse_channels(channels),
                         limit=limit, params=parse_overrides(overrides), output=output)
    click.echo(f"wrote {result.picture.path}")


@click.command(name="apply")
@click.argument("spec")
@click.argument("image", default="sample")
@click.option("--signed", is_flag=True, help="Red positive, blue negative (default: |response|, white edges).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True, help="Output .png file.")
@fit_option("crop")
@set_option
@user_errors
def apply_command(spec, image, signed, output, fit, overrides):
    """Run a spec of fixed kernels (specs/filters/) on IMAGE (default: a bundled sample photo)."""
    from ..inspection import apply_filters

    result = apply_filters(spec, image, output, params=parse_overrides(overrides), signed=signed, fit=fit)
    click.echo(f"wrote {result.picture.path}")
