"""The ``graph`` style: a Summary as DOT text (built with the graphviz package), rendered to a file.

``to_dot`` turns the expanded graph of a Summary into DOT: one node per layer, coloured by its
family (the one table, ``style.FAMILY_COLOURS``, lightened), edges labelled by the tensor they
carry, every block call, named repeat, repeat copy, parallel branch and shortcut of
``graph.groups`` as a dashed cluster nested as the paths nest. Two things keep big networks readable:

- ``depth=N`` draws every group whose path has more than N components as one node with its
  block name and totals (as ``archspec summary --depth N`` lists it);
- folding (``fold=True``, the default) draws a run of consecutive identical sibling groups as
  one node marked ``×N``: ResNet-152's ``layer3.1`` .. ``layer3.35`` become ``layer3.1–35 ×35``.

Two sibling groups are *identical* when they hold the same sequence of layers with the same
relative paths, types, arguments, trainability, init and output shapes, read their inputs from
the same relative paths (or, for inputs from outside the group, tensors of the same shape), and
contain the same nested groups (relative paths, kinds, labels). Consecutive identical groups
fold only when they form a chain: every outside input of a copy comes from the copy before it,
from the same relative path each time, and nothing outside the run reads a copy other than the
last. So parameters, MACs and shapes of every folded copy are equal, and no edge is lost.

``render_dot`` writes the DOT text itself, or runs the system ``dot`` where there is one, else
the self-contained ``graphviz-pure`` engine (which writes SVG and PNG, not PDF).

Nothing here imports torch.
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchspecError, UsageError
from ..graph import INPUT, Graph, Group, Node
from ..layers import FAMILIES, lookup
from ..render import count, giga, shape_text, short
from .style import FAMILY_LABELS, darker, family_colour, family_of, lighter

# ---------------------------------------------------------------- colours: style.FAMILY_COLOURS, lightened

FILL_LIGHTEN = 0.55  # fills are the family colour moved this far towards white: black text stays legible
BLOCK_COLOUR = "#ffffff"  # collapsed (depth) and folded (×N) blocks: a white box with a bold border


def family_fill(family: str) -> str:
    """The fill of a layer of ``family``: its colour in the one table (``style.FAMILY_COLOURS``), lightened."""
    return lighter(family_colour(family), FILL_LIGHTEN)


def family_border(family: str) -> str:
    return darker(family_colour(family), 0.2)


RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = ("svg", "png", "pdf", "dot")
FONT = "Helvetica"
ENGINE_TIMEOUT_S = 300
INPUT_ID = "@input"
LEGEND_ID = "@legend"


# ---------------------------------------------------------------- the display tree


@dataclass
class _Tree:
    """A group (or the root, path "") with its children in execution order: nodes and groups."""

    path: str
    group: Group | None
    children: list = field(default_factory=list)  # of Node | _Tree
    members: list[Node] = field(default_factory=list)  # every node inside, in execution order


@dataclass
class _Fold:
    """A run of consecutive identical sibling groups drawn as one node."""

    copies: list[_Tree]

    @property
    def path(self) -> str:
        return self.copies[0].path


def _parts(path: str) -> list[str]:
    return path.split(".")


def _build_tree(graph: Graph) -> _Tree:
    root = _Tree("", None)
    trees: dict[str, _Tree] = {"": root}
    groups = graph.groups
    for node in graph.nodes:
        parts = _parts(node.path)
        parent = root
        root.members.append(node)
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix not in groups:
                continue
            tree = trees.get(prefix)
            if tree is None:
                tree = trees[prefix] = _Tree(prefix, groups[prefix])
                parent.children.append(tree)
            tree.members.append(node)
            parent = tree
        parent.children.append(node)
    return root


def _relative(path: str, base: str) -> str:
    return "" if path == base else path[len(base) + 1:]


def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base + ".")


def _signature(tree: _Tree, graph: Graph, nested: list[_Tree]) -> tuple:
    """What two copies must share to fold (see the module docstring)."""
    members = []
    for n in tree.members:
        inputs = tuple(("in", _relative(i, tree.path)) if i != INPUT and _inside(i, tree.path)
                       else ("out", graph.shape_of(i)) for i in n.inputs)
        members.append((_relative(n.path, tree.path), n.type, n.args, n.shape, n.trainable, n.init, inputs))
    groups = tuple((_relative(t.path, tree.path), t.group.kind, _kept_label(t.group)) for t in nested)
    return (tree.group.kind, _kept_label(tree.group), groups, tuple(members))


def _kept_label(group: Group) -> str:
    """A group's label as folding compares it: a copy's "k of n" differs from copy to copy by design."""
    return "" if group.kind == "iteration" else group.label


def _nested(tree: _Tree) -> list[_Tree]:
    out = []
    for child in tree.children:
        if isinstance(child, _Tree):
            out.append(child)
            out.extend(_nested(child))
    return out


def _chain_link(prev: _Tree, nxt: _Tree, users: dict[str, list[str]]) -> tuple | None:
    """The relative paths in ``prev`` that ``nxt`` reads, if ``nxt`` reads only ``prev`` from outside
    and nothing but ``nxt`` reads ``prev`` from outside; else None."""
    read = []
    for n in nxt.members:
        for i in n.inputs:
            if i != INPUT and _inside(i, nxt.path):
                continue
            if i == INPUT or not _inside(i, prev.path):
                return None
            read.append(_relative(i, prev.path))
    if not read:
        return None
    for n in prev.members:
        for user in users.get(n.path, ()):
            if not _inside(user, prev.path) and not _inside(user, nxt.path):
                return None
    return tuple(read)


def _fold_children(children: list, graph: Graph, users: dict[str, list[str]]) -> list:
    out: list = []
    run: list[_Tree] = []
    sig = link = None

    def flush():
        if len(run) >= 2:
            out.append(_Fold(list(run)))
        else:
            out.extend(run)
        run.clear()

    for child in children:
        if isinstance(child, _Tree):
            child_sig = _signature(child, graph, _nested(child))
            if run and child_sig == sig:
                this_link = _chain_link(run[-1], child, users)
                if this_link is not None and (link is None or this_link == link) and graph.output not in (
                        n.path for n in run[-1].members):
                    run.append(child)
                    link = this_link
                    continue
            flush()
            run.append(child)
            sig, link = child_sig, None
            continue
        flush()
        out.append(child)
    flush()
    return out


def _is_single(tree: _Tree) -> bool:
    """A group that is one layer at the group's own path: drawn as that layer, no cluster."""
    return len(tree.members) == 1 and tree.members[0].path == tree.path


