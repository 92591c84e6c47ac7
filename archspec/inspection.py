"""What the filters and layers of a network see: filters, feature maps and top patches (Zeiler & Fergus, 2014).

Four pictures, each a grid of tiles (``draw/tiles.py``):

- ``filters_picture``: a layer's kernels as images (the first layer of an RGB network in colour);
- ``activations_picture``: every feature map of one layer for one image;
- ``top_patches`` + ``top_patches_picture``: for some units of a layer, the k images of a data
  set that excite each most, cropped to the unit's receptive field, after Zeiler & Fergus'
  "Visualizing and Understanding Convolutional Networks" (2014), figure 2;
- ``apply_filters``: a spec of hand-picked kernels (Sobel, Laplacian...) run on an image.

The receptive field that crops a patch is the one the summary prints: ``infer`` computes it
analytically, so the crop is exact for any stack of convolutions and pools, padding included.
Any node path of a spec can be looked at (a ReLU, a pool, a branch of an Inception block): the
compiled torch.fx graph is copied with that node as its output and the rest dropped, so a
layer is read without hooks and without running what comes after it.

torch is imported inside the functions: the CLI imports this module only when a command runs.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import ArchspecError, Location, UsageError
from .weights import WeightsInfo, read_info
from .graph import INPUT, Graph
from .text import did_you_mean, listing

SAMPLES = {"china": "china.jpg", "flower": "flower.jpg"}  # scikit-learn's bundled photos, no download
MAX_TILES = 256  # maps or filters in one picture; more would be a wall of noise
BATCH = 256


def _natural(name: str) -> list:
    """Sort key reading numbers as numbers: conv2 before conv10, layer1.2 before layer1.10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _execution_order(info: WeightsInfo) -> dict[str, int] | None:
    """Each node path's position in the run's spec, when the metadata names a spec that still loads."""
    if not info.spec:
        return None
    from . import pipeline

    try:
        graph = pipeline.expand(info.spec, dict(info.params))
    except ArchspecError:
        return None
    return {node.path: i for i, node in enumerate(graph.nodes)}


# ------------------------------------------------------------------ 1. filters


