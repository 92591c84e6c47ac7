"""What filters and layers see : filters, feature maps, top patches, fixed kernels on images.

Weights come from ``archspec.build`` + ``save_weights`` (never from the trainer); every number
that a test compares with is recomputed here with plain torch, not taken from archspec.inspection.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

import archspec  # noqa: E402
from archspec import inspection as ins  # noqa: E402
from archspec.errors import ArchspecError, UsageError  # noqa: E402
from archspec.weights import read_info, resolve_weights, save_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILTERS = ROOT / "specs" / "filters"
SCHEMA_LINE = "# yaml-language-server: $schema=../../schemas/archspec.schema.json"

# 'zeta' runs first although it sorts last: the default layer must come from the spec's order
NET = """
    archspec: 1
    name: tiny
    input: [1, 12, 12]
    params: {classes: 3}
    layers:
      - {conv2d: {out: 4, kernel: 3, padding: 1}, name: zeta}
      - relu
      - {maxpool2d: {kernel: 2}, name: pool}
      - {conv2d: {out: 6, kernel: 3}, name: alpha}
      - {relu, name: act}
      - {dropout: {p: 0.5}, name: drop}
      - flatten
      - {linear: {out: $classes}, name: out}
    """


@pytest.fixture
def net(spec_file, tmp_path):
    """(spec path, weights path, the module the weights came from)."""
    spec = spec_file(NET, "tiny.yaml")
    module = archspec.build(spec, seed=0).eval()
    weights = save_weights(module, tmp_path / "tiny.safetensors", metadata={
        "archspec.spec": str(spec), "archspec.classes": json.dumps(["a", "b", "c"]),
        "archspec.mean": "[0.25]", "archspec.std": "[0.5]", "archspec.input": "[1, 12, 12]",
        "archspec.params": "{}"})
    return spec, weights, module


def tiles_in(path) -> int:
    with Image.open(path) as image:
        return int(image.text["archspec.tiles"])


def grey_image(path: Path, rows) -> Path:
    Image.fromarray(np.asarray(rows, dtype=np.uint8), "L").save(path)
    return path


class Digits:
    """A LabelledImages stand-in held in memory: random blobs, so units respond differently."""

    def __init__(self, n=60, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 1, 12, 12, generator=g) ** 3
        self.labels = torch.arange(n) % 3
        self.classes = ["a", "b", "c"]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


# ---------------------------------------------------------------- weights files and run folders


def test_run_folder_prefers_best_then_last(tmp_path, net):
    _, weights, _ = net
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(UsageError, match="no best.safetensors or last.safetensors"):
        resolve_weights(run)
    (run / "last.safetensors").write_bytes(weights.read_bytes())
    assert resolve_weights(run) == run / "last.safetensors"
    (run / "best.safetensors").write_bytes(weights.read_bytes())
    assert resolve_weights(run) == run / "best.safetensors"
    info = read_info(run)
    assert info.classes == ["a", "b", "c"] and info.mean == [0.25] and info.input == (1, 12, 12)


def test_malformed_metadata_is_named(tmp_path, net):
    _, _, module = net
    bad = save_weights(module, tmp_path / "bad.safetensors", metadata={"archspec.mean": "[0.5, oops]"})
    with pytest.raises(ArchspecError, match="archspec.mean"):
        read_info(bad)


# ---------------------------------------------------------------- 1. filters


def test_filters_default_layer_follows_the_spec_order(tmp_path, net):
    _, weights, _ = net
    picture = ins.filters_picture(weights, tmp_path / "f.png")
    assert picture.tiles == 4 and tiles_in(picture.path) == 4  # zeta: 4 filters over 1 channel
    assert picture.labels == ("0", "1", "2", "3")


def test_filters_without_a_spec_fall_back_to_names(tmp_path, net):
    _, _, module = net
    plain = save_weights(module, tmp_path / "plain.safetensors")  # as `archspec compile --save` writes
    picture = ins.filters_picture(plain, tmp_path / "f.png")
    assert picture.tiles == 6  # alpha sorts first: its 6 filters, averaged over 4 channels


def test_filter_tiles_per_channel_and_mean(tmp_path, net):
    _, weights, module = net
    per = ins.filters_picture(weights, tmp_path / "p.png", layer="alpha", mode="per-channel")
    assert (per.rows, per.columns, per.tiles) == (6, 4, 24)
    mean = ins.filters_picture(weights, tmp_path / "m.png", layer="alpha.weight")
    assert mean.tiles == 6  # auto: the mean over 4 channels
    # a per-channel tile shows the filter scaled as a whole: its channels stay comparable
    with Image.open(per.path) as image:
        pixels = np.asarray(image.convert("L"))
    w = module.alpha.weight[0].detach().numpy()
    lo, hi = w.min(), w.max()
    for ch in range(4):
        left, top, right, bottom = per.boxes[ch]
        step = (right - left) // 3
        shown = pixels[top + step // 2:bottom:step, left + step // 2:right:step]
        assert np.abs(shown.astype(float) - (w[ch] - lo) / (hi - lo) * 255).max() <= 1.0


def test_filters_in_colour_for_three_channels(tmp_path, spec_file):
    spec = spec_file("""
        archspec: 1
        name: rgb
        input: [3, 8, 8]
        layers:
          - {conv2d: {out: 5, kernel: 3}, name: conv1}
        """, "rgb.yaml")
    module = archspec.build(spec, seed=1)
    weights = save_weights(module, tmp_path / "rgb.safetensors")
    picture = ins.filters_picture(weights, tmp_path / "rgb.png")
    assert picture.tiles == 5
    with Image.open(picture.path) as image:
        left, top, right, bottom = picture.boxes[0]
        tile = np.asarray(image.convert("RGB"))[top:bottom, left:right].astype(int)
    assert np.abs(tile[..., 0] - tile[..., 1]).max() > 20  # colour, not grey
    with pytest.raises(UsageError, match="rgb needs 3"):
        ins.filters_picture(save_weights(archspec.build(FILTERS / "edges.yaml"), tmp_path / "e.safetensors"),
                            tmp_path / "x.png", mode="rgb")


def test_filters_unknown_or_dense_layer_lists_the_conv_layers(tmp_path, net):
    _, weights, _ = net
    with pytest.raises(UsageError, match=r"unknown layer 'alpah' \(did you mean 'alpha'\?\); layers with filters: "
                                         r"zeta, alpha"):
        ins.filters_picture(weights, tmp_path / "f.png", layer="alpah")
    with pytest.raises(UsageError, match="'out' has no convolution filters"):
        ins.filters_picture(weights, tmp_path / "f.png", layer="out")


# ---------------------------------------------------------------- 2. activations


def test_activations_one_tile_per_map_plus_the_input(tmp_path, net):
    spec, weights, _ = net
    image = grey_image(tmp_path / "in.png", np.arange(144).reshape(12, 12))
    picture = ins.activations_picture(spec, weights, image, tmp_path / "a.png")
    assert picture.tiles == 1 + 4 and picture.labels[0] == "input"  # default: the first conv2d
    picture = ins.activations_picture(spec, weights, image, tmp_path / "a.png", layer="act")
    assert tiles_in(picture.path) == 1 + 6


def test_layer_output_is_the_network_computed_by_hand(tmp_path, net):
    spec, weights, module = net
    rows = (np.indices((12, 12)).sum(axis=0) * 10).clip(0, 255)
    image = grey_image(tmp_path / "in.png", rows)
    x = torch.tensor(rows / 255.0, dtype=torch.float32)[None, None]
    x = (x - 0.25) / 0.5  # the metadata's normalisation
    with torch.no_grad():
        expected = torch.relu(module.alpha(module.pool(torch.relu(module.zeta(x)))))[0]
    for layer in ("act", "drop"):  # dropout is the identity in eval mode
        got = ins.layer_output(spec, weights, image, layer).output
        assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(ins.layer_output(spec, weights, image, "relu1").image, x[0] * 0.5 + 0.25, atol=1e-6)


def test_activations_refuse_dense_layers_and_unknown_layers(tmp_path, net):
    spec, weights, _ = net
    with pytest.raises(UsageError, match="layer 'out' gives 3 values, not feature maps; layers with maps: zeta"):
        ins.activations_picture(spec, weights, "sample", tmp_path / "a.png", layer="out")
    with pytest.raises(UsageError, match="unknown layer 'zeat'.*did you mean 'zeta'"):
        ins.activations_picture(spec, weights, "sample", tmp_path / "a.png", layer="zeat")


def test_unreadable_missing_and_huge_images_are_named(tmp_path, net):
    spec, weights, _ = net
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(ArchspecError, match="cannot read image") as info:
        ins.activations_picture(spec, weights, tmp_path / "junk.png", tmp_path / "a.png")
    assert info.value.problem.location.file == str(tmp_path / "junk.png")
    with pytest.raises(ArchspecError, match="no such file"):
        ins.activations_picture(spec, weights, tmp_path / "nothere.png", tmp_path / "a.png")
    Image.new("1", (8200, 8000)).save(tmp_path / "huge.png")  # 65.6 megapixels, a few kB on disk
    with pytest.raises(ArchspecError, match="megapixels"):
        ins.load_image(tmp_path / "huge.png", 1, (12, 12))


def test_images_are_fitted_to_the_spec(tmp_path):
    wide = grey_image(tmp_path / "wide.png", np.tile(np.r_[np.zeros(10), np.full(20, 255), np.zeros(10)], (10, 1)))
    x = ins.load_image(wide, 1, (10, 10), fit="crop")  # centre crop 10 of 40 columns: all bright
    assert x.shape == (1, 10, 10) and x.min() > 0.99
    stretched = ins.load_image(wide, 1, (10, 10))  # the default, as training fits its images
    assert stretched[0, :, 0].max() == 0 and stretched[0, :, 5].min() > 0.99
    with pytest.raises(UsageError, match="fit must be 'stretch' or 'crop'"):
        ins.load_image(wide, 1, (10, 10), fit="pad")
    rgb = ins.load_image(wide, 3, (5, 5))
    assert rgb.shape == (3, 5, 5)
    with pytest.raises(UsageError, match="unknown sample image 'dog'"):
        ins.load_image("sample:dog", 1, (5, 5))


# ---------------------------------------------------------------- 3. top patches


def per_image_maxima(module, images, layer):
    """Each image's largest value per channel of ``layer``, computed by hand."""
    x = (images - 0.25) / 0.5
    with torch.no_grad():
        a = torch.relu(module.zeta(x))
        if layer == "pool":
            a = module.pool(a)
        elif layer == "act":
            a = torch.relu(module.alpha(module.pool(a)))
    return a, a.flatten(2).max(dim=2).values  # (N, C, H, W), (N, C)