# ---------------------------------------------------------------- labels


def _e(text) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=True)


def _display_name(path: str) -> str:
    """The last path component, with its parent where that alone is a bare copy number (layer3.0)."""
    parts = _parts(path)
    if len(parts) > 1 and parts[-1].isdigit():
        return ".".join(parts[-2:])
    return parts[-1]


def _html(lines: list[str]) -> str:
    return "<" + "<br/>".join(lines) + ">"


def _small(text: str) -> str:
    return f'<font point-size="9">{_e(text)}</font>'


def _grey(text: str) -> str:
    return f'<font color="#555555">{_e(text)}</font>'


def _kind_text(group: Group) -> str:
    """What a group is, in a few words: its block name, "repeat ×3", "parallel, concat", ..."""
    kind, label = group.kind, group.label
    if kind == "block":
        return label
    if kind == "repeat":
        return f"repeat {label}"
    if kind == "iteration":
        return f"copy {label}"
    if kind == "branch":
        return "branch"
    return f"{kind}, {label}"  # parallel, concat; shortcut, projection


def _group_title(group: Group, path: str) -> str:
    extra = "" if group.kind == "branch" else _kind_text(group)
    return f"<b>{_e(_display_name(path))}</b>" + (f" {_grey(extra)}" if extra else "")


def _layer_label(node: Node) -> str:
    layer = lookup(node.type)
    key = layer.key_params(node.args) if layer is not None else ""
    lines = [f"<b>{_e(_display_name(node.path))}</b> {_grey(node.type)}"]
    if key:
        lines.append(_e(key))
    lines.append(_small(shape_text(node.shape)))
    return _html(lines)


def _totals(members: list[Node], figures) -> tuple[int, int]:
    return (sum(figures[n.path].params.total for n in members), sum(figures[n.path].macs for n in members))


def _figures_line(params: int, macs: int) -> str:
    text = f"{count(params)} params"
    if macs:
        text += f" · {_macs(macs)}"
    return _small(text)


def _macs(n: int) -> str:
    """MACs of one sample: 11.51 GMACs as the summary prints them, or 680K MACs for small networks."""
    return f"{giga(n)}MACs" if n >= 10_000_000 else f"{short(n)} MACs"


def _layers(n: int) -> str:
    return "1 layer" if n == 1 else f"{n} layers"


def _tooltip(path: str, what: str) -> str:
    return _plain(f"{path}: {what}")


def _plain(text: str) -> str:
    """A plain DOT string: no HTML, backslashes literal (graphviz quotes it, escaping double quotes)."""
    import graphviz

    return graphviz.escape(str(text))


