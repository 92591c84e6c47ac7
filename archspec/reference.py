"""The layer reference (docs/layers.md), generated from the layer catalogue.

Everything here is read from ``archspec.layers``: names, aliases, docs, arguments (their kind
text comes from each argument kind's JSON Schema fragment), accepted input ranks (probed through
``check_inputs``), what autograd saves (``saved()`` run on an example), views and auto-name
stems. No layer type is special-cased, so a new catalogue entry documents itself.

Regenerate the committed file with ``archspec schema --format markdown -o docs/layers.md``.
"""
from __future__ import annotations

import json
import math
from typing import Any

from .layers import ALIASES, FAMILIES, REGISTRY, LayerType, ShapeError, fmt_shape
from .layers.base import ArgError, Saved

REGENERATE = "archspec schema --format markdown -o docs/layers.md"

FAMILY_TITLES = {
    "input": "Input",
    "conv": "Convolution",
    "pool": "Pooling",
    "norm": "Normalisation",
    "activation": "Activations",
    "dense": "Fully connected",
    "regularization": "Regularisation",
    "reshape": "Reshaping",
    "merge": "Merges",
}

RANK_TEXT = {1: "(features,)", 2: "(C, L)", 3: "(C, H, W)", 4: "(C, D, H, W)"}
# One example input per rank, with distinct sizes so derived sizes can be told apart.
EXAMPLE_SHAPES = {1: (16,), 2: (16, 8), 3: (16, 8, 8), 4: (16, 4, 8, 8)}
EXAMPLE_RANKS = (3, 2, 1, 4)  # the rank an example uses, first accepted (channels told apart from size)
EXAMPLE_INT = 32  # value given to a required integer argument in the examples
EXAMPLE_PAIR = 3  # value given to a required integer-or-[h, w] argument in the examples


# ---------------------------------------------------------------- argument kinds as text


def schema_text(schema: dict) -> str:
    """A JSON Schema fragment of an argument kind, in words: ``integer ≥ 1 or [h, w] …``."""
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            return " or ".join(schema_text(s) for s in schema[choice])
    if "enum" in schema:
        return ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type")
    if kind == "array":
        item = schema_text(schema.get("items", {}))
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        if lo is not None and lo == hi:
            return f"a list of {lo} × {item}"
        return f"a list of {item}"
    words = {"integer": "integer", "number": "number", "boolean": "`true` or `false`",
             "string": "string", "object": "mapping", "null": "null"}
    if isinstance(kind, list):
        return " or ".join(words.get(k, str(k)) for k in kind)
    text = words.get(kind, "any value") if kind else "any value"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        text += f" in [{_num(lo)}, {_num(hi)}]"
    elif lo is not None:
        text += f" ≥ {_num(lo)}"
    elif hi is not None:
        text += f" ≤ {_num(hi)}"
    return text


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_text(arg) -> str:
    if arg.required:
        return "**required**"
    value = arg.default
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _example_value(kind) -> Any:
    """A valid value for a required argument, chosen from its kind's schema (for the examples)."""
    schema = kind.schema()
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    for s in options:
        t = s.get("type")
        if t == "integer":
            value = EXAMPLE_PAIR if len(options) > 1 else EXAMPLE_INT
            lo = s.get("minimum")
            return max(value, lo) if lo is not None else value
        if t == "number":
            return s.get("minimum", 0.5)
        if t == "boolean":
            return True
        if "enum" in s:
            return s["enum"][0]
    raise ValueError(f"no example value for {schema}")


# ---------------------------------------------------------------- probing the catalogue


def accepted_ranks(layer: LayerType) -> list[int]:
    """The input ranks ``check_inputs`` lets through, probed with one example per rank."""
    ranks = []
    for rank in sorted(EXAMPLE_SHAPES):
        try:
            layer.check_inputs([EXAMPLE_SHAPES[rank]] * max(layer.min_inputs, 1))
        except ShapeError:
            continue
        ranks.append(rank)
    return ranks