@pytest.mark.parametrize("layer", ["relu1", "pool", "act"])
def test_top_patches_are_the_top_k_activations(net, layer):
    spec, weights, module = net
    data = Digits()
    k = 5
    result = ins.top_patches(spec, weights, data, layer, units=3, k=k)
    maps, maxima = per_image_maxima(module, data.images, layer)
    strongest = maxima.max(dim=0).values
    assert result.units == sorted(range(maxima.shape[1]), key=lambda c: -float(strongest[c]))[:3]
    assert result.scanned == len(data)
    for unit in result.units:
        patches = result.patches[unit]
        assert len(patches) == k
        assert len({p.index for p in patches}) == k  # distinct images
        expected = torch.sort(maxima[:, unit], descending=True).values[:k]
        assert torch.allclose(torch.tensor([p.value for p in patches]), expected, atol=1e-5)
        for p in patches:
            assert abs(float(maps[p.index, unit, p.y, p.x]) - p.value) < 1e-5  # the position is right
            assert p.label == int(data.labels[p.index])


def test_patches_are_cropped_to_the_receptive_field(net):
    spec, weights, _ = net
    data = Digits()
    result = ins.top_patches(spec, weights, data, "act", channels=[2, 0], k=4)
    assert result.units == [2, 0]
    # act: conv 3 pad 1, pool 2, conv 3 -> field 8, jump 2, and output (y, x) starts at 2y - 1
    assert result.field.size == (8, 8) and result.field.jump == (2, 2)
    for p in result.patches[2] + result.patches[0]:
        top, left = 2 * p.y - 1, 2 * p.x - 1
        assert p.box == (top, left, top + 8, left + 8)
        expected = np.full((1, 8, 8), 0.5, dtype=np.float32)  # grey outside the image
        image = data.images[p.index].numpy()
        y0, x0 = max(top, 0), max(left, 0)
        expected[:, y0 - top:min(top + 8, 12) - top, x0 - left:min(left + 8, 12) - left] = \
            image[:, y0:top + 8, x0:left + 8]
        assert np.array_equal(p.pixels, expected)