def _legend_table(entries: list[tuple[str, str]], columns: int, block: bool) -> str:
    """An HTML table of colour swatches and family names, ``columns`` pairs a row."""
    swatch = '<td bgcolor="{}" width="12" border="1"> </td>'
    rows = []
    for start in range(0, len(entries), columns):
        cells = "".join(swatch.format(colour) + f'<td align="left">{_e(name)}</td>'
                        for colour, name in entries[start:start + columns])
        rows.append(f"<tr>{cells}</tr>")
    span = 2 * min(columns, len(entries))
    if block:
        rows.append(f'<tr>{swatch.format(BLOCK_COLOUR)}<td align="left" colspan="{span - 1}">'
                    "block: collapsed, or ×N identical copies</td></tr>")
    return ('<<table border="0" cellborder="0" cellspacing="3" cellpadding="1">'
            f'<tr><td colspan="{span}" align="left"><b>layer families</b></td></tr>' + "".join(rows) + "</table>>")


# ---------------------------------------------------------------- DOT


def to_dot(summary, depth: int | None = None, rankdir: str = "TB", shapes: bool = True, legend: bool = True,
           fold: bool = True) -> str:
    """The DOT text of a Summary's graph (deterministic: same summary and options, same text)."""
    import graphviz

    if rankdir not in RANKDIRS:
        raise UsageError(f"unknown rankdir '{rankdir}'; choose one of {', '.join(RANKDIRS)}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise UsageError(f"depth must be an integer >= 0, found {depth!r}")
    graph: Graph = summary.graph
    figures = summary.analysis.by_path()
    users = graph.consumers()
    root = _build_tree(graph)

    dot = graphviz.Digraph(name=_plain(graph.name or "archspec"))
    t = summary.totals
    title = (f"<b>{_e(graph.name)}</b>  {_grey('input ' + shape_text(graph.input_shape))}"
             f"<br/>{_small(f'{count(t.params)} params · {_macs(t.macs // max(summary.batch, 1))}')}")
    dot.attr("graph", rankdir=rankdir, label="<" + title + ">", labelloc="t", fontname=FONT, fontsize="14",
             nodesep="0.2", ranksep="0.22", newrank="true", tooltip=_plain(graph.doc or graph.name))
    dot.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11", margin="0.08,0.03",
             penwidth="0.8", color="#555555", height="0.3")
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor="#555555", color="#555555", arrowsize="0.6")

    display: dict[str, str] = {INPUT: INPUT_ID}  # node path -> the id of the DOT node that shows it
    used_families: list[str] = ["input"]
    blocks_shown = [False]

    dot.node(INPUT_ID, _html(["<b>input</b>", _small(shape_text(graph.input_shape))]),
             fillcolor=family_fill("input"), color=family_border("input"), tooltip=_plain("the input of one sample"))

    def add_layer(g, node: Node) -> None:
        family = family_of(node.type)
        if family not in used_families:
            used_families.append(family)
        f = figures[node.path]
        tip = _tooltip(node.path, f"{node.type}, {count(f.params.total)} params, {short(f.macs)} MACs")
        g.node(node.path, _layer_label(node), fillcolor=family_fill(family), color=family_border(family), tooltip=tip)
        display[node.path] = node.path

    def add_block_node(g, node_id: str, title: str, what: str, members: list[Node], tip: str, stacked: bool) -> None:
        params, macs = _totals(members, figures)
        lines = [title, _grey(what), _figures_line(params, macs), _small(shape_text(members[-1].shape))]
        attrs = dict(fillcolor=BLOCK_COLOUR, penwidth="1.6", tooltip=tip)
        if stacked:
            attrs["peripheries"] = "2"
            attrs["style"] = "filled"
        g.node(node_id, _html(lines), **attrs)
        for n in members:
            display[n.path] = node_id
        blocks_shown[0] = True

    def add_collapsed(g, tree: _Tree) -> None:
        what = f"{_kind_text(tree.group)} · {_layers(len(tree.members))}"
        add_block_node(g, f"@{tree.path}", f"<b>{_e(_display_name(tree.path))}</b>", what, tree.members,
                       _tooltip(tree.path, f"{what} (collapsed)"), stacked=False)

    def add_fold(g, run: _Fold) -> None:
        first, last = run.copies[0], run.copies[-1]
        n = len(run.copies)
        first_name, last_name = _display_name(first.path), _parts(last.path)[-1]
        name = f"{first_name}–{last_name}"
        group = first.group
        what = {"block": group.label, "iteration": "copies"}.get(group.kind, group.kind)
        what += f" · {_layers(len(first.members))} each"
        members = [m for copy in run.copies for m in copy.members]
        add_block_node(g, f"@{first.path}", f"<b>{_e(name)}</b> ×{n}", what, members,
                       _tooltip(f"{first.path} .. {last.path}", f"{n} identical copies of {what}"), stacked=True)

    def add_children(g, children: list) -> None:
        if fold:
            children = _fold_children(children, graph, users)
        for child in children:
            if isinstance(child, _Fold):
                add_fold(g, child)
            elif isinstance(child, Node):
                add_layer(g, child)
            elif _is_single(child):
                add_layer(g, child.members[0])
            elif depth is not None and len(_parts(child.path)) > depth:
                add_collapsed(g, child)
            else:
                if child.group.kind == "parallel":
                    parallels.append(child)
                with g.subgraph(name=f"cluster_{child.path}") as sub:
                    sub.attr(label="<" + _group_title(child.group, child.path) + ">", style="dashed,rounded",
                             color="#888888", fontsize="11", fontname=FONT, labeljust="l", margin="8",
                             tooltip=_tooltip(child.path, _kind_text(child.group)))
                    add_children(sub, child.children)

    parallels: list[_Tree] = []
    add_children(dot, root.children)
    for tree in parallels:  # the first layer of every branch on one rank, side by side
        heads = []
        for n in tree.members:
            head = display[n.path]
            if all(not _inside(i, tree.path) for i in n.inputs) and head not in heads:
                heads.append(head)
        if len(heads) > 1:
            with dot.subgraph() as same:
                same.attr(rank="same")
                for head in heads:
                    same.node(head)

    seen: dict[tuple[str, str], list[str]] = {}
    for node in graph.nodes:
        head = display[node.path]
        for src in node.inputs:
            tail = display[src]
            if tail == head:
                continue
            label = shape_text(graph.shape_of(src))
            labels = seen.setdefault((tail, head), [])
            if label not in labels:
                labels.append(label)
    for (tail, head), labels in seen.items():
        if shapes:
            dot.edge(tail, head, label=" " + ", ".join(labels) + " ")
        else:
            dot.edge(tail, head)

    if legend:
        entries = [(family_fill(f), FAMILY_LABELS.get(f, f)) for f in FAMILIES if f in used_families]
        table = _legend_table(entries, 3 if rankdir in ("TB", "BT") else 1, blocks_shown[0])
        dot.node(LEGEND_ID, table, shape="plain",
                 style="", fontsize="9", tooltip=_plain("colours by layer family"))
    return dot.source