def filters_picture(weights: str | os.PathLike, output: str | os.PathLike, layer: str | None = None,
                    mode: str = "auto", limit: int = MAX_TILES):
    """A labelled grid of one layer's kernels, each normalised on its own; returns the tiles.Picture.

    layer: a conv layer's path (``conv1``, ``layer1.0.conv1``; default: the first in execution
    order, from the run's spec when its metadata names one, else by name).
    mode: ``rgb`` (one colour tile per filter, for 3 input channels), ``per-channel`` (one row of
    tiles per filter, one tile per input channel), ``mean`` (the mean over input channels), or
    ``auto``: rgb for 3 channels, per-channel for 2, mean for more (and for 1, the kernel itself).
    """
    from safetensors import safe_open

    from .draw.tiles import Grid, Tile, check_output, save_grid
    from .weights import read_header

    check_output(output)
    modes = ("auto", "rgb", "per-channel", "mean")
    if mode not in modes:
        raise UsageError(f"unknown mode '{mode}'; choose one of {', '.join(modes)}")
    info = read_info(weights)
    header = read_header(info.path)
    convs = [name[:-len(".weight")] for name, entry in header.items()
             if name.endswith(".weight") and len(entry["shape"]) == 4]
    # safetensors stores tensors sorted by dtype and name, not in execution order
    order = _execution_order(info) or {}
    convs.sort(key=lambda p: (order.get(p, len(order)), _natural(p)))
    if not convs:
        raise ArchspecError("no convolution weights in this file (no 4-D '*.weight' tensor)", Location(str(info.path)))
    if layer is None:
        layer = convs[0]
    layer = layer[:-len(".weight")] if layer.endswith(".weight") else layer
    if layer not in convs:
        known = f"{layer}.weight" in header
        why = (f"'{layer}' has no convolution filters (its weight is "
               f"{'×'.join(map(str, header[layer + '.weight']['shape']))})" if known
               else f"unknown layer '{layer}'" + did_you_mean(layer, convs))
        raise UsageError(f"{why}; layers with filters: {listing(convs)}")
    with safe_open(str(info.path), framework="pt") as f:
        kernels = f.get_tensor(f"{layer}.weight").float().numpy()
    n, c, kh, kw = kernels.shape
    if mode == "auto":
        mode = "rgb" if c == 3 else "per-channel" if c == 2 else "mean"
    if mode == "rgb" and c != 3:
        raise UsageError(f"--mode rgb needs 3 input channels; {layer} has {c}")

    tiles: list[Tile] = []
    row_labels: list[str] = []
    column_labels: list[str] = []
    if mode == "per-channel":
        shown = max(1, min(n, limit // c))
        columns = min(c, limit)
        for o in range(shown):
            unit = _unit(kernels[o])  # the filter normalised as a whole, so its channels compare
            tiles.extend(Tile(unit[ch], "", "unit") for ch in range(columns))
            row_labels.append(f"filter {o}")
        column_labels = [f"channel {ch}" for ch in range(columns)]
        how = "one tile per input channel"
    else:
        shown = min(n, limit)
        for o in range(shown):
            pixels = kernels[o].transpose(1, 2, 0) if mode == "rgb" else kernels[o].mean(axis=0)
            tiles.append(Tile(pixels, str(o)))
        columns = _columns(shown)
        how = {"rgb": "in colour (R, G, B input channels)",
               "mean": "the mean over input channels" if c > 1 else "one input channel"}[mode]
    more = f" (the first {shown} of {n})" if shown < n else ""
    grid = Grid(tiles, columns, title=f"{layer}: {n} filters {kh}×{kw} over {c} channel{'s' if c != 1 else ''}{more}",
                subtitle=f"{info.path}; {how}; each filter normalised on its own: black its lowest weight, "
                         f"white its highest", row_labels=row_labels, column_labels=column_labels)
    return save_grid(grid, output)


def _unit(array):
    """``array`` scaled to [0, 1] as a whole (mid-grey when it is flat)."""
    lo, hi = float(array.min()), float(array.max())
    return (array - lo) / (hi - lo) if hi > lo else array * 0 + 0.5


def _columns(count: int) -> int:
    """Columns for ``count`` tiles: one row up to 10, else a power of two near the square root (8×8 for 64)."""
    if count <= 10:
        return max(1, count)
    return min(16, 2 ** math.ceil(math.log2(math.sqrt(count))))


# ------------------------------------------------------------------ models and layers


@dataclass
class _Loaded:
    graph: Graph
    module: Any  # the GraphModule, weights loaded, in eval mode
    mean: Any  # (C, 1, 1) tensors
    std: Any
    info: WeightsInfo | None


def _load_model(spec, weights, params: dict[str, Any] | None) -> _Loaded:
    """Compile ``spec`` (with the run's --set overrides, then ``params``) and load ``weights`` strictly."""
    import torch

    from . import pipeline
    from .compiler import compile_graph
    from .weights import load_weights

    info = read_info(weights) if weights is not None else None
    merged = {**(info.params if info else {}), **(params or {})}
    graph = pipeline.expand(spec, merged)
    if info and info.input and tuple(info.input) != tuple(graph.input_shape):
        raise ArchspecError(f"these weights were trained on inputs of {'×'.join(map(str, info.input))}, the spec "
                            f"takes {'×'.join(map(str, graph.input_shape))} (pass the run's --set options?)",
                            Location(str(info.path)))
    module = compile_graph(graph, seed=0)
    if info:
        load_weights(module, info.path)
    module.train(False)
    c = graph.input_shape[0]
    mean = _per_channel(info.mean if info else None, c, 0.0, "mean", info)
    std = _per_channel(info.std if info else None, c, 1.0, "std", info)
    return _Loaded(graph, module, torch.tensor(mean).view(c, 1, 1), torch.tensor(std).view(c, 1, 1), info)


def _per_channel(values, channels: int, default: float, what: str, info) -> list[float]:
    if values is None:
        return [default] * channels
    if len(values) == 1:
        return [float(values[0])] * channels
    if len(values) != channels:
        raise ArchspecError(f"the metadata gives {len(values)} {what} values for {channels} input channels",
                            Location(str(info.path)))
    return [float(v) for v in values]


def _resolve_layer(graph: Graph, layer: str | None, default_type: str = "conv2d") -> str:
    """A node path of the graph (default: the first node of ``default_type``)."""
    paths = [n.path for n in graph.nodes]
    if layer is None:
        for node in graph.nodes:
            if node.type == default_type:
                return node.path
        return paths[0]
    if layer not in paths:
        raise UsageError(f"unknown layer '{layer}'" + did_you_mean(layer, paths) + f"; layers: {listing(paths, 16)}")
    return layer


def _truncated(module, graph: Graph, path: str):
    """A GraphModule computing the output of node ``path`` only (what comes after is dropped)."""
    import torch.fx as fx

    # compile_graph makes one fx node per spec node, in order, except for identity layers
    calls = [n for n in module.graph.nodes if n.op in ("call_module", "call_function")]
    real = [n for n in graph.nodes if n.type != "identity"]
    assert len(calls) == len(real), "the compiled graph does not match the spec's nodes"
    fx_node = dict(zip((n.path for n in real), calls))
    while path != INPUT and path not in fx_node:  # an identity passes its input on
        path = graph.node(path).inputs[0]
    target = next(n for n in module.graph.nodes if n.op == "placeholder") if path == INPUT else fx_node[path]
    copy = fx.Graph()
    env: dict = {}
    copy.graph_copy(module.graph, env)
    copy.output(env[target])
    truncated = fx.GraphModule(module, copy)  # shares the modules: no weight is copied
    truncated.graph.eliminate_dead_code()
    truncated.delete_all_unused_submodules()
    truncated.recompile()
    return truncated


# ------------------------------------------------------------------ images


def load_image(source: Any, channels: int, size: tuple[int, int], fit: str = "stretch"):
    """An image as a float tensor (C, H, W) in [0, 1], fitted to ``size`` (H, W).

    source: a file Pillow reads; ``sample``, ``sample:china`` or ``sample:flower`` (photos bundled
    with scikit-learn: nothing is downloaded); or an array / tensor (H, W) or (C, H, W), used as
    it is (no scaling, no resizing). A file or sample goes through `archspec.images`, the decoder
    training and ``predict`` use: grey (1 channel) or RGB (3), fitted by ``fit`` ("stretch", as a
    data set's images are, or "crop": the centre at the aspect ratio of ``size``).
    """
    import numpy as np
    import torch

    from . import images

    if not isinstance(source, (str, os.PathLike)):
        given = torch.as_tensor(np.asarray(source), dtype=torch.float32)
        if given.ndim == 2:
            given = given[None]
        if given.ndim != 3 or given.shape[0] != channels:
            raise UsageError(f"an image array must be (H, W) or ({channels}, H, W), found {tuple(given.shape)}")
        return given
    if channels not in (1, 3):
        raise UsageError(f"the spec takes {channels} input channels: an image file gives 1 (grey) or 3 (RGB)")
    shape = (channels, *size)
    text = str(source)
    if text == "sample" or text.startswith("sample:"):
        from PIL import Image

        name = text.partition(":")[2] or "china"
        if name not in SAMPLES:
            raise UsageError(f"unknown sample image '{name}'" + did_you_mean(name, SAMPLES)
                             + f"; choose {', '.join('sample:' + s for s in SAMPLES)}")
        try:
            from sklearn.datasets import load_sample_image
        except ImportError:
            raise UsageError("the sample images come with scikit-learn: pip install scikit-learn") from None
        return images.picture_tensor(Image.fromarray(load_sample_image(SAMPLES[name])), shape, images.check_fit(fit))
    return images.load_image(text, shape, fit)


def _image_tile_pixels(image) -> Any:
    """(C, H, W) tensor -> what a Tile shows: (H, W) for grey, (H, W, 3) for colour."""
    array = image.detach().float().cpu().numpy()
    return array[0] if array.shape[0] != 3 else array.transpose(1, 2, 0)


def _image_name(source) -> str:
    if not isinstance(source, (str, os.PathLike)):
        return "an array"
    text = str(source)
    if text == "sample" or text.startswith("sample:"):
        return f"scikit-learn's sample photo {SAMPLES.get(text.partition(':')[2] or 'china', text)}"
    return text


# ------------------------------------------------------------------ 2. activations


@dataclass
class LayerOutput:
    graph: Graph
    layer: str  # the node path
    image: Any  # (C, H, W) tensor in [0, 1]: the image as the network was given it, before normalising
    output: Any  # the layer's output for it, one sample: (C', H', W') or (F,)


def layer_output(spec, weights, image, layer: str | None = None, params: dict[str, Any] | None = None,
                 invert: bool = False, maps_only: bool = False, fit: str = "stretch") -> LayerOutput:
    """Run one image through the network as far as ``layer`` (default: the first conv2d).

    maps_only: refuse a layer whose output is not (C, H, W), before any image is read.
    """
    import torch

    loaded = _load_model(spec, weights, params)
    graph = loaded.graph
    path = _resolve_layer(graph, layer)
    shape = graph.node(path).shape
    if maps_only and len(shape) != 3:
        spatial = [n.path for n in graph.nodes if len(n.shape) == 3]
        raise UsageError(f"layer '{path}' gives {math.prod(shape)} values, not feature maps; layers with maps: "
                         f"{listing(spatial, 16)}")
    if len(graph.input_shape) != 3:
        raise UsageError(f"the spec's input is {graph.input_shape}: not an image")
    c, h, w = graph.input_shape
    x = load_image(image, c, (h, w), fit)
    if x.shape[1:] != (h, w):
        raise UsageError(f"the image is {x.shape[1]}×{x.shape[2]}, the spec takes {h}×{w}")
    if invert:  # a dark digit on white paper, for a network trained on light digits on black
        x = 1.0 - x
    with torch.no_grad():
        out = _truncated(loaded.module, graph, path)(((x - loaded.mean) / loaded.std)[None])
    return LayerOutput(graph, path, x, out[0])


def activations_picture(spec, weights, image, output: str | os.PathLike, layer: str | None = None,
                        params: dict[str, Any] | None = None, invert: bool = False, limit: int = MAX_TILES,
                        fit: str = "stretch"):
    """The input image and every feature map of ``layer`` (default: the first conv2d) for it."""
    from .draw.tiles import Grid, Tile, check_output, save_grid

    check_output(output)
    result = layer_output(spec, weights, image, layer, params, invert, maps_only=True, fit=fit)
    graph, path, out = result.graph, result.layer, result.output
    maps = out.float().numpy()
    shown = min(len(maps), limit)
    tiles = [Tile(_image_tile_pixels(result.image), "input", "unit")]
    tiles += [Tile(maps[i], str(i), "auto") for i in range(shown)]
    more = f" (the first {shown})" if shown < len(maps) else ""
    title = f"{path} ({graph.node(path).type}): {len(maps)} feature maps {maps.shape[1]}×{maps.shape[2]}{more}"
    subtitle = (f"{_image_name(image)} through {graph.name}; each map normalised on its own "
                "(black 0 or its lowest value, white its highest)")
    return save_grid(Grid(tiles, _columns(len(tiles)), title=title, subtitle=subtitle), output)


# ------------------------------------------------------------------ 3. top patches


@dataclass(frozen=True)
class Patch:
    """One chosen position: sample ``index`` of the data, output position (y, x), the activation there."""

    index: int
    y: int
    x: int
    value: float
    label: int | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, left, bottom, right) in input pixels, may lie outside
    pixels: Any = field(default=None, compare=False, repr=False)  # (C, h, w) crop in [0, 1], grey outside


@dataclass
class TopPatches:
    layer: str
    layer_type: str
    field: Any  # layers.base.Field of the layer
    units: list[int]
    patches: dict[int, list[Patch]]  # unit -> its top k, strongest first
    scanned: int
    classes: list[str] | None = None
    spec_name: str = ""
    picture: Any = None  # tiles.Picture when a file was written


def _dataset(data, shape):
    """A LabelledImages-like object: a source string goes to archspec.data.open_data."""
    if data is None or isinstance(data, str):
        from .data import open_data

        return open_data(data, tuple(shape))
    return data


def _batches(dataset, count: int):
    import torch

    images = getattr(dataset, "images", None)
    for start in range(0, count, BATCH):
        stop = min(count, start + BATCH)
        if images is not None:
            yield start, images[start:stop].float()
        else:
            yield start, torch.stack([dataset[i][0] for i in range(start, stop)]).float()


def top_patches(spec, weights, data, layer: str, units: int = 8, k: int = 9, channels: Sequence[int] | None = None,
                limit: int = 2000, params: dict[str, Any] | None = None,
                output: str | os.PathLike | None = None) -> TopPatches:
    """For each chosen unit (channel) of ``layer``, the ``k`` images that excite it most.

    Each unit's response to an image is its largest value over all positions; the k images with
    the largest responses are kept (one patch per image, as Zeiler & Fergus show distinct
    images), each with the position of that maximum and the input patch under its receptive
    field. Units: ``channels`` when given, else the ``units`` channels with the largest response
    anywhere in the scanned data, strongest first. Only the first ``limit`` images are scanned.
    With ``output``, the picture (``top_patches_picture``) is written there too.
    """
    import torch

    from .draw.tiles import check_output
    from .infer import infer

    if output is not None:
        check_output(output)
    if k < 1 or units < 1 or limit < 1:
        raise UsageError("--k, --units and --limit must be at least 1")
    loaded = _load_model(spec, weights, params)
    graph = loaded.graph
    path = _resolve_layer(graph, layer)
    dataset = _dataset(data, graph.input_shape)
    count = min(len(dataset), limit)
    if count == 0:
        raise UsageError("the data set is empty")
    sub = _truncated(loaded.module, graph, path)
    maxima, where = [], []
    with torch.no_grad():
        for _, batch in _batches(dataset, count):
            out = sub((batch - loaded.mean) / loaded.std).float()
            out = out.reshape(out.shape[0], out.shape[1], -1) if out.ndim >= 3 else out[:, :, None]
            value, position = torch.nan_to_num(out, nan=-math.inf).max(dim=2)
            maxima.append(value)
            where.append(position)
    maxima_t, where_t = torch.cat(maxima), torch.cat(where)  # (images, channels)
    node_shape = graph.node(path).shape
    width = node_shape[2] if len(node_shape) == 3 else 1
    n_channels = maxima_t.shape[1]
    if channels:
        bad = [c for c in channels if not 0 <= c < n_channels]
        if bad:
            raise UsageError(f"layer '{path}' has channels 0 to {n_channels - 1}; no channel {bad[0]}")
        chosen = list(channels)
    else:
        strongest = maxima_t.max(dim=0).values
        chosen = sorted(range(n_channels), key=lambda c: (-float(strongest[c]), c))[:units]
    field_ = infer(graph).by_path()[path].field
    labels = getattr(dataset, "labels", None)
    result: dict[int, list[Patch]] = {}
    for unit in chosen:
        values = maxima_t[:, unit]
        top = torch.topk(values, min(k, count)).indices.tolist()  # one per image by construction
        patches = []
        for i in top:
            y, x = divmod(int(where_t[i, unit]), width)
            image, label = dataset[i]
            box = _field_box(field_, y, x)
            patches.append(Patch(i, y, x, float(values[i]), _label(label if labels is None else labels[i]), box,
                                 _crop(image, box)))
        result[unit] = patches
    classes = getattr(dataset, "classes", None) or (loaded.info.classes if loaded.info else None)
    found = TopPatches(path, graph.node(path).type, field_, chosen, result, count,
                       list(classes) if classes else None, graph.name)
    if output is not None:
        found.picture = top_patches_picture(found, output)
    return found


def parse_channels(text: str | None) -> list[int] | None:
    """``"0,3,5"`` -> [0, 3, 5]; None or empty -> None."""
    if not text:
        return None
    try:
        channels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--channels expects numbers separated by commas, e.g. 0,3,5; found {text!r}") from None
    return channels or None


def _label(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _field_box(f, y: int, x: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of output (y, x)'s receptive field: centre = start + index × jump."""
    top = math.floor(f.start[0] + y * f.jump[0] - f.size[0] / 2 + 0.5)
    left = math.floor(f.start[1] + x * f.jump[1] - f.size[1] / 2 + 0.5)
    return top, left, top + f.size[0], left + f.size[1]


def _crop(image, box: tuple[int, int, int, int]):
    """The part of ``image`` (C, H, W) under ``box``; what lies outside the image is grey."""
    import numpy as np

    array = image.detach().float().cpu().numpy() if hasattr(image, "detach") else np.asarray(image, np.float32)
    c, h, w = array.shape
    top, left, bottom, right = box
    patch = np.full((c, bottom - top, right - left), 0.5, dtype=np.float32)
    y0, y1, x0, x1 = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
    if y0 < y1 and x0 < x1:
        patch[:, y0 - top:y1 - top, x0 - left:x1 - left] = array[:, y0:y1, x0:x1]
    return patch


def top_patches_picture(result: TopPatches, output: str | os.PathLike):
    """Units as rows, their top patches as columns, strongest at the left."""
    from .draw.tiles import Grid, Tile, save_grid

    tiles, rows = [], []
    k = max(len(p) for p in result.patches.values())
    for unit in result.units:
        patches = result.patches[unit]
        rows.append(f"unit {unit}")
        for p in patches:
            name = result.classes[p.label] if result.classes and p.label is not None and 0 <= p.label < len(
                result.classes) else None
            pixels = p.pixels[0] if p.pixels.shape[0] != 3 else p.pixels.transpose(1, 2, 0)
            tiles.append(Tile(pixels, f"{name} {p.value:.3g}" if name else f"{p.value:.3g}", "unit"))
        tiles.extend(Tile([[0.5]], "", "unit") for _ in range(k - len(patches)))
    f = result.field
    title = (f"{result.layer} ({result.layer_type}): the {k} image patches that excite each unit most")
    subtitle = (f"{result.spec_name}; {result.scanned} images scanned; patch = the unit's receptive field, "
                f"{f.size[0]}×{f.size[1]} pixels (jump {f.jump[0]}), grey outside the image; label: class and "
                "activation")
    tile_px = max(48, min(112, f.size[0] * math.ceil(48 / max(1, f.size[0]))))
    return save_grid(Grid(tiles, k, title=title, subtitle=subtitle, row_labels=rows, tile_px=tile_px), output)


# ------------------------------------------------------------------ 4. fixed kernels on an image


@dataclass
class Applied:
    image: Any  # (C, H, W) tensor, the input as the network saw it
    outputs: Any  # (C', H', W') numpy array, the spec's output
    labels: list[str]  # one per output channel: the kernel's name, else "channel i"
    picture: Any = None  # tiles.Picture when a file was written


def apply_filters(spec, image: Any = "sample", output: str | os.PathLike | None = None,
                  params: dict[str, Any] | None = None, signed: bool = False, fit: str = "crop") -> Applied:
    """Run a spec of fixed kernels (conv2d ``weights:``) on an image; show each output channel.

    The image is fitted to the spec's input (see ``load_image``; arrays are used as they are); a
    photo is centre-cropped by default, not stretched, since no trained network expects stretched inputs.
    Tiles show |response| (black 0, white the strongest, so an edge is a white line whatever its
    direction) or, with ``signed``, a diverging map: red positive, blue negative, white 0.
    """
    import torch

    from . import pipeline
    from .compiler import compile_graph
    from .draw.tiles import check_output
    from .infer import infer

    if output is not None:
        check_output(output)
    graph = pipeline.expand(spec, params or {})
    learned = [f.node for f in infer(graph).figures
               if f.params.total > 0 and not (f.node.type == "conv2d" and f.node.args.get("weights") is not None)]
    if learned:
        node = learned[0]
        raise ArchspecError(f"a {node.type} with learned weights: apply runs hand-picked kernels "
                            "(conv2d with weights: sobel_x, ...); for a trained network use archspec inspect "
                            "activations", node.location, node.path)
    if len(graph.input_shape) != 3:
        raise UsageError(f"the spec's input is {graph.input_shape}: not an image")
    c, h, w = graph.input_shape
    x = load_image(image, c, (h, w), fit)
    if x.shape[1:] != (h, w):  # an array is used as it is: the spec must take its size
        raise UsageError(f"the image is {x.shape[1]}×{x.shape[2]}, the spec takes {h}×{w} (--set height=..., width=...?)")
    module = compile_graph(graph, seed=0).train(False)
    with torch.no_grad():
        out = module.double()(x.double()[None])[0]
    if out.ndim != 3:
        raise UsageError(f"the spec's output is {tuple(out.shape)}: apply shows feature maps (C, H, W)")
    outputs = out.numpy()
    labels = _kernel_labels(spec, graph, outputs.shape[0])
    applied = Applied(x, outputs, labels)
    if output is not None:
        applied.picture = _applied_picture(applied, graph, image, signed, output)
    return applied


def _applied_picture(applied: Applied, graph: Graph, image, signed: bool, output):
    from .draw.tiles import Grid, Tile, save_grid

    scale = "signed" if signed else "abs"
    tiles = [Tile(_image_tile_pixels(applied.image), "input", "unit")]
    tiles += [Tile(m, label, scale) for m, label in zip(applied.outputs, applied.labels)]
    how = ("red positive, blue negative, white 0" if signed else
           "|response|: black 0, white the strongest (99.5th percentile)")
    columns = 3 if 3 < len(tiles) <= 9 else _columns(len(tiles))
    c, h, w = graph.input_shape
    side = max(h, w)
    return save_grid(Grid(tiles, columns, title=f"{graph.name}: {len(applied.outputs)} filters on {_image_name(image)}",
                          subtitle=f"input {'grey' if c == 1 else 'RGB'} {h}×{w}; each output normalised on its own, "
                                   f"{how}", tile_px=min(400, side) if side >= 64 else None), output)


def _kernel_labels(spec, graph: Graph, channels: int) -> list[str]:
    """The name of each output channel's kernel, as the spec writes it (``sobel_x``), when one is known."""
    from .kernels import KERNELS

    convs = [n for n in graph.nodes if n.type == "conv2d" and n.args.get("out") == channels]
    if not convs:
        return [f"channel {i}" for i in range(channels)]
    node = convs[-1]
    kernels = node.args.get("weights")
    raw = _raw_weights(spec, node)
    labels = []
    for i in range(channels):
        name = None
        if isinstance(raw, str):
            name = raw
        elif isinstance(raw, list) and raw and isinstance(raw[i % len(raw)], str):
            name = raw[i % len(raw)]
        elif kernels is not None:  # a matrix written out, or a name through a parameter
            matrix = [list(row) for row in kernels[i % len(kernels)]]
            name = next((n for n, k in KERNELS.items() if k == matrix), None)
        labels.append(name if name in KERNELS else f"channel {i}")
    return labels


def _raw_weights(spec, node) -> Any:
    """The ``weights:`` value as written in the spec file, or None (through a block parameter, say)."""
    from .spec import load

    try:
        loaded = load(spec)
    except ArchspecError:
        return None
    for document in loaded.documents:
        if document.file != node.location.file:
            continue
        item: Any = document.data
        for key in node.location.key_path:
            try:
                item = item[key]
            except (KeyError, IndexError, TypeError):
                return None
        if isinstance(item, dict):
            for value in item.values():
                if isinstance(value, dict) and "weights" in value:
                    return value["weights"]
    return None
