"""Presentation of a Summary: text table, markdown, CSV, JSON and the --explain arithmetic (as CS231n's VGGNet table).

Everything here reads the raw numbers of ``summary.py``; nothing here computes a figure.
"""
from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from .graph import INPUT
from .layers import lookup_known
from .text_table import Column, Line, column_widths, pairs_lines, table_lines, wrap

if TYPE_CHECKING:  # annotations only: summary.py delegates its rendering here
    from .summary import Summary

FORMATS = ("table", "markdown", "csv", "json")


def count(n: int) -> str:
    """Exact count with thousands separators: 1,728."""
    return f"{n:,}"


def short(n: float) -> str:
    """CS231n's rounding: 4096 stays, 150,528 -> 150K, 3,211,264 -> 3.2M (2 significant digits)."""
    if n < 10_000:
        return str(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{float(f'{n / scale:.2g}'):g}{unit}"
    return str(n)


def size(nbytes: int) -> str:
    """Bytes in binary units: 527.79 MiB."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{nbytes} B"


def giga(n: int, scale_of: int | None = None) -> str:
    """2 decimals in G (or M for small networks, plain below 10,000, where 0.00 M would hide the
    figure); ``scale_of`` picks the unit so figures compare."""
    scale = scale_of if scale_of is not None else n
    if scale >= 1e7:
        return f"{n / 1e9:.2f} G"
    return f"{n / 1e6:.2f} M" if scale >= 1e4 else f"{n:,} "


def shape_text(shape) -> str:
    return "×".join(str(d) for d in shape)


def field_text(field) -> str:
    if field is None:
        return ""
    h, w = field
    return f"{h}" if h == w else f"{h}×{w}"


COLUMNS = ("Layer", "Type", "Output shape", "Params", "Activations", "MACs", "RF")


def _cells(row) -> list[str]:
    kind = f"{row.type} {row.key_params}".strip()
    return [row.path, kind, shape_text(row.output_shape), count(row.params), short(row.activations),
            short(row.macs) if row.macs else "0", field_text(row.receptive_field)]


def _input_cells(s: Summary) -> list[str]:
    return [INPUT, "input", shape_text(s.input), "0", short(_numel(s.input) * s.batch), "0", "1"]


def totals_lines(s: Summary) -> list[tuple[str, str]]:
    t = s.totals
    frozen = f", non-trainable {count(t.non_trainable_params)}" if t.non_trainable_params else ""
    buffers = [("Buffers (BN running stats)", f"{count(t.buffers)} = {size(t.buffer_bytes)}")] if t.buffers else []
    return [
        ("Parameters", f"{count(t.params)} (trainable {count(t.trainable_params)}{frozen}) = "
                       f"{size(t.param_bytes)} in {s.dtype}"),
        *buffers,
        (f"Input (batch {s.batch})", size(t.input_bytes)),
        ("Forward activations (all outputs)", size(t.activation_bytes)),
        ("Inference peak (freeing as it goes)", size(t.forward_peak_bytes)),
        ("Saved for backward (training)", size(t.saved_bytes)),
        ("Gradients", size(t.gradient_bytes)),
        (f"Optimizer state ({s.optimizer})", size(t.optimizer_bytes)),
        ("Training memory estimate", f"{size(t.training_bytes)}  (params + buffers + gradients + "
                                     "optimizer + saved)"),
        (f"MACs (multiply-accumulates, batch {s.batch})", f"{giga(t.macs)}MACs"),
        ("FLOPs (= 2 × MACs)", f"{giga(t.flops, scale_of=t.macs)}FLOPs"),
    ]


NUMERIC = ("Params", "Activations", "MACs", "RF")
SHORT_HEADERS = {"Output shape": "Output", "Activations": "Acts"}  # for narrow consoles
FOLDED_MIN = {"Layer": 12, "Type": 12}
# the table's layouts, widest first: full headers, short headers, then layer paths and types folded
LAYOUTS: tuple[tuple[dict[str, str], bool], ...] = (({}, False), (SHORT_HEADERS, False), (SHORT_HEADERS, True))


def _columns(headers: dict[str, str], fold: bool) -> list[Column]:
    """Numbers and shapes are never cut: as wide as their widest cell; types wrap at spaces, and
    layer paths and types fold anywhere in the narrowest layout (never an ellipsis)."""
    columns = []
    for name in COLUMNS:
        header = headers.get(name, name)
        if name in NUMERIC or name == "Output shape":
            columns.append(Column(header, right=name in NUMERIC))
        elif fold:
            columns.append(Column(header, wrap="fold", min_width=FOLDED_MIN[name]))
        else:
            columns.append(Column(header, wrap="words" if name == "Type" else "none"))
    return columns


def _stacked(title: str, rows: list[list[str]], width: int) -> list[Line]:
    """For very narrow consoles: one block per layer, every figure labelled, wrapped at spaces."""
    lines: list[Line] = [[(part, "italic")] for part in wrap(title, width)]
    for layer, kind, shape, params, activations, macs, rf in rows:
        lines += [[(part, "bold")] for part in wrap(f"{layer}  {kind}", width)]
        figures = f"{shape}  params {params}  acts {activations}  MACs {macs}  RF {rf}"
        lines += [[("  " + part, "")] for part in wrap(figures, max(width - 2, 1))]
    return lines


def summary_lines(s: Summary, width: int) -> list[Line]:
    """The per-layer table and the totals, laid out for ``width`` columns of text.

    Numbers and headers are never cut: a narrow console first gets shorter headers ("Acts" for
    "Activations"), then layer paths and types folded over several lines, and below that one
    labelled block per layer.
    """
    rows = [_input_cells(s)] + [_cells(row) for row in s.rows]
    title = f"{s.name}  input {shape_text(s.input)}  batch {s.batch}  {s.dtype}"
    for headers, fold in LAYOUTS:
        columns = _columns(headers, fold)
        widths = column_widths(columns, rows, width)
        if widths is not None:
            lines = table_lines(title, columns, rows, widths)
            break
    else:
        lines = _stacked(title, rows, width)
    return lines + pairs_lines(totals_lines(s), width)


class SummaryTable:
    """A Summary for rich consoles (``rich.print(summary)``): the same lines, at the console's width."""

    def __init__(self, s: Summary):
        self.summary = s

    def __rich_console__(self, console, options):
        from rich.segment import Segment
        from rich.style import Style

        styles = {"": None, "bold": Style(bold=True), "italic": Style(italic=True)}
        for line in summary_lines(self.summary, options.max_width):
            for text, style in line:
                yield Segment(text, styles[style])
            yield Segment.line()


def summary_table(s: Summary) -> SummaryTable:
    """A rich renderable: the per-layer table and the totals, fitted to the console's width."""
    return SummaryTable(s)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def to_markdown(s: Summary) -> str:
    lines = [f"**{s.name}** — input {shape_text(s.input)}, batch {s.batch}, {s.dtype}", "",
             "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---:" if c in ("Params", "Activations", "MACs", "RF") else "---" for c in COLUMNS) + "|"]
    lines.append("| " + " | ".join(_input_cells(s)) + " |")
    for row in s.rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |")
    lines += ["", "| Total | |", "|---|---|"]
    lines += [f"| {label} | {value} |" for label, value in totals_lines(s)]
    return "\n".join(lines) + "\n"