def ranks_text(layer: LayerType) -> str:
    ranks = accepted_ranks(layer)
    if ranks == sorted(EXAMPLE_SHAPES):
        return "any"
    return " or ".join(f"{r} {RANK_TEXT[r]}" for r in ranks) if ranks else "none"


def inputs_text(layer: LayerType) -> str:
    if layer.min_inputs == layer.max_inputs:
        n = layer.min_inputs
        text = f"{n}"
    else:
        text = f"{layer.min_inputs} to {layer.max_inputs}"
    if layer.max_inputs > 1:
        text += " (named with `from: [a, b]`, or made by `parallel` / `residual`)"
    return text


def example(layer: LayerType) -> dict | None:
    """The layer applied to an example input: arguments, shapes, figures and saved tensors.

    The input is of the first example rank the layer accepts with its example arguments.
    """
    ranks = accepted_ranks(layer)
    raw = {k: layer.example_args[k] if k in layer.example_args else _example_value(a.kind)
           for k, a in layer.args.items() if a.required}
    args, problems = layer.coerce_args(raw)
    if problems:
        return None
    for rank in (r for r in EXAMPLE_RANKS if r in ranks):
        inputs = [EXAMPLE_SHAPES[rank]] * max(layer.min_inputs, 1)
        try:
            out = layer.output_shape(args, inputs)
        except (ShapeError, ArgError):
            continue
        return {
            "raw": raw,
            "inputs": inputs,
            "output": out,
            "params": layer.param_count(args, inputs, out),
            "macs": layer.macs(args, inputs, out),
            "saved": layer.saved(args, inputs, out),
        }
    return None


def _saved_item(s: Saved, layer: LayerType, inputs, out) -> str:
    """``its input``, ``its output``, or the description of a tensor of the layer's own."""
    if s.what == "input":
        return "its input" if layer.max_inputs == 1 else f"input {s.index + 1}"
    if s.what == "output":
        return "its output"
    numel = s.numel
    if numel == math.prod(out):
        size = "one element per output element"
    elif numel == math.prod(inputs[0]):
        size = "one element per input element"
    elif numel == inputs[0][0]:
        size = "one element per channel"
    else:
        size = f"{numel:,} elements for the {fmt_shape(inputs[0])} example"
    dtype = ("in the activation dtype" if s.itemsize is None
             else f"{s.itemsize} byte{'s' if s.itemsize > 1 else ''} each")
    batch = "" if s.per_batch else ", independent of the batch size"
    return f"({size}, {dtype}{batch})"


def saved_text(layer: LayerType, ex: dict | None) -> str:
    if ex is None:
        return "(could not be probed)"
    counted: dict[str, int] = {}
    for s in ex["saved"]:
        item = _saved_item(s, layer, ex["inputs"], ex["output"])
        counted[item] = counted.get(item, 0) + 1
    parts = []
    for item, n in counted.items():
        if item.startswith("("):  # a tensor of the layer's own
            parts.append(f"a tensor of its own {item}" if n == 1 else f"{n} tensors of its own (each {item[1:]}")
        else:
            parts.append(item if n == 1 else f"{item} ({n} times)")
    text = "; ".join(parts) or "nothing"
    if not layer.exact_saved:
        text += " — an estimate: torch composes this layer of several operations"
    return text


def stem_text(layer: LayerType) -> str:
    stem = layer.stem
    sep = "_" if stem[-1].isdigit() else ""
    return f"`{stem}` ({stem}{sep}1, {stem}{sep}2, …)"


