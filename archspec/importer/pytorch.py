"""PyTorch modules: ``package.module:factory`` or a module object, traced with torch.fx.

Each ``call_module`` of a known ``torch.nn`` class (or archspec's own modules) becomes one
catalogue layer named by its module path, so the spec's state_dict keys are the module's.
Functions in ``forward`` (``x + y``, ``torch.cat``, ``torch.flatten``, ``F.relu``) become merge,
reshape and activation layers placed in the namespace of the module that calls them.
"""
from __future__ import annotations

import importlib
import operator
import re
import sys
from typing import Any, Callable

from ..errors import ArchspecError, Location, UsageError
from .ir import INPUT, SourceLayer, SourceModel, Unsupported, pair, refuse

FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def load_factory(reference: str):
    """The nn.Module named by ``package.module:factory`` (a class or function called without arguments)."""
    from torch import nn

    if not FACTORY_RE.match(reference):
        raise UsageError(f"{reference}: expected a file (.keras, .onnx) or a module as package.module:factory")
    module_name, attribute = reference.split(":")
    if "" not in sys.path:  # `archspec import mynets:Net` from the folder holding mynets.py
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{reference}: cannot import {module_name}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UsageError(f"{reference}: {module_name} has no attribute {attribute}")
        target = getattr(target, part)
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise UsageError(f"{reference}: {attribute} is neither an nn.Module nor a factory")
    try:
        model = target()
    except TypeError as exc:
        raise UsageError(f"{reference}: calling {attribute}() failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"{reference}: {attribute}() returned a {type(model).__name__}, not an nn.Module")
    return model


def read_module(module, input_shape: tuple[int, ...], name: str, source: str) -> SourceModel:
    import torch.fx as fx

    classes = {path: type(m) for path, m in module.named_modules() if path}
    if isinstance(module, fx.GraphModule):  # already a graph (archspec builds these): keep its node names
        return _Reader(module, source, classes).read(input_shape, name)
    tracer = _Tracer()
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises many kinds; name the module it was tracing
        where = tracer.failed_in or type(module).__name__
        raise ArchspecError(f"torch.fx cannot trace {where}: {_first_line(exc)} (write the model without "
                            "Python control flow on tensors, or import an ONNX export of it)",
                            Location(source)) from None
    gm = fx.GraphModule(module, graph)
    return _Reader(gm, source, classes).read(input_shape, name)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Tracer:
    """torch.fx's Tracer, treating every module the catalogue knows as a leaf, and noting where tracing fails."""

    def __new__(cls):
        import torch.fx as fx

        known = tuple(MODULES_BY_NAME().values())

        class Tracer(fx.Tracer):
            failed_in = ""

            def is_leaf_module(self, m, qualname):
                return isinstance(m, known) or super().is_leaf_module(m, qualname)

            def call_module(self, m, forward, args, kwargs):
                try:
                    return super().call_module(m, forward, args, kwargs)
                except Exception:
                    if not self.failed_in:  # the innermost module is the one to name
                        path = self.path_of_module(m) or "the model"
                        self.failed_in = f"{path} ({type(m).__name__})"
                    raise

        return Tracer()


# ---------------------------------------------------------------- modules -> catalogue layers

def _window(m, conv: bool) -> dict:
    args = {"kernel": pair(m.kernel_size)}
    stride = pair(m.stride) if m.stride is not None else None
    if conv or stride != args["kernel"]:
        args["stride"] = stride
    padding = m.padding
    if isinstance(padding, str):
        args["padding"] = padding
    elif pair(padding) != 0:
        args["padding"] = pair(padding)
    dilation = getattr(m, "dilation", 1)
    if pair(dilation) != 1:
        args["dilation"] = pair(dilation)
    return args


def _padded(m, args: dict) -> dict:
    pad = getattr(m, "pad", None)
    if pad is not None:  # archspec's asymmetric padding, F.pad order (left, right, top, bottom)
        left, right, top, bottom = pad
        args["padding"] = [top, bottom, left, right]
    return args


def _conv(m):
    if m.padding_mode != "zeros":
        return f"padding_mode={m.padding_mode!r} (only zero padding is in the catalogue)"
    args = {"out": m.out_channels, **_window(m, conv=True)}
    args = _padded(m, args)
    if m.groups != 1:
        args["groups"] = m.groups
    args["bias"] = m.bias is not None
    return "conv2d", args


def _linear(m):
    return "linear", {"out": m.out_features, "bias": m.bias is not None}


def _batchnorm(m):
    if not m.track_running_stats:
        return "track_running_stats=False (the catalogue's batch norm keeps running statistics)"
    kind = "batchnorm2d" if type(m).__name__ == "BatchNorm2d" else "batchnorm1d"
    return kind, {"eps": m.eps, "momentum": m.momentum if m.momentum is not None else 0.1, "affine": m.affine}


def _maxpool(m):
    if m.return_indices:
        return "return_indices=True"
    args = _padded(m, _window(m, conv=False))
    if m.ceil_mode:
        args["rounding"] = "ceil"
    return "maxpool2d", args


def _avgpool(m):
    if getattr(m, "divisor_override", None):
        return "divisor_override"
    args = _padded(m, _window(m, conv=False))
    if m.ceil_mode:
        args["rounding"] = "ceil"
    if not m.count_include_pad:
        args["count_include_pad"] = False
    return "avgpool2d", args


def _sumpool(m):
    args = _padded(m, _window(m, conv=False))
    if m.ceil_mode:
        args["rounding"] = "ceil"
    return "sumpool2d", args


def _adaptive(m):
    size = m.output_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    if None in size:
        return "an output size of None"
    return "adaptive_avgpool2d", {"output": pair(size)}


def _flatten(m):
    if m.start_dim != 1 or m.end_dim != -1:
        return f"start_dim={m.start_dim}, end_dim={m.end_dim} (the catalogue flattens all but the batch)"
    return "flatten", {}


def _softmax(m):
    if m.dim is None:
        return "dim=None"
    return "softmax", {"axis": m.dim - 1 if m.dim > 0 else m.dim}


def _simple(kind: str, **fields: str) -> Callable:
    def read(m):
        return kind, {arg: getattr(m, attribute) for arg, attribute in fields.items()}
    return read


def MODULES_BY_NAME() -> dict[str, Any]:
    """class name -> class, for the modules read below (torch.nn's and archspec's own)."""
    from torch import nn

    from .. import modules

    found = {name: getattr(nn, name) for name in _READERS if hasattr(nn, name)}
    found.update({name: getattr(modules, name) for name in _READERS if hasattr(modules, name)})
    return found


_READERS: dict[str, Callable] = {
    "Conv2d": _conv, "PaddedConv2d": _conv,
    "Linear": _linear,
    "BatchNorm2d": _batchnorm, "BatchNorm1d": _batchnorm,
    "MaxPool2d": _maxpool, "PaddedMaxPool2d": _maxpool,
    "AvgPool2d": _avgpool, "PaddedAvgPool2d": _avgpool, "SumPool2d": _sumpool,
    "AdaptiveAvgPool2d": _adaptive,
    "GlobalAvgPool": _simple("global_avgpool", keepdims="keepdims"),
    "GlobalMaxPool": _simple("global_maxpool", keepdims="keepdims"),
    "Flatten": _flatten,
    "Identity": _simple("identity"),
    "Dropout": _simple("dropout", p="p"),
    "Dropout2d": _simple("spatial_dropout", p="p"),
    "ReLU": _simple("relu"),
    "Sigmoid": _simple("sigmoid"),
    "Tanh": _simple("tanh"),
    "LeakyReLU": _simple("leaky_relu", negative_slope="negative_slope"),
    "Softmax": _softmax,
    "LocalResponseNorm": _simple("lrn", size="size", alpha="alpha", beta="beta", k="k"),
}


# ---------------------------------------------------------------- functions -> catalogue layers

def _function_layer(node) -> tuple[str, dict, list] | str:
    """(type, args, tensor inputs) of a call_function/call_method node, or what is unsupported."""
    import torch
    import torch.nn.functional as F

    target, args, kwargs = node.target, list(node.args), dict(node.kwargs)
    tensors = [a for a in args if hasattr(a, "op")]
    if target in (operator.add, operator.iadd, torch.add) or target == "add":
        if len(tensors) == 2 and not kwargs:
            return "add", {}, tensors
        return "an addition that is not of two tensors"
    if target is torch.cat:
        items, dim = args[0], kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if dim == 0:
            return "torch.cat along the batch axis"
        return "concat", ({"axis": dim - 1} if dim > 1 else {}), list(items)
    if target is torch.flatten or target == "flatten":
        start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
        end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
        if start == 1 and end == -1:
            return "flatten", {}, tensors[:1]
        return f"flatten(start_dim={start}, end_dim={end})"
    if target in ("view", "reshape") or target is torch.reshape:
        shape = args[1:] if target != torch.reshape else list(args[1])
        first = shape[0] if shape else None
        batch = getattr(first, "op", None) == "call_method" and first.target == "size" and first.args[1:] == (0,)
        if len(shape) == 2 and shape[1] == -1 and batch:
            return "flatten", {}, tensors[:1]
        return f"{target if isinstance(target, str) else 'reshape'} to another shape than (batch, -1)"
    if target in (F.relu, torch.relu) or target == "relu":
        return "relu", {}, tensors[:1]
    if target in (torch.sigmoid, F.sigmoid) or target == "sigmoid":
        return "sigmoid", {}, tensors[:1]
    if target in (torch.tanh, F.tanh) or target == "tanh":
        return "tanh", {}, tensors[:1]
    return "has no catalogue entry"


def _qualified(node) -> str:
    target = node.target
    if isinstance(target, str):
        return f"the tensor method .{target}()"
    module = getattr(target, "__module__", None) or ""
    module = "torch" if module.startswith("torch") and module.count(".") <= 1 else module
    return f"{module}.{getattr(target, '__name__', target)}" if module else str(target)


def _function_name(node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


class _Reader:
    def __init__(self, gm, source: str, classes: dict):
        self.gm = gm
        self.source = source
        self.modules = dict(gm.named_modules())
        self.namespaces = {path for path, _ in gm.named_modules() if path}
        self.readers = {cls: _READERS[name] for name, cls in MODULES_BY_NAME().items()}
        self.classes = classes  # the source's classes (tracing turns containers into plain Modules)

    def read(self, input_shape, name) -> SourceModel:
        layers: list[SourceLayer] = []
        missing: list[Unsupported] = []
        values: dict[str, str] = {}  # fx node name -> layer path of the value
        skip = set()  # nodes that compute no tensor (x.size(0))
        used_paths: dict[str, int] = {}
        output = INPUT
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                if values:
                    missing.append(Unsupported(node.name, "a second input (a spec has one)"))
                values[node.name] = INPUT
                continue
            if node.op == "output":
                result = node.args[0]
                if not hasattr(result, "op"):
                    missing.append(Unsupported("output", "an output that is not one tensor"))
                else:
                    output = values.get(result.name, INPUT)
                continue
            if node.op == "call_method" and node.target == "size":
                skip.add(node.name)
                continue
            if node.op == "get_attr":
                missing.append(Unsupported(node.target, "a tensor used directly in forward (not a layer's)"))
                continue
            if node.op == "call_module":
                module = self.modules[node.target]
                reader = self.readers.get(type(module))
                made = reader(module) if reader else f"{type(module).__name__} has no catalogue entry"
                where = node.target
                tensor_inputs = [a for a in node.args if hasattr(a, "op")]
                if isinstance(made, tuple):
                    kind, args = made
                    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
                    path = node.target
                    if path in used_paths:
                        if state:
                            missing.append(Unsupported(where, f"{type(module).__name__} called twice: shared "
                                                              "weights have no spec form"))
                            continue
                        used_paths[path] += 1
                        path = f"{path}_{used_paths[path]}"
                    else:
                        used_paths[path] = 0
                    made = (kind, args, tensor_inputs, path, state)
            else:
                where = self._namespace(node)
                where = f"{where}.{node.name}" if where else node.name
                made = _function_layer(node)
                if isinstance(made, tuple):
                    kind, args, tensor_inputs = made
                    made = (kind, args, tensor_inputs, self._function_path(node), {})
                else:
                    made = f"{_function_name(node)}: {made}" if made.startswith("a") else f"{_qualified(node)} {made}"
            if isinstance(made, str):
                missing.append(Unsupported(where, made))
                values[node.name] = INPUT
                continue
            kind, args, tensor_inputs, path, state = made
            if any(t.name in skip for t in tensor_inputs):
                missing.append(Unsupported(where, "an input computed from sizes"))
            inputs = [values.get(t.name, INPUT) for t in tensor_inputs]
            layers.append(SourceLayer(path, kind, args, inputs, state, fixed_name=bool(state)))
            values[node.name] = path
        refuse(self.source, missing)
        kinds = {path: cls.__name__ for path, cls in self.classes.items()}
        return SourceModel(name, tuple(input_shape), layers, output, self.source, kinds=kinds)

    def _namespace(self, node) -> str:
        """The module whose forward made a function node: its fx module stack, else its name's prefix."""
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            return list(stack.values())[-1][0]
        best = ""
        for path in self.namespaces:  # a GraphModule built by archspec names nodes layer1_0_add1
            flat = path.replace(".", "_") + "_"
            if node.name.startswith(flat) and len(path) > len(best):
                best = path
        return best

    def _function_path(self, node) -> str:
        namespace = self._namespace(node)
        local = node.name
        if namespace:
            flat = namespace.replace(".", "_") + "_"
            local = local[len(flat):] if local.startswith(flat) else local
        local = re.sub(r"\W", "_", local) or "op"
        return f"{namespace}.{local}" if namespace else local