def test_top_patches_picture_is_units_by_k(tmp_path, net):
    spec, weights, _ = net
    result = ins.top_patches(spec, weights, Digits(), "pool", units=2, k=3, limit=20,
                             output=tmp_path / "tp.png")
    assert result.scanned == 20
    assert (result.picture.rows, result.picture.columns, result.picture.tiles) == (2, 3, 6)
    assert tiles_in(tmp_path / "tp.png") == 6
    with pytest.raises(UsageError, match="no channel 9"):
        ins.top_patches(spec, weights, Digits(), "pool", channels=[9])


def test_dense_units_show_whole_images(net):
    spec, weights, _ = net
    data = Digits()
    result = ins.top_patches(spec, weights, data, "out", units=3, k=2)
    # the field of the last 4x4 map, with the first conv's padding: one pixel beyond each side
    assert result.field.size == (14, 14)
    for p in (p for ps in result.patches.values() for p in ps):
        assert p.box == (-1, -1, 13, 13) and (p.y, p.x) == (0, 0)
        assert np.array_equal(p.pixels[:, 1:13, 1:13], data.images[p.index].numpy())
        assert (p.pixels[:, 0, :] == 0.5).all() and (p.pixels[:, :, -1] == 0.5).all()


# ---------------------------------------------------------------- 4. fixed kernels on an image


