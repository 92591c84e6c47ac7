"""Keras 3 ``.keras`` files, read as what they are (a zip of ``config.json`` and ``model.weights.h5``)
without importing Keras or TensorFlow.

Keras computes on ``channels_last`` tensors (H, W, C); a spec on (C, H, W). Shapes are turned
round, kernels transposed to torch's layout, and a Dense layer reading a Flatten of a feature
map has its weight columns reordered, because Keras flattens H, W, C where archspec flattens
C, H, W: the outputs then agree. A layer's ``activation`` becomes a layer of its own after it.
Weights need ``h5py`` (``pip install 'archspec[keras]'``).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import ArchspecError, Location, UsageError
from .ir import INPUT, SourceLayer, SourceModel, Unsupported, pair, refuse

MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 4 << 30
ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}


def read_keras(path: Path, name: str, input: tuple[int, ...] | None = None, weights: bool = True) -> SourceModel:
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ArchspecError("not a Keras 3 .keras file (not a zip archive)", Location(where)) from None
    with archive:
        config = _json(archive, where)
        reader = _Reader(where)
        model = reader.read(config, name, input)
        if weights:
            reader.attach_weights(archive, model)
    return model


def _json(archive: zipfile.ZipFile, where: str) -> dict:
    try:
        info = archive.getinfo("config.json")
    except KeyError:
        raise ArchspecError("no config.json in this .keras file (Keras 2 .h5 models are not read)",
                            Location(where)) from None
    if info.file_size > MAX_CONFIG_BYTES:
        raise ArchspecError(f"config.json is {info.file_size:,} bytes, more than archspec reads "
                            f"({MAX_CONFIG_BYTES:,})", Location(where))
    try:
        return json.loads(archive.read(info))
    except ValueError as exc:
        raise ArchspecError(f"config.json is not JSON: {exc}", Location(where)) from None


def keras_snake(name: str) -> str:
    """Keras' own object names in model.weights.h5: ReLU -> re_lu, Conv2D -> conv2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class _Reader:
    def __init__(self, where: str):
        self.where = where
        self.layers: list[SourceLayer] = []
        self.missing: list[Unsupported] = []
        self.output_of: dict[str, str] = {}  # keras layer name -> path of its output value
        self.shape_of: dict[str, tuple] = {}  # path -> (C, H, W) or (F,)
        self.flattened: dict[str, tuple] = {}  # path -> the (C, H, W) a flat value was flattened from
        self.weight_layers: list[tuple[str, str, dict]] = []  # (h5 name, spec path, keras class)

    def read(self, config: dict, name: str, input_shape) -> SourceModel:
        kind = config.get("class_name")
        body = config.get("config", {})
        if kind not in ("Sequential", "Functional", "Model"):
            raise ArchspecError(f"a {kind} model: archspec reads Sequential and functional models",
                                Location(self.where))
        entries = body.get("layers", [])
        counters: dict[str, int] = {}
        shape = None
        sequential = kind == "Sequential"
        previous = INPUT
        for index, entry in enumerate(entries):
            cls, cfg = entry.get("class_name"), entry.get("config", {})
            lname = cfg.get("name") or entry.get("name") or f"layer{index}"
            snake = keras_snake(cls or "")
            if not (sequential and cls == "InputLayer"):  # Sequential keeps no InputLayer among its layers
                counters[snake] = counters.get(snake, -1) + 1
            h5name = snake if counters.get(snake, 0) == 0 else f"{snake}_{counters[snake]}"
            if cls == "InputLayer":
                shape = self._input(cfg, input_shape)
                self.output_of[lname] = INPUT
                self.shape_of[INPUT] = shape
                continue
            if sequential:
                inputs = [previous]
                if shape is None:
                    build = body.get("build_input_shape") or entry.get("build_config", {}).get("input_shape")
                    shape = self._input({"batch_shape": build}, input_shape)
                    self.shape_of[INPUT] = shape
            else:
                inputs = self._inbound(entry, lname)
                if inputs is None:
                    continue
            out = self._layer(cls, cfg, lname, inputs, h5name)
            if out is not None:
                self.output_of[lname] = out
                previous = out
        if shape is None:
            raise ArchspecError("the model has no input shape (build it, or give --input C,H,W)", Location(self.where))
        refuse(self.where, self.missing)
        output = previous
        if not sequential:
            outputs = body.get("output_layers") or []
            outputs = outputs if outputs and isinstance(outputs[0], list) else [outputs]
            if len(outputs) != 1:
                raise ArchspecError(f"the model has {len(outputs)} outputs; a spec has one", Location(self.where))
            output = self.output_of.get(outputs[0][0], previous)
        return SourceModel(name, shape, self.layers, output, f"{Path(self.where).name} (Keras 3)")

    def _input(self, cfg: dict, given) -> tuple:
        batch_shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if given:
            return tuple(given)
        if not batch_shape or any(d is None for d in batch_shape[1:]):
            raise ArchspecError(f"the input shape {batch_shape} is not fixed; give --input C,H,W", Location(self.where))
        dims = tuple(int(d) for d in batch_shape[1:])
        return (dims[-1], *dims[:-1]) if len(dims) == 3 else dims  # H, W, C -> C, H, W

    def _inbound(self, entry: dict, lname: str) -> list[str] | None:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) != 1:
            self.missing.append(Unsupported(lname, f"called {len(nodes)} times (shared layers have no spec form)"))
            return None
        args = nodes[0].get("args", [])
        tensors = args[0] if args and isinstance(args[0], list) else args
        names = []
        for tensor in tensors:
            history = (tensor.get("config", {}) if isinstance(tensor, dict) else {}).get("keras_history")
            if not history:
                self.missing.append(Unsupported(lname, "an input that is not a layer's output"))
                return None
            names.append(self.output_of.get(history[0], INPUT))
        return names

    def _emit(self, path: str, kind: str, args: dict, inputs: list[str], fixed: bool = False) -> str:
        self.layers.append(SourceLayer(path, kind, args, inputs, fixed_name=fixed))
        return path

    def _then_activation(self, name: str, activation: str | None, source: str, lname: str) -> str:
        if activation in (None, "linear"):
            return source
        kind = ACTIVATIONS.get(activation)
        if kind is None:
            self.missing.append(Unsupported(lname, f"activation {activation!r} has no catalogue entry"))
            return source
        layer = SourceLayer(f"{name}_{activation}", kind, {}, [source], keep_name=False)
        self.layers.append(layer)
        return layer.path

    def _layer(self, cls: str, cfg: dict, lname: str, inputs: list[str], h5name: str) -> str | None:
        if cfg.get("data_format", "channels_last") != "channels_last":
            self.missing.append(Unsupported(lname, f"{cls} with data_format {cfg.get('data_format')} (read: channels_last)"))
            return None
        reader = getattr(self, "_" + keras_snake(cls), None)
        if reader is None:
            self.missing.append(Unsupported(lname, f"{cls} has no catalogue entry"))
            return None
        return reader(cfg, lname, inputs, h5name)

    def _conv2d(self, cfg, lname, inputs, h5name):
        padding = cfg.get("padding", "valid")
        if padding not in ("valid", "same"):
            self.missing.append(Unsupported(lname, f"Conv2D padding {padding!r}"))
            return None
        args = {"out": cfg["filters"], "kernel": pair(cfg["kernel_size"]), "stride": pair(cfg.get("strides", 1)),
                "padding": padding, "dilation": pair(cfg.get("dilation_rate", 1)), "groups": cfg.get("groups", 1),
                "bias": bool(cfg.get("use_bias", True))}
        self._emit(lname, "conv2d", args, inputs, fixed=True)
        self.weight_layers.append((h5name, lname, "Conv2D"))
        return self._then_activation(lname, cfg.get("activation"), lname, lname)

    def _dense(self, cfg, lname, inputs, h5name):
        args = {"out": cfg["units"], "bias": bool(cfg.get("use_bias", True))}
        self._emit(lname, "linear", args, inputs, fixed=True)
        self.weight_layers.append((h5name, lname, "Dense"))
        return self._then_activation(lname, cfg.get("activation"), lname, lname)

    def _pool(self, kind, cfg, lname, inputs):
        padding = cfg.get("padding", "valid")
        size = pair(cfg.get("pool_size", 2))
        stride = pair(cfg.get("strides") or cfg.get("pool_size", 2))
        args = {"kernel": size}
        if stride != size:
            args["stride"] = stride
        if padding != "valid":
            args["padding"] = padding
        if kind == "avgpool2d" and padding == "same":
            args["count_include_pad"] = False  # Keras averages over the input pixels only
        return self._emit(lname, kind, args, inputs)

    def _max_pooling2d(self, cfg, lname, inputs, h5name):
        return self._pool("maxpool2d", cfg, lname, inputs)

    def _average_pooling2d(self, cfg, lname, inputs, h5name):
        return self._pool("avgpool2d", cfg, lname, inputs)

    def _global_average_pooling2d(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "global_avgpool", {"keepdims": bool(cfg.get("keepdims", False))}, inputs)

    def _global_max_pooling2d(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "global_maxpool", {"keepdims": bool(cfg.get("keepdims", False))}, inputs)

    def _flatten(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "flatten", {}, inputs)

    def _dropout(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "dropout", {"p": float(cfg.get("rate", 0.5))}, inputs)

    def _spatial_dropout2d(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "spatial_dropout", {"p": float(cfg.get("rate", 0.5))}, inputs)

    def _re_lu(self, cfg, lname, inputs, h5name):
        if cfg.get("max_value") is not None or cfg.get("threshold", 0) or cfg.get("negative_slope", 0):
            self.missing.append(Unsupported(lname, "ReLU with max_value, threshold or negative_slope"))
            return None
        return self._emit(lname, "relu", {}, inputs)

    def _leaky_re_lu(self, cfg, lname, inputs, h5name):
        slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
        return self._emit(lname, "leaky_relu", {"negative_slope": float(slope)}, inputs)

    def _activation(self, cfg, lname, inputs, h5name):
        kind = ACTIVATIONS.get(cfg.get("activation"))
        if kind is None:
            self.missing.append(Unsupported(lname, f"activation {cfg.get('activation')!r} has no catalogue entry"))
            return None
        return self._emit(lname, kind, {}, inputs)

    def _softmax(self, cfg, lname, inputs, h5name):
        if cfg.get("axis", -1) != -1:
            self.missing.append(Unsupported(lname, f"Softmax over axis {cfg.get('axis')} (read: the last axis)"))
            return None
        return self._emit(lname, "softmax", {}, inputs)

    def _batch_normalization(self, cfg, lname, inputs, h5name):
        if cfg.get("axis", -1) not in (-1, 3, [3], [-1]) or bool(cfg.get("center", True)) != bool(cfg.get("scale", True)):
            self.missing.append(Unsupported(lname, "BatchNormalization over another axis than channels, or with only "
                                                   "one of center and scale"))
            return None
        args = {"eps": float(cfg.get("epsilon", 1e-3)), "momentum": round(1 - float(cfg.get("momentum", 0.99)), 10),
                "affine": bool(cfg.get("center", True))}
        kind = "batchnorm2d"  # a rank-1 input is decided once shapes are known
        self._emit(lname, kind, args, inputs, fixed=True)
        self.weight_layers.append((h5name, lname, "BatchNormalization"))
        return lname

    def _add(self, cfg, lname, inputs, h5name):
        return self._emit(lname, "add", {}, inputs)

    def _concatenate(self, cfg, lname, inputs, h5name):
        if cfg.get("axis", -1) not in (-1, 3):
            self.missing.append(Unsupported(lname, f"Concatenate along axis {cfg.get('axis')} (read: channels)"))
            return None
        return self._emit(lname, "concat", {}, inputs)

    # -- weights
    def attach_weights(self, archive: zipfile.ZipFile, model: SourceModel) -> None:
        if not self.weight_layers:
            return
        try:
            import h5py
            import numpy as np
        except ImportError:
            return  # the spec is written without weights; asking for them says what to install
        try:
            info = archive.getinfo("model.weights.h5")
        except KeyError:
            return
        if info.file_size > MAX_WEIGHTS_BYTES:
            raise ArchspecError(f"model.weights.h5 is {info.file_size:,} bytes, more than archspec reads",
                                Location(self.where))
        from .structure import infer_shapes, settle_batchnorm_ranks

        by_path = {layer.path: layer for layer in model.layers}
        settle_batchnorm_ranks(model)
        shapes = infer_shapes(model)
        with h5py.File(io.BytesIO(archive.read(info)), "r") as h5:
            for h5name, path, cls in self.weight_layers:
                group = h5.get(f"layers/{h5name}/vars")
                if group is None:
                    raise ArchspecError(f"{path}: no weights at layers/{h5name} in model.weights.h5", Location(self.where))
                values = [np.asarray(group[str(k)]) for k in range(len(group))]
                layer = by_path[path]
                layer.tensors = _torch_layout(cls, values, layer, by_path, shapes)