def to_csv(s: Summary) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "type", "output_shape", "params", "trainable", "buffers", "activations", "macs",
                     "receptive_field", "location"])
    for r in s.rows:
        writer.writerow([r.path, r.type, "x".join(map(str, r.output_shape)), r.params, r.trainable, r.buffers,
                         r.activations, r.macs, "x".join(map(str, r.receptive_field or ())), r.location])
    return out.getvalue()


def to_json(s: Summary) -> str:
    return json.dumps(s.to_dict(), indent=2) + "\n"


# ------------------------------------------------------------------ --explain

def _slide_shape(shape) -> str:
    """CS231n writes H x W x C: [224x224x64]; flat tensors as [1x1xN]."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}x{w}x{c}"
    return "1x1x" + "x".join(str(d) for d in shape)


def _product(dims) -> str:
    return "*".join(str(d) for d in dims)


def explain_lines(s: Summary) -> list[str]:
    """One line per layer with the arithmetic behind each figure.

    As the VGGNet table of the CS231n course notes (Stanford):
    ``CONV3-64: [224x224x64] memory: 224*224*64=3.2M weights: (3*3*3)*64 = 1,728 bias: 64``
    Memory is per sample, as on the slide; MACs are added where a layer has any.
    """
    graph = s.graph
    c, *spatial = s.input
    hwc = (*spatial, c) if spatial else (c,)
    lines = [f"INPUT: [{_slide_shape(s.input)}] memory: {_product(hwc)}={short(_numel(s.input))} weights: 0"]
    for f in s.analysis.figures:
        node = f.node
        layer = lookup_known(node.type)
        shape = node.shape
        dims = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
        memory = f"{_product(dims)}={short(_numel(shape))}" if len(dims) > 1 else f"{shape[0]}"
        if layer.view:
            memory += " (a view: no new memory)"
        p = f.params
        if p.weights:
            formula = p.weight_formula
            if node.type == "linear":
                src = graph.node(node.inputs[0]) if node.inputs[0] != INPUT else None
                if src is not None and src.type == "flatten":
                    flat_in = graph.shape_of(src.inputs[0])
                    if len(flat_in) == 3:  # as the slide: 7*7*512*4096
                        formula = f"{flat_in[1]}*{flat_in[2]}*{flat_in[0]}*{node.args['out']}"
            weights = f"weights: {formula} = {count(p.weights)}"
            scale, shift = layer.affine_words
            if scale != "weights":  # batch norm's pair: weights: gamma 64  bias: beta 64
                weights = f"weights: {scale} {count(p.weights)}"
            if p.biases:
                weights += f"  bias: {shift + ' ' if shift != 'bias' else ''}{count(p.biases)}"
        else:
            weights = "weights: 0"
        line = f"{node.path}  {layer.slide_label(node.args)}: [{_slide_shape(shape)}] memory: {memory} {weights}"
        if f.macs:
            line += f"  MACs: {_product(dims)}*{f.macs // _numel(shape)} = {count(f.macs)}"
        lines.append(line)
    return lines


# ------------------------------------------------------------------ HTML (notebooks, archspec view)

_NUMERIC = ("Params", "Activations", "MACs", "RF")


def to_html(s: Summary, row_ids: bool = False) -> str:
    """The per-layer table and the totals as one HTML fragment (a notebook's display of a Summary).

    Self-contained: the few styles it needs are inline, so it reads the same in Jupyter, in VS Code
    and in ``archspec view``; ``row_ids`` gives each row the id ``row-<path>``.
    """
    from html import escape

    def cells(values, tag="td"):
        return "".join(f'<{tag} style="text-align:{"right" if c in _NUMERIC else "left"}">{escape(v)}</{tag}>'
                       for c, v in zip(COLUMNS, values))

    def tr(values, path):
        rid = f' id="row-{escape(path)}"' if row_ids else ""
        return f"<tr{rid}>{cells(values)}</tr>"

    title = f"{s.name} — input {shape_text(s.input)}, batch {s.batch}, {s.dtype}"
    head = "<tr>" + "".join(f'<th style="text-align:{"right" if c in _NUMERIC else "left"}">{escape(c)}</th>'
                            for c in COLUMNS) + "</tr>"
    body = [tr(_input_cells(s), INPUT)] + [tr(_cells(row), row.path) for row in s.rows]
    totals = "".join(f'<tr><th style="text-align:left">{escape(label)}</th><td style="text-align:left">'
                     f"{escape(value)}</td></tr>" for label, value in totals_lines(s))
    return (f'<div class="archspec-summary"><table class="archspec-layers"><caption style="text-align:left">'
            f"<b>{escape(title)}</b></caption><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"
            f'<table class="archspec-totals"><tbody>{totals}</tbody></table></div>')
