"""Stage 4: Graph -> torch.fx.GraphModule, built by hand from the expanded nodes (no tracing).

Node paths become module names, so ``state_dict`` keys and ``gm.code`` read like the spec:
``layer2.0.conv1.weight``, ``layer2_0_conv1 = self.layer2[0].conv1(layer1_1_relu2)``.
The generated ``forward`` is plain torch code: nothing is interpreted per node at run time.
"""
from __future__ import annotations

from typing import Any

from .errors import LimitError
from .graph import INPUT, Graph
from .layers import lookup_known
from .layers.base import Call


def compile_graph(graph: Graph, seed: int | None = None):
    """The GraphModule computing ``graph``.

    With ``seed``, initialisation is reproducible and leaves torch's global random state alone.
    """
    import torch

    _refuse_what_does_not_fit(graph)
    if seed is None:
        return _compile(graph)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _compile(graph)


def _refuse_what_does_not_fit(graph: Graph) -> None:
    """The weights are counted before any is allocated: a spec from a stranger may ask for terabytes."""
    from .machine import available_memory
    from .render import size
    from .summary import summarize_graph

    summary = summarize_graph(graph)
    needed = summary.totals.param_bytes + summary.totals.buffer_bytes  # float32, as compiled
    available = available_memory()
    if available is None or needed <= available:
        return
    params = {row.path: row.params for row in summary.rows}
    largest = max(graph.nodes, key=lambda n: params.get(n.path, 0))
    raise LimitError(f"the model's parameters and buffers take {size(needed)} in float32 (the largest layer is "
                     f"{largest.path}), more than the {size(available)} of memory available; archspec refuses "
                     "to allocate them", largest.location)


def _compile(graph: Graph):
    import torch.fx as fx
    from torch import nn

    from . import init

    fx_graph = fx.Graph()
    values: dict[str, Any] = {INPUT: fx_graph.placeholder("x")}
    modules: dict[str, Any] = {}
    for node in graph.nodes:
        layer = lookup_known(node.type)
        in_shapes = [graph.shape_of(i) for i in node.inputs]
        made = layer.torch(node.args, in_shapes, node.shape)
        args = tuple(values[i] for i in node.inputs)
        name = node.path.replace(".", "_").replace("-", "_")  # an identifier: torchvision's block1-0 reads block1_0
        if made is None:  # identity: no node of its own
            values[node.path] = args[0]
        elif isinstance(made, Call):
            call_args = (list(args),) if made.list_input else args
            if made.weight is not None:  # a parameter at the node's own path (layer scale)
                modules[node.path] = nn.Parameter(made.weight, requires_grad=node.trainable)
                call_args = (fx_graph.get_attr(node.path), *call_args)
            values[node.path] = fx_graph.create_node("call_function", made.function, call_args, dict(made.kwargs),
                                                     name=name)
        else:
            if node.init is not None and node.args.get("weights") is None:
                init.apply(made, node.init)
            if not node.trainable:
                for parameter in made.parameters():
                    parameter.requires_grad_(False)
            modules[node.path] = made
            values[node.path] = fx_graph.create_node("call_module", node.path, args, {}, name=name)
    fx_graph.output(values[graph.output])
    fx_graph.lint()
    return fx.GraphModule(_module_tree(modules), fx_graph, class_name=_class_name(graph.name))


def _module_tree(modules: dict[str, Any]):
    """A root module holding every module (or parameter) at its dotted path, in execution order.

    (A plain dict root would make GraphModule order state_dict keys by depth instead.)
    """
    from torch import nn

    root = nn.Module()
    for path, module in modules.items():
        parent = root
        *parents, leaf = path.split(".")
        for part in parents:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        if isinstance(module, nn.Parameter):
            parent.register_parameter(leaf, module)
        else:
            parent.add_module(leaf, module)
    return root


def _class_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name) or "Net"
    return cleaned if not cleaned[0].isdigit() else f"Net_{cleaned}"
