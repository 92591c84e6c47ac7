"""``archspec import``: an existing model (PyTorch, Keras 3, ONNX) written as a readable spec.

One reader per source (``pytorch``, ``keras``, ``onnx_file``) turns the model into a flat list
of catalogue layers (``ir``); ``structure`` finds its repeated structure and writes the items;
``text`` writes the YAML. The result is checked by expanding it as any spec is: every layer
holding tensors must come back at its source path, with the same type and arguments, or
nothing is written.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArchspecError, Location, Problem, SpecError, UsageError
from ..files import atomic_write
from ..layers import lookup
from .ir import INPUT, SourceModel
from .structure import Writer, infer_shapes, settle_batchnorm_ranks
from .text import spec_text

DEFAULT_TORCH_INPUT = (3, 224, 224)


@dataclass
class Imported:
    """The spec's text and the source's weights under the spec's names."""

    text: str
    tensors: dict[str, Any] = field(default_factory=dict)  # state_dict key -> numpy array
    model: SourceModel | None = None


def import_model(source, output: str | os.PathLike | None = None, *, input: tuple[int, ...] | None = None,
                 name: str | None = None, weights: str | os.PathLike | None = None) -> Imported:
    """Read ``source`` and write it as a spec (to ``output`` when given, and its weights to ``weights``).

    ``source``: a ``.keras`` file, an ``.onnx`` file, ``package.module:factory`` naming a PyTorch
    module, or an ``nn.Module``. ``input``: one sample's shape, C×H×W (needed for PyTorch, where
    it defaults to 3×224×224; read from the file for Keras and ONNX). Raises ``SpecError`` with
    one located problem per unsupported layer; writes nothing then.
    """
    if weights is not None and str(source).lower().endswith(".keras"):
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise UsageError("--weights from a .keras file needs h5py: pip install 'archspec[keras]'") from None
    model = read(source, input=input, name=name)
    imported = write_spec(model, schema=_schema_reference(output))
    if weights is not None:
        _save_tensors(imported.tensors, Path(weights), model.source)
    if output is not None:
        atomic_write(Path(output), lambda tmp: Path(tmp).write_text(imported.text, encoding="utf-8"))
    return imported


def read(source, input: tuple[int, ...] | None = None, name: str | None = None,
         wants_weights: bool = True) -> SourceModel:
    if not isinstance(source, (str, os.PathLike)):
        from .pytorch import read_module

        label = type(source).__name__
        return read_module(source, input or DEFAULT_TORCH_INPUT, name or _snake(label), f"{label} (PyTorch module)")
    text = str(source)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".keras", ".onnx", ".h5", ".pb", ".pt", ".pth", ".tflite"):
        if suffix in (".h5", ".pb", ".pt", ".pth", ".tflite"):
            raise UsageError(f"{text}: {suffix} files are not read; import a .keras file (Keras 3), an .onnx file, "
                             "or a PyTorch module as package.module:factory")
        if not path.is_file():
            raise ArchspecError("no such file", Location(text))
        if suffix == ".keras":
            from .keras import read_keras

            return read_keras(path, name=name or path.stem, input=input, weights=wants_weights)
        from .onnx_file import read_onnx

        return read_onnx(path, name=name or path.stem, input=input)
    from .pytorch import load_factory, read_module

    module = load_factory(text)
    default = text.split(":")[1].split(".")[-1]
    return read_module(module, input or DEFAULT_TORCH_INPUT, name or default, text)


def write_spec(model: SourceModel, schema: str = "archspec.schema.json") -> Imported:
    """The spec text of a source model: structured if that checks, else written plainly."""
    settle_batchnorm_ranks(model)
    infer_shapes(model)  # a wrong --input is the user's mistake, reported before anything else
    first: list[Problem] = []
    for compress in (True, False):  # plainly written: no residual, parallel or chain found
        try:
            data = Writer(model, model.kinds, compress=compress, numeric_names=True).write()
        except ArchspecError:
            if compress:
                raise  # the source itself cannot be written as blocks (reported, located)
            break  # the plain form fails too: report what the structured form met
        text = spec_text(_header(model), data["blocks"], data["layers"], schema)
        problems = check(model, text)
        if not problems:
            break
        first = first or problems
    else:
        problems = first
    if problems:
        raise SpecError([Problem(f"archspec could not write this model as a spec: {p.message}", p.location, p.node)
                         for p in first or problems])
    tensors = {f"{layer.path}.{key}": value for layer in model.layers for key, value in layer.tensors.items()}
    return Imported(text, tensors, model)


def check(model: SourceModel, text: str) -> list[Problem]:
    """What differs between the source and the spec once expanded (empty when they agree)."""
    from ..pipeline import expand
    from ..spec import loads

    where = Location(model.source)
    try:
        graph = expand(loads(text, f"{model.name}.yaml"))
    except ArchspecError as exc:
        return [Problem(str(p), where) for p in exc.problems]
    problems = []
    nodes = {node.path: node for node in graph.nodes}
    for layer in model.layers:
        if not layer.tensors:
            continue
        node = nodes.get(layer.path)
        args, _ = lookup(layer.type).coerce_args(layer.args)
        if node is None:
            problems.append(Problem("its path is not reproduced by the spec", where, layer.path))
        elif node.type != layer.type or node.args != args:
            problems.append(Problem(f"comes back as {node.type} {node.args}, not {layer.type} {args}", where, layer.path))
    counted = Counter(layer.type for layer in model.layers if layer.type != "identity")
    spec_counts = Counter(node.type for node in graph.nodes if node.type != "identity")
    if counted != spec_counts:
        problems.append(Problem(f"layer counts differ: source {dict(counted)}, spec {dict(spec_counts)}", where))
    shapes = infer_shapes(model)
    if graph.shape_of(graph.output) != shapes.get(model.output, graph.input_shape):
        problems.append(Problem("the output shapes differ", where))
    return problems


def _header(model: SourceModel) -> list[tuple[str, Any]]:
    count = sum(1 for layer in model.layers)
    doc = model.doc or f"Imported by archspec import from {model.source}: {count} layers."
    return [("archspec", 1), ("name", model.name), ("doc", doc), ("source", model.source),
            ("input", list(model.input_shape))]


def _schema_reference(output) -> str:
    """The committed schema, relative to the output file, in a source checkout; else beside the spec."""
    schema = Path(__file__).resolve().parents[2] / "schemas" / "archspec.schema.json"
    if output is None or not schema.is_file():
        return "archspec.schema.json"
    try:
        return os.path.relpath(schema, Path(output).resolve().parent)
    except ValueError:
        return "archspec.schema.json"


def _save_tensors(tensors: dict[str, Any], path: Path, source: str) -> None:
    try:
        import numpy as np
        from safetensors.numpy import save_file
    except ImportError:
        raise UsageError("--weights needs safetensors and numpy: pip install 'archspec[torch]'") from None
    if not tensors:
        raise ArchspecError("the source holds no weights to write", Location(source))
    arrays = {key: np.array(value, order="C") for key, value in tensors.items()}  # (0-d stays 0-d)
    atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata={"format": "pt", "writer": "archspec import"}))


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "net"


__all__ = ["Imported", "import_model", "read", "write_spec", "check", "INPUT"]