# ---------------------------------------------------------------- the document


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _yaml_flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def layer_section(layer: LayerType) -> list[str]:
    lines = [f"### `{layer.name}`", ""]
    if layer.doc:
        lines += [layer.doc, ""]
    ex = example(layer)
    facts = [
        ("Aliases", ", ".join(f"`{a}`" for a in layer.aliases) or "none"),
        ("Inputs", inputs_text(layer)),
        ("Input rank", ranks_text(layer)),
        ("Saved for backward", saved_text(layer, ex)),
        ("View", "yes: the output shares its input's memory (0 activations)" if layer.view
         else "no: the output is a new tensor"),
        ("Auto name", stem_text(layer)),
    ]
    lines += [f"- **{k}:** {v}" for k, v in facts]
    if ex is not None:
        call = f"{{{layer.name}: {_yaml_flow(ex['raw'])}}}" if ex["raw"] else layer.name
        shapes = ", ".join(fmt_shape(s) for s in ex["inputs"])
        p = ex["params"]
        figures = [f"{p.total:,} parameters" + (f" + {p.buffers:,} buffers" if p.buffers else ""),
                   f"{ex['macs']:,} MACs"]
        lines.append(f"- **Example:** `{call}` on {shapes} → {fmt_shape(ex['output'])}; " + ", ".join(figures))
    lines.append("")
    if layer.args:
        lines += ["| argument | kind | default | description |", "|---|---|---|---|"]
        for name, arg in layer.args.items():
            lines.append(f"| `{name}` | {_cell(schema_text(arg.kind.schema()))} | {default_text(arg)} "
                         f"| {_cell(arg.doc)} |")
        lines.append("")
    else:
        lines += ["No arguments: write it as a bare name (`- " + layer.name + "`).", ""]
    return lines


def layers_markdown() -> str:
    """The whole layer reference as Markdown (the content of docs/layers.md)."""
    by_family: dict[str, list[LayerType]] = {}
    for layer in REGISTRY.values():
        by_family.setdefault(layer.family, []).append(layer)
    families = [f for f in FAMILIES if f in by_family]
    lines = [
        "# Layer reference",
        "",
        f"<!-- Generated from the layer catalogue (archspec/layers/) by `{REGENERATE}`. "
        "Do not edit by hand. -->",
        "",
        f"{len(REGISTRY)} layer types and {len(ALIASES)} aliases, generated from the catalogue in "
        f"`archspec/layers/`. Regenerate with `{REGENERATE}`.",
        "",
        "How to read the entries:",
        "",
        "- A layer is written as its type name alone (`- relu`) or as a mapping of arguments "
        "(`- conv2d: {out: 64, kernel: 3}`). Every argument also accepts a `$` expression, "
        "checked once evaluated; see [spec-language.md](spec-language.md).",
        "- **Aliases** are other names for the same type; the summary and the paths use the canonical name.",
        "- **Input rank** is the rank of one sample's tensor (the batch is never part of a shape).",
        "- **Saved for backward** is what autograd keeps from the forward pass to compute gradients "
        "(parameters excluded), as the catalogue declares it for the example below (default arguments); "
        "the summary's `saved_bytes` adds these up, counting a tensor kept by several layers once.",
        "- A **view** shares its input's storage: it adds no activation memory.",
        "- **Auto name**: an unnamed item is called after its stem and a counter within its "
        "namespace (a stem ending in a digit gets an underscore: `conv3_1`).",
        "- **Example** applies the layer, with example values for its required arguments, to an example input.",
        "",
        "| type | family | aliases | what it does |",
        "|---|---|---|---|",
    ]
    for family in families:
        for layer in by_family[family]:
            lines.append(f"| [`{layer.name}`](#{layer.name}) | {family} | "
                         f"{', '.join(f'`{a}`' for a in layer.aliases)} | {_cell(layer.doc)} |")
    lines.append("")
    for family in families:
        lines += [f"## {FAMILY_TITLES.get(family, family)} (`{family}`)", ""]
        for layer in by_family[family]:
            lines += layer_section(layer)
    lines += ["## Aliases", "", "| alias | type |", "|---|---|"]
    for alias, target in sorted(ALIASES.items()):
        lines.append(f"| `{alias}` | [`{target}`](#{target}) |")
    lines.append("")
    return "\n".join(lines)