def _flat_source(layer: SourceLayer, by_path: dict, shapes: dict) -> tuple | None:
    """The (C, H, W) map a Dense layer's input was flattened from, through element-wise layers."""
    source = layer.inputs[0]
    while source in by_path:
        before = by_path[source]
        if before.type == "flatten":
            shape = shapes.get(before.inputs[0])
            return shape if shape is not None and len(shape) == 3 else None
        if before.type not in ("dropout", "relu", "sigmoid", "tanh", "leaky_relu", "identity", "batchnorm1d"):
            return None
        source = before.inputs[0]
    return None


def _torch_layout(cls: str, values: list, layer: SourceLayer, by_path: dict, shapes: dict) -> dict:
    import numpy as np

    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    if cls == "Conv2D":
        out = {"weight": f32(values[0].transpose(3, 2, 0, 1))}  # (kh, kw, in, out) -> (out, in, kh, kw)
        if len(values) > 1:
            out["bias"] = f32(values[1])
        return out
    if cls == "Dense":
        kernel = values[0]  # (in, out)
        flat = _flat_source(layer, by_path, shapes)
        if flat is not None:  # Keras flattened (H, W, C); archspec flattens (C, H, W)
            c, h, w = flat
            kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
        out = {"weight": f32(kernel.T)}
        if len(values) > 1:
            out["bias"] = f32(values[1])
        return out
    # BatchNormalization: gamma, beta (when center and scale), moving mean, moving variance
    stats = values[-2:]
    out = {}
    if len(values) == 4:
        out["weight"], out["bias"] = f32(values[0]), f32(values[1])
    out["running_mean"], out["running_var"] = f32(stats[0]), f32(stats[1])
    out["num_batches_tracked"] = np.array(0, dtype=np.int64)
    return out
