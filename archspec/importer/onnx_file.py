"""ONNX files (the ``onnx`` package; no onnxruntime): nodes become catalogue layers, initialisers weights.

A layer's path is its weight's name where the exporter kept it (``layer1.0.conv1.weight`` ->
``layer1.0.conv1``), else the node's scope (``/layer1/layer1.0/conv1/Conv``). Exporters that
fold batch norm into the convolution before them (torch's, in inference mode) leave no batch
norm to read back: such a file becomes convolutions with a bias.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import ArchspecError, Location, UsageError
from .ir import INPUT, SourceLayer, SourceModel, Unsupported, pair, refuse

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit


def read_onnx(path: Path, name: str, input: tuple[int, ...] | None = None) -> SourceModel:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise UsageError("importing ONNX needs the onnx package: pip install 'archspec[onnx]'") from None
    where = str(path)
    if os.path.getsize(path) > MAX_ONNX_BYTES:
        raise ArchspecError("the file is larger than 2 GiB, more than archspec reads", Location(where))
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ArchspecError(f"not an ONNX model: {exc}", Location(where)) from None
    graph = model.graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    return _Reader(where, weights).read(graph, name, input)


def _attributes(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scope_path(node_name: str) -> str:
    """"/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1"; "/conv1_1/Conv" -> "conv1_1"."""
    scopes = [s for s in node_name.strip("/").split("/")[:-1] if s]
    dotted = [k for k, s in enumerate(scopes) if "." in s]
    if dotted:
        scopes = scopes[dotted[-1]:]
    path = ".".join(scopes)
    return ".".join(re.sub(r"\W", "_", part) or "x" for part in path.split(".")) if path else ""


class _Reader:
    def __init__(self, where: str, weights: dict):
        self.where = where
        self.weights = weights
        self.layers: list[SourceLayer] = []
        self.missing: list[Unsupported] = []
        self.value: dict[str, str] = {}  # tensor name -> layer path
        self.used: set[str] = set()

    def read(self, graph, name, given) -> SourceModel:
        inputs = [i for i in graph.input if i.name not in self.weights]
        if len(inputs) != 1:
            raise ArchspecError(f"the model has {len(inputs)} inputs; a spec has one", Location(self.where))
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
        shape = tuple(given) if given else tuple(dims[1:])
        if not shape or any(d is None or d < 1 for d in shape):
            raise ArchspecError(f"the input shape {dims} is not fixed; give --input C,H,W", Location(self.where))
        self.value[inputs[0].name] = INPUT
        for node in graph.node:
            self._node(node)
        refuse(self.where, self.missing)
        if len(graph.output) != 1:
            raise ArchspecError(f"the model has {len(graph.output)} outputs; a spec has one", Location(self.where))
        output = self._place_unnamed(self.value.get(graph.output[0].name, INPUT))
        return SourceModel(name, shape, self.layers, output, f"{Path(self.where).name} (ONNX)")

    def _place_unnamed(self, output: str) -> str:
        """A layer without weights, between layers of one namespace (``block1.conv1`` -> relu ->
        ``block1.conv2``), goes into it: torch's exporter scopes such nodes without their namespace."""
        consumers: dict[str, list[str]] = {}
        for layer in self.layers:
            for source in layer.inputs:
                consumers.setdefault(source, []).append(layer.path)
        renamed: dict[str, str] = {}
        namespace_of = {layer.path: layer.path.rsplit(".", 1)[0] for layer in self.layers if "." in layer.path}
        taken = {layer.path for layer in self.layers}
        for layer in self.layers:
            if layer.tensors or "." in layer.path or len(layer.inputs) != 1:
                continue
            namespace = namespace_of.get(renamed.get(layer.inputs[0], layer.inputs[0]))
            if namespace is None or not any(namespace_of.get(c) == namespace for c in consumers.get(layer.path, [])):
                continue
            new = f"{namespace}.{layer.path}"
            if new not in taken:
                renamed[layer.path] = new
                namespace_of[new] = namespace
                taken.add(new)
        for layer in self.layers:
            layer.path = renamed.get(layer.path, layer.path)
            layer.inputs = [renamed.get(i, i) for i in layer.inputs]
        return renamed.get(output, output)

    def _path(self, node, weight: str | None, op: str) -> str:
        if weight and weight.endswith(".weight") and re.match(r"^[A-Za-z_][\w.]*$", weight[:-7]):
            path = weight[:-7]
        else:
            path = _scope_path(node.name) or op.lower()
        base, k = path, 1
        while path in self.used:
            path, k = f"{base}_{k}", k + 1
        self.used.add(path)
        return path

    def _emit(self, node, kind: str, args: dict, sources: list[str], tensors: dict | None = None,
              weight: str | None = None) -> None:
        path = self._path(node, weight, node.op_type)
        self.layers.append(SourceLayer(path, kind, args, [self.value.get(s, INPUT) for s in sources],
                                       tensors or {}, fixed_name=bool(tensors)))
        self.value[node.output[0]] = path

    def _node(self, node) -> None:
        op, a = node.op_type, _attributes(node)
        where = node.name or f"{op} node"
        data = [i for i in node.input if i and i not in self.weights]
        if op == "Identity":
            source = node.input[0]
            if source in self.weights:
                self.weights[node.output[0]] = self.weights[source]  # a shared initialiser under another name
            else:
                self.value[node.output[0]] = self.value.get(source, INPUT)
            return
        if op in ("Constant",):
            return
        reader = getattr(self, "_" + op.lower(), None)
        made = reader(node, a) if reader else f"ONNX {op} has no catalogue entry"
        if isinstance(made, str):
            self.missing.append(Unsupported(where, made))
            for output in node.output:
                self.value[output] = INPUT
            return
        kind, args, tensors, weight = made
        self._emit(node, kind, args, data, tensors, weight)

    def _window(self, a: dict, conv: bool) -> dict | str:
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            return f"auto_pad {a['auto_pad']!r}"
        kernel = a.get("kernel_shape")
        args: dict = {"kernel": pair(kernel)}
        stride = pair(a.get("strides", [1, 1]))
        if conv or stride != args["kernel"]:
            args["stride"] = stride
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        if (top, left) == (bottom, right):
            if pair([top, left]) != 0:
                args["padding"] = pair([top, left])
        else:
            args["padding"] = [top, bottom, left, right]
        if pair(a.get("dilations", [1, 1])) != 1:
            args["dilation"] = pair(a["dilations"])
        return args

    def _conv(self, node, a):
        if len(a.get("kernel_shape", [])) != 2:
            return "a convolution that is not 2-D"
        weight = self.weights.get(node.input[1])
        if weight is None:
            return "a convolution whose weights are computed, not stored"
        args = self._window(a, conv=True)
        if isinstance(args, str):
            return args
        args = {"out": int(weight.shape[0]), **args, "groups": int(a.get("group", 1))}
        tensors = {"weight": weight}
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        args["bias"] = bias is not None
        if bias is not None:
            tensors["bias"] = self.weights[bias]
        return "conv2d", args, tensors, node.input[1]

    def _gemm(self, node, a):
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            return "Gemm with alpha, beta or transA"
        weight = self.weights.get(node.input[1])
        if weight is None:
            return "Gemm whose weights are computed, not stored"
        weight = weight if a.get("transB", 0) else weight.T
        tensors = {"weight": weight}
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None:
            tensors["bias"] = self.weights[bias]
        return "linear", {"out": int(weight.shape[0]), "bias": bias is not None}, tensors, node.input[1]

    def _pool(self, kind, node, a):
        args = self._window(a, conv=False)
        if isinstance(args, str):
            return args
        if a.get("ceil_mode", 0):
            args["rounding"] = "ceil"
        if kind == "avgpool2d" and not a.get("count_include_pad", 0) and "padding" in args:
            args["count_include_pad"] = False
        return kind, args, {}, None

    def _maxpool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            return "MaxPool with indices"
        return self._pool("maxpool2d", node, a)

    def _averagepool(self, node, a):
        return self._pool("avgpool2d", node, a)

    def _globalaveragepool(self, node, a):
        return "adaptive_avgpool2d", {"output": 1}, {}, None

    def _globalmaxpool(self, node, a):
        return "global_maxpool", {"keepdims": True}, {}, None

    def _reducemean(self, node, a):
        axes = a.get("axes") or (list(self.weights[node.input[1]]) if len(node.input) > 1 else None)
        if axes is None or sorted(int(x) for x in axes) not in ([2, 3], [-2, -1]):
            return "ReduceMean over other axes than H and W"
        return "global_avgpool", {"keepdims": bool(a.get("keepdims", 1))}, {}, None

    def _flatten(self, node, a):
        if a.get("axis", 1) != 1:
            return f"Flatten at axis {a.get('axis')}"
        return "flatten", {}, {}, None

    def _relu(self, node, a):
        return "relu", {}, {}, None

    def _sigmoid(self, node, a):
        return "sigmoid", {}, {}, None

    def _tanh(self, node, a):
        return "tanh", {}, {}, None

    def _leakyrelu(self, node, a):
        return "leaky_relu", {"negative_slope": float(a.get("alpha", 0.01))}, {}, None

    def _softmax(self, node, a):
        axis = a.get("axis", -1)
        return "softmax", ({"axis": axis - 1} if axis > 0 else {"axis": axis}), {}, None

    def _add(self, node, a):
        if any(i in self.weights for i in node.input):
            return "Add of a stored tensor (a bias outside a layer)"
        return "add", {}, {}, None

    def _concat(self, node, a):
        if a.get("axis") in (0, None):
            return "Concat along the batch axis"
        return "concat", ({"axis": a["axis"] - 1} if a["axis"] > 1 else {}), {}, None

    def _dropout(self, node, a):
        return "dropout", {"p": float(a.get("ratio", 0.5))}, {}, None

    def _lrn(self, node, a):
        return "lrn", {"size": int(a["size"]), "alpha": float(a.get("alpha", 1e-4)), "beta": float(a.get("beta", 0.75)),
                       "k": float(a.get("bias", 1.0))}, {}, None

    def _batchnormalization(self, node, a):
        names = node.input[1:5]
        if any(n not in self.weights for n in names):
            return "BatchNormalization whose statistics are computed, not stored"
        import numpy as np

        scale, bias, mean, var = (self.weights[n] for n in names)
        tensors = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var,
                   "num_batches_tracked": np.array(0, dtype=np.int64)}
        args = {"eps": float(a.get("epsilon", 1e-5)), "momentum": round(1 - float(a.get("momentum", 0.9)), 10)}
        return "batchnorm2d", args, tensors, node.input[1]