def test_apply_vertical_edge_gives_0_30_30_0(spec_file):
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=float)  # the 6x6 image of A. Ng's Convolutional Neural Networks course (deeplearning.ai)
    applied = ins.apply_filters(FILTERS / "edges.yaml", image, params={"height": 6, "width": 6})
    assert applied.labels == ["vertical_edge", "horizontal_edge"]
    assert applied.outputs[0].tolist() == [[0, 30, 30, 0]] * 4
    assert applied.outputs[1].tolist() == [[0, 0, 0, 0]] * 4


def test_apply_cli_on_a_png_shows_the_edge_band(tmp_path, invoke):
    image = grey_image(tmp_path / "step6x6.png", [[10, 10, 10, 0, 0, 0]] * 6)
    out = tmp_path / "edges.png"
    args = ("apply", str(FILTERS / "edges.yaml"), str(image), "--set", "height=6", "--set", "width=6")
    result = invoke(*args, "-o", str(out))
    assert result.exit_code == 0 and result.output == f"wrote {out}\n"
    assert tiles_in(out) == 3  # the input and two outputs
    picture = ins.apply_filters(FILTERS / "edges.yaml", image, tmp_path / "same.png",
                                params={"height": 6, "width": 6}).picture
    with Image.open(out) as png:
        pixels = np.asarray(png.convert("L"))
    left, top, right, bottom = picture.boxes[1]  # vertical_edge: |response| 0, 30/255, 30/255, 0
    step = (right - left) // 4
    row = pixels[top + step // 2, left + step // 2:right:step]
    assert row.tolist() == [0, 255, 255, 0]
    left, top, right, bottom = picture.boxes[2]  # horizontal_edge: nothing
    assert pixels[top:bottom, left:right].max() == 0


def test_apply_labels_use_the_names_written_in_the_spec(spec_file):
    spec = spec_file("""
        archspec: 1
        name: names
        input: [1, 5, 5]
        layers:
          - conv2d: {out: 3, kernel: 3, weights: [prewitt_x, [[0, 0, 0], [0, 1, 0], [0, 0, 0]], sobel_y]}
        """)
    applied = ins.apply_filters(spec, np.zeros((5, 5)))
    assert applied.labels == ["prewitt_x", "channel 1", "sobel_y"]  # prewitt_x, not its twin vertical_edge


def test_apply_refuses_learned_layers_where_they_are_written(spec_file):
    spec = spec_file("""
        archspec: 1
        name: learned
        input: [1, 8, 8]
        layers:
          - conv2d: {out: 2, kernel: 3, weights: sobel_x}
          - conv2d: {out: 2, kernel: 3}
        """)
    with pytest.raises(ArchspecError, match="learned weights: apply runs hand-picked kernels") as info:
        ins.apply_filters(spec, np.zeros((8, 8)))
    assert info.value.problem.location.line == 6


@pytest.mark.parametrize("path", sorted(FILTERS.glob("*.yaml")), ids=lambda p: p.stem)
def test_filter_specs_are_valid_documented_and_fixed(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_LINE
    assert archspec.validate(path) == []
    data = archspec.load(path).data
    assert data["name"] == path.stem and data["doc"].strip() and data["source"].strip()
    graph = archspec.expand(path)
    assert graph.input_shape[0] == 1
    assert all(n.args.get("weights") is not None for n in graph.nodes if n.type == "conv2d")
    rng = np.random.default_rng(0)
    applied = ins.apply_filters(path, rng.random((16, 16)), params={"height": 16, "width": 16})
    assert all(not label.startswith("channel") for label in applied.labels)  # every output named


def test_filter_specs_are_not_in_the_zoo():
    from archspec import zoo

    assert not set(zoo.names()) & {p.stem for p in FILTERS.glob("*.yaml")}


# ---------------------------------------------------------------- the commands


def test_inspect_commands_write_pictures(tmp_path, invoke, net):
    spec, weights, _ = net
    image = grey_image(tmp_path / "in.png", np.arange(144).reshape(12, 12))
    result = invoke("inspect", "filters", str(weights), "-o", str(tmp_path / "f.png"))
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {tmp_path / 'f.png'}\n" and tiles_in(tmp_path / "f.png") == 4
    result = invoke("inspect", "activations", str(spec), str(image), "-w", str(weights), "--layer", "pool",
                    "-o", str(tmp_path / "a.png"))
    assert result.exit_code == 0, result.output
    assert tiles_in(tmp_path / "a.png") == 5


def test_inspect_top_patches_command_reads_a_data_source(tmp_path, invoke, net):
    pytest.importorskip("archspec.data.loading")
    spec, weights, _ = net
    out = tmp_path / "tp.png"
    result = invoke("inspect", "top-patches", str(spec), "-w", str(weights), "--data", "synthetic:40",
                    "--layer", "act", "--units", "3", "--k", "4", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert tiles_in(out) == 12


@pytest.mark.parametrize("args, code, message", [
    (("inspect", "filters", "{tmp}/missing.safetensors", "-o", "{tmp}/f.png"), 2,
     "missing.safetensors: error: no such weights file or run folder"),
    (("inspect", "filters", "{weights}", "--layer", "conv9", "-o", "{tmp}/f.png"), 2,
     "error: unknown layer 'conv9'"),
    (("inspect", "activations", "{spec}", "{tmp}/junk.png", "-w", "{weights}", "-o", "{tmp}/a.png"), 1,
     "junk.png: error: cannot read image"),
    (("inspect", "activations", "{spec}", "-w", "{weights}", "--layer", "nope", "-o", "{tmp}/a.png"), 2,
     "error: unknown layer 'nope'"),
    (("inspect", "top-patches", "{spec}", "-w", "{weights}", "--layer", "act", "--channels", "1,x",
      "-o", "{tmp}/t.png"), 2, "--channels expects numbers"),
    (("apply", "{spec}", "-o", "{tmp}/x.png"), 1, "learned weights"),
    (("apply", str(FILTERS / "edges.yaml"), "-o", "{tmp}/x.jpg"), 2, "written as .png"),
])
def test_command_errors_are_one_located_line(tmp_path, invoke, net, args, code, message):
    spec, weights, _ = net
    (tmp_path / "junk.png").write_text("not an image")
    filled = [a.format(tmp=tmp_path, spec=spec, weights=weights) for a in args]
    result = invoke(*filled)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.jpg")) and not (tmp_path / "x.png").exists()


def test_apply_defaults_to_the_bundled_sample_photo(tmp_path, invoke):
    pytest.importorskip("sklearn")
    out = tmp_path / "sobel.png"
    result = invoke("apply", str(FILTERS / "sobel.yaml"), "--set", "height=64", "--set", "width=96", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert tiles_in(out) == 5  # the photo and four gradient maps
    x = ins.load_image("sample:flower", 3, (64, 96))
    assert x.shape == (3, 64, 96) and 0 <= float(x.min()) < float(x.max()) <= 1