# ---------------------------------------------------------------- rendering


def find_engine() -> tuple[str, str] | None:
    """(kind, command): the system ``dot`` where there is one, else ``graphviz-pure``; None if neither."""
    system = shutil.which("dot")
    if system:
        return "dot", system
    pure = shutil.which("graphviz-pure")
    if pure:
        return "graphviz-pure", pure
    beside = Path(sys.executable).parent / ("graphviz-pure.exe" if os.name == "nt" else "graphviz-pure")
    if beside.is_file() and os.access(beside, os.X_OK):
        return "graphviz-pure", str(beside)
    return None


def render_dot(dot_text: str, output: str | os.PathLike, fmt: str) -> Path:
    """Write ``dot_text`` to ``output`` as ``fmt`` (svg, png, pdf or dot), atomically."""
    from ..files import atomic_write

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    path = Path(output)
    if fmt == "dot":
        atomic_write(path, lambda tmp: Path(tmp).write_text(dot_text, encoding="utf-8"))
        return path
    engine = find_engine()
    if engine is None:
        raise UsageError("no Graphviz engine found to draw the graph: install one with "
                         "'pip install graphviz-pure' (or install Graphviz, e.g. 'apt-get install graphviz'), "
                         "or write the DOT text with an output ending in .dot")
    kind, command = engine
    if fmt == "pdf" and kind != "dot":
        raise UsageError(f"cannot write '{path}': PDF needs the system Graphviz (e.g. 'apt-get install graphviz' "
                         "or 'brew install graphviz'); graphviz-pure writes only .svg and .png, so choose one of those")

    def run(tmp: str) -> None:
        try:
            done = subprocess.run([command, f"-T{fmt}", "-o", tmp], input=dot_text.encode("utf-8"),
                                  capture_output=True, timeout=ENGINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ArchspecError(f"{kind} did not finish drawing '{path}' in {ENGINE_TIMEOUT_S} s") from None
        except OSError as exc:
            raise ArchspecError(f"could not run {kind} ({command}): {exc}") from None
        if done.returncode != 0 or not os.path.getsize(tmp):
            err = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            raise ArchspecError(f"{kind} failed to draw '{path}': {err}")

    atomic_write(path, run)
    return path
