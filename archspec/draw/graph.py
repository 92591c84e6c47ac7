"""The ``graph`` style: a Summary as DOT text (built with the graphviz package), laid out by Graphviz.

``to_dot`` turns the expanded graph of a Summary into DOT: one node per layer, coloured by its
family (the one table, ``style.FAMILY_COLOURS``, lightened), every block call, named repeat,
repeat copy, parallel branch and shortcut of ``graph.groups`` as a dashed cluster nested as the
paths nest. Each tensor's shape is written once, in the node that makes it (edges carry none),
and every MAC figure of a picture is in the same unit (that of the network's total). What keeps
big networks readable:

- ``compact`` (the default) writes a layer that only follows another (batch norm, activation,
  dropout right after a convolution, with nothing else reading in between) into that layer's
  node: "conv 3×3, 64 + bn, relu". A block that is then one node is drawn as that node, titled
  with the block's name;
- ``depth=N`` draws every group whose path has more than N components as one node with its
  block name and totals (as ``archspec summary --depth N`` lists it); a parallel branch drawn
  so is named by what it does, its kernel sizes ("1×1 → 3×3", "maxpool 3×3 → 1×1");
- folding (``fold=True``) draws a run of consecutive identical copies as one node marked ``×N``,
  whether the copies are groups (ResNet-152's ``layer3.1`` .. ``layer3.35`` become
  ``layer3.1–35 ×35``) or unnamed runs of layers (a ``repeat`` without a name leaves no group:
  a period of identical layers is found in the sequence), so the size of the picture does not
  grow with the number of copies;
- ``wrap=N`` cuts the top-level chain into N pieces laid side by side (``rankdir`` TB) or one
  under another (LR), so a long chain fits a 16:9 slide; where blocks are drawn as boxes no edge
  runs from one piece to another: a piece ends in a marker "continued in column k + 1" and the
  next begins with "from column k", whose edges go to the layers that read the tensor cut (a
  graph of plain nodes keeps each cut as one dashed edge, which crosses nothing);
- without ``depth`` and with ``wrap="auto"`` (``graph_picture``'s defaults) the picture is laid
  out at every depth from every layer down to 0 until one fits a slide (``slide.fits_slide``:
  on 1920 × 1080 its smallest text at 6 px or more), and a line under the title says so.

Two sibling groups are *identical* when they hold the same sequence of layers with the same
relative paths, types, arguments, trainability, init and output shapes, read their inputs from
the same relative paths (or, for inputs from outside the group, tensors of the same shape), and
contain the same nested groups (relative paths, kinds, labels). Runs of layers are identical when
they have the same types, arguments, shapes and inputs at the same distances back. Consecutive
identical copies fold only when they form a chain: every outside input of a copy comes from the
copy before it, the same way each time, and nothing outside the run reads a copy other than the
last. So parameters, MACs and shapes of every folded copy are equal, and no edge is lost.

``render_dot`` writes the DOT text itself, hands PDF to the system ``dot``, and draws SVG and PNG
itself from the engine's layout (``layout.py``), with the bundled font.

Nothing here imports torch.
"""
from __future__ import annotations

import html
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArchspecError, UsageError
from ..graph import INPUT, Graph, Group, Node
from ..layers import FAMILIES, lookup
from ..render import count, shape_text, short
from .scene import Scene
from .slide import MIN_TEXT_PX, text_on_slide
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
FONT = "DejaVu Sans"  # bundled (draw/fonts); Graphviz knows its advance widths
ENGINE_TIMEOUT_S = 300
INPUT_ID = "@input"
LEGEND_ID = "@legend"
JOIN_ID = "@join"  # the markers where a wrapped chain leaves one piece and goes on in the next
JOIN_MARKER = dict(shape="box", style="rounded,dashed", color="#888888", fontcolor="#555555", fontsize="11",
                   fillcolor="#ffffff")
FOLLOWERS = ("norm", "activation", "regularization")  # families a compact node takes in after its layer
MAX_PERIOD = 256  # longest run of layers looked for as one copy of an unnamed repeat
MIN_FOLDED_LAYERS = 12  # a shorter run of repeated layers (VGG's conv, relu, conv, relu) is clearer drawn out
MAX_WRAP = 8
MAX_LAID_OUT = 400  # a picture of more nodes and boxes is not laid out to be measured against a slide


# ---------------------------------------------------------------- the display tree


@dataclass
class _Tree:
    """A group (or the root, path "") with its children in execution order: nodes and groups."""

    path: str
    group: Group | None
    children: list = field(default_factory=list)  # of Node | _Tree
    members: list[Node] = field(default_factory=list)  # every node inside, in execution order

    @property
    def known_group(self) -> Group:
        """The group of a tree below the root (only the root, path "", has none)."""
        if self.group is None:
            raise ValueError("the root of the drawing is no group")
        return self.group


@dataclass
class _Fold:
    """A run of consecutive identical copies (groups, or runs of layers) drawn as one node."""

    copies: list[list[Node]]  # the nodes of each copy
    name: str  # "layer3.1–35", or "conv3 … relu2000" for unnamed layers
    what: str  # "bottleneck", "copies", or what one copy does
    path: str  # the first copy's group, or its first layer
    growth: str = ""  # copies alike but for steadily growing channels or changing rates: how they differ

    @property
    def members(self) -> list[Node]:
        return [n for copy in self.copies for n in copy]


@dataclass
class _Stack:
    """One layer and the layers that only follow it (batch norm, activation, dropout): one node."""

    nodes: list[Node]

    @property
    def path(self) -> str:
        return self.nodes[0].path


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


def _display_name(path: str) -> str:
    """The last path component, with its parent where that alone is a bare copy number (layer3.0)."""
    parts = _parts(path)
    if len(parts) > 1 and parts[-1].isdigit():
        return ".".join(parts[-2:])
    return parts[-1]


# ---------------------------------------------------------------- folding identical copies


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


def _signature(tree: _Tree, graph: Graph, exact: bool = True) -> tuple:
    """What two sibling groups must share to fold (see the module docstring); not ``exact``,
    shapes are compared without their channel counts and arguments without their fractional
    values (copies that grow or whose rates change, see ``_variation``)."""
    def shape(s):
        return s if exact or not s else s[1:]

    def args(a):
        return a if exact else {k: None if isinstance(v, float) else v for k, v in a.items()}

    members = []
    for n in tree.members:
        inputs = tuple(("in", _relative(i, tree.path)) if i != INPUT and _inside(i, tree.path)
                       else ("out", shape(graph.shape_of(i))) for i in n.inputs)
        members.append((_relative(n.path, tree.path), n.type, args(n.args), shape(n.shape), n.trainable, n.init,
                        inputs))
    groups = tuple((_relative(t.path, tree.path), t.known_group.kind, _kept_label(t.known_group))
                   for t in _nested(tree))
    return (tree.known_group.kind, _kept_label(tree.known_group), groups, tuple(members))


def _chain_link(prev: list[Node], nxt: list[Node], users: dict[str, list[str]]) -> tuple | None:
    """How ``nxt`` reads ``prev`` (positions in ``prev`` of what it reads from outside itself), if
    it reads only ``prev`` from outside and nothing but ``nxt`` reads ``prev`` from outside; else None."""
    at_prev = {n.path: i for i, n in enumerate(prev)}
    own = {n.path for n in nxt}
    read = []
    for n in nxt:
        for i in n.inputs:
            if i in own:
                continue
            if i not in at_prev:
                return None
            read.append(at_prev[i])
    if not read:
        return None
    for n in prev:
        for user in users.get(n.path, ()):
            if user not in at_prev and user not in own:
                return None
    return tuple(read)


def _fold_runs(items: list, key, copy_of, users, output: str) -> list[list]:
    """Split ``items`` into runs: consecutive items with equal ``key`` whose copies chain alike."""
    runs: list[list] = []
    link = None
    last_key = object()
    for item in items:
        k = key(item)
        if runs and k is not None and k == last_key:
            prev = copy_of(runs[-1][-1])
            this_link = _chain_link(prev, copy_of(item), users)
            if this_link is not None and (link is None or this_link == link) and all(n.path != output for n in prev):
                runs[-1].append(item)
                link = this_link
                continue
        runs.append([item])
        last_key, link = k, None
    return runs


def _fold_groups(children: list, graph: Graph, users) -> list:
    """Runs of identical sibling groups as ``_Fold``s, then runs of groups that differ only by
    channels growing at a steady rate or changing rates (``_variation``); everything else as it was."""
    def copy_of(child):
        return child.members if isinstance(child, _Tree) else [child]

    out: list = []
    for run in _fold_runs(children, lambda c: _signature(c, graph) if isinstance(c, _Tree) else None,
                          copy_of, users, graph.output):
        out.append(_group_fold(run, "") if len(run) > 1 else run[0])
    varied: list = []
    for run in _fold_runs(out, lambda c: _signature(c, graph, exact=False) if isinstance(c, _Tree) else None,
                          copy_of, users, graph.output):
        variation = _variation([t.members for t in run]) if len(run) > 1 else None
        if variation is None:
            varied.extend(run)
        else:
            varied.append(_group_fold(run, variation))
    return varied


def _group_fold(run: list[_Tree], variation: str) -> _Fold:
    first, last = run[0], run[-1]
    group = first.known_group
    what = {"block": group.label, "iteration": "copies"}.get(group.kind, group.kind)
    name = f"{_display_name(first.path)}–{_parts(last.path)[-1]}"
    return _Fold([t.members for t in run], name, what, first.path, variation)


def _variation(copies: list[list[Node]]) -> str | None:
    """How chained copies alike but for their channel counts and fractional arguments differ, when
    every layer's channels grow by the same step from copy to copy (a dense block: each layer's
    output is its input and 32 new channels): "64 → 256 channels, +32 each" and, for a rate that
    changes (stochastic depth's drop probability, rising block by block), "drop_path p 0.0353 →
    0.0824"; else None."""
    def channels(copy):
        return [n.shape[0] if n.shape else 0 for n in copy]

    steps = {tuple(b - a for a, b in zip(channels(p), channels(q))) for p, q in zip(copies, copies[1:])}
    if len(steps) != 1 or any(d < 0 for d in next(iter(steps))):
        return None
    words = []
    step = next(iter(steps))[-1]
    if step:
        words.append(f"{channels(copies[0])[0]} → {channels(copies[-1])[-1]} channels, +{step} each")
    for i, node in enumerate(copies[0]):
        for key, value in node.args.items():
            last = copies[-1][i].args.get(key)
            if isinstance(value, float) and any(c[i].args.get(key) != value for c in copies):
                words.append(f"{_short_type(node)} {key} {value:.3g} → {last:.3g}")
    return "; ".join(words) or None


def _layer_key(nodes: list[Node], i: int, position: dict[str, int]) -> tuple:
    """A layer as a copy of an unnamed repeat shows it: what it is and how far back its inputs are."""
    n = nodes[i]
    # what comes from outside the run counts as just before it: the first copy reads it as the
    # others read the copy before them (the chain test then checks what is really read)
    inputs = tuple(i - position.get(s, -1) for s in n.inputs)
    return (n.type, repr(n.args), n.shape, n.trainable, repr(n.init), inputs)


def _fold_layers(children: list, graph: Graph, users) -> list:
    """Runs of layers that repeat with a period (an unnamed ``repeat``) as ``_Fold``s."""
    out: list = []
    start = 0
    while start < len(children):
        if not isinstance(children[start], Node):
            out.append(children[start])
            start += 1
            continue
        end = start
        while end < len(children) and isinstance(children[end], Node):
            end += 1
        out.extend(_periodic(children[start:end], graph, users))
        start = end
    return out


def _periodic(nodes: list[Node], graph: Graph, users) -> list:
    """``nodes`` (a run of sibling layers) with every stretch of ≥ 2 chained identical copies folded."""
    if len(nodes) < 4:
        return list(nodes)
    position = {n.path: i for i, n in enumerate(nodes)}
    ids: dict[tuple, int] = {}
    keys = [ids.setdefault(_layer_key(nodes, i, position), len(ids)) for i in range(len(nodes))]
    # candidate periods: distances to the next layer of the same kind (few in a real network)
    last_seen: dict[int, int] = {}
    periods: set[int] = set()
    for i, k in enumerate(keys):
        if k in last_seen and i - last_seen[k] <= MAX_PERIOD:
            periods.add(i - last_seen[k])
        last_seen[k] = i
    best = None  # (layers covered, -period, start, copies)
    for p in sorted(periods):
        i = 0
        while i + 2 * p <= len(nodes):
            if keys[i] != keys[i + p]:
                i += 1
                continue
            j = i
            while j + p < len(nodes) and keys[j] == keys[j + p]:
                j += 1
            copies = (j - i) // p + 1  # layers i .. j+p-1 match period p
            if copies >= 2:
                for s in range(i, min(i + p, j - p + 1)):  # the first phase whose copies chain
                    n_copies = (j + p - s) // p
                    if n_copies < 2:
                        break
                    cand = [nodes[s + c * p: s + (c + 1) * p] for c in range(n_copies)]
                    chained = _chained(cand, users, graph.output)
                    if len(chained) >= 2 and len(chained) * p >= MIN_FOLDED_LAYERS:
                        score = (len(chained) * p, -p, -s)
                        if best is None or score > best[0]:
                            best = (score, s, chained)
                        break
            i = j + 1
    if best is None:
        return list(nodes)
    _, s, chain = best
    first, last = chain[0], chain[-1]
    end = s + len(chain) * len(first)
    fold = _Fold(chain, f"{first[0].name} … {last[-1].name}", does(first), first[0].path)
    return _periodic(nodes[:s], graph, users) + [fold] + _periodic(nodes[end:], graph, users)


def _chained(copies: list[list[Node]], users, output: str) -> list[list[Node]]:
    """The longest prefix of ``copies`` that forms a chain (each reads only the one before)."""
    out = [copies[0]]
    link = None
    for nxt in copies[1:]:
        this = _chain_link(out[-1], nxt, users)
        if this is None or (link is not None and this != link) or any(n.path == output for n in out[-1]):
            break
        out.append(nxt)
        link = this
    return out


def _stack_followers(children: list, users) -> list:
    """Layers that only follow the layer before them joined to it as one ``_Stack``."""
    out: list = []
    for child in children:
        if isinstance(child, Node):
            prev = out[-1] if out and isinstance(out[-1], _Stack) else None
            if (prev is not None and family_of(child.type) in FOLLOWERS and child.inputs == [prev.nodes[-1].path]
                    and users.get(prev.nodes[-1].path) == [child.path]):
                prev.nodes.append(child)
                continue
            out.append(_Stack([child]))
        else:
            out.append(child)
    return out


# ---------------------------------------------------------------- labels


def _e(text) -> str:
    """Escape text for a Graphviz HTML-like label."""
    return html.escape(str(text), quote=True)


def _html(lines: list[str]) -> str:
    return "<" + "<br/>".join(lines) + ">"


def _small(text: str) -> str:
    return f'<font point-size="9">{_e(text)}</font>'


def _grey(text: str) -> str:
    return f'<font color="#555555">{_e(text)}</font>'


def _plain(text: str) -> str:
    """A plain DOT string: no HTML, backslashes literal (graphviz quotes it, escaping double quotes)."""
    import graphviz

    return graphviz.escape(str(text))


def _layers(n: int) -> str:
    return "1 layer" if n == 1 else f"{n} layers"


def _short_type(node: Node) -> str:
    return {"conv2d": "conv", "linear": "fc", "batchnorm2d": "bn", "batchnorm1d": "bn"}.get(node.type, node.type)


def does(members: list[Node]) -> str:
    """What a branch does, in kernel sizes: "1×1", "1×1 → 3×3", "maxpool 3×3 → 1×1", "identity"."""
    steps = []
    for n in members:
        family = family_of(n.type)
        layer = lookup(n.type)
        key = layer.key_params(n.args).split(",")[0] if layer is not None else ""
        if family == "conv":
            steps.append(key or _short_type(n))
        elif family == "pool":
            steps.append(f"{n.type.removesuffix('2d')} {key}".strip())
        elif family in ("dense", "merge"):
            steps.append(_short_type(n))
    if not steps:
        return "identity" if not members or all(family_of(n.type) == "reshape" for n in members) else \
            " → ".join(dict.fromkeys(_short_type(n) for n in members))
    if len(steps) > 4:
        steps = steps[:2] + ["…"] + steps[-1:]
    return " → ".join(steps)


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


@dataclass(frozen=True)
class MacUnit:
    """The one unit every MAC figure of a picture is written in, chosen from the network's total."""

    prefix: str
    scale: float

    @classmethod
    def for_total(cls, total: int) -> "MacUnit":
        for prefix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
            if total >= scale:
                return cls(prefix, scale)
        return cls("", 1.0)

    def __call__(self, macs: int) -> str:
        return f"{macs / self.scale:.3g} {self.prefix}MACs"


# ---------------------------------------------------------------- DOT


@dataclass
class DotOptions:
    depth: int | None = None
    rankdir: str = "TB"
    shapes: bool = True
    legend: bool = True
    fold: bool = True
    compact: bool = True
    wrap: int = 1
    note: str = ""  # a line under the title (why blocks are collapsed)

    def check(self) -> None:
        if self.rankdir not in RANKDIRS:
            raise UsageError(f"unknown rankdir '{self.rankdir}'; choose one of {', '.join(RANKDIRS)}")
        depth = self.depth
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
            raise UsageError(f"depth must be an integer >= 0, found {depth!r}")
        if isinstance(self.wrap, bool) or not isinstance(self.wrap, int) or not 1 <= self.wrap <= MAX_WRAP:
            raise UsageError(f"wrap must be an integer from 1 to {MAX_WRAP}, found {self.wrap!r}")


class _DotWriter:
    """Builds the DOT of one Summary, section by section (see ``to_dot``)."""

    def __init__(self, summary, options: DotOptions):
        import graphviz

        self.summary = summary
        self.options = options
        self.graph: Graph = summary.graph
        self.figures = summary.analysis.by_path()
        self.users = self.graph.consumers()
        self.macs = MacUnit.for_total(summary.totals.macs // max(summary.batch, 1))
        self.dot = graphviz.Digraph(name=_plain(self.graph.name or "archspec"))
        self.display: dict[str, str] = {INPUT: INPUT_ID}  # node path -> the id of the DOT node that shows it
        self.families: list[str] = ["input"]
        self.blocks_shown: dict[str, None] = {}  # the kinds of white block drawn, for the legend
        self.parallels: list[_Tree] = []
        self.boxed = False  # whether any block is drawn as a box (a cluster)
        self.top_level: list = []  # the root's display children, for wrapping

    # -- the whole picture

    def write(self) -> str:
        self.header()
        self.input_node()
        self.top_level = self.display_children(_build_tree(self.graph))
        if self.options.wrap > 1:
            self.top_level = self.opened(self.top_level)
        self.add_children(self.dot, self.top_level)
        self.align_branch_heads()
        cuts = self.wrap_cuts()
        self.add_joins(cuts)
        self.add_edges(cuts)
        if self.options.legend:
            self.add_legend()
        return self.dot.source

    def header(self) -> None:
        graph, t = self.graph, self.summary.totals
        title = (f'<<table border="0" cellpadding="1" cellspacing="0"><tr><td><b>{_e(graph.name)}</b>  '
                 f'{_grey("input " + shape_text(graph.input_shape))}</td></tr><tr><td>'
                 f'{_small(f"{count(t.params)} params · {self.macs(t.macs // max(self.summary.batch, 1))}")}'
                 "</td></tr>" + (f"<tr><td>{_small(self.options.note)}</td></tr>" if self.options.note else "")
                 + "</table>>")
        self.dot.attr("graph", rankdir=self.options.rankdir, label=title, labelloc="t", fontname=FONT, fontsize="14",
                      nodesep="0.2", ranksep="0.22", newrank="true", tooltip=_plain(graph.doc or graph.name))
        self.dot.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11", margin="0.08,0.03",
                      penwidth="0.8", color="#555555", height="0.3")
        self.dot.attr("edge", fontname=FONT, fontsize="8", fontcolor="#555555", color="#555555", arrowsize="0.6")

    def input_node(self) -> None:
        lines = ["<b>input</b>"] + ([_small(shape_text(self.graph.input_shape))] if self.options.shapes else [])
        self.dot.node(INPUT_ID, _html(lines), fillcolor=family_fill("input"), color=family_border("input"),
                      tooltip=_plain("the input of one sample"))

    # -- what is drawn at each level

    def display_children(self, tree: _Tree) -> list:
        children = tree.children
        if self.options.fold:
            children = _fold_layers(_fold_groups(children, self.graph, self.users), self.graph, self.users)
        if self.options.compact:
            children = _stack_followers(children, self.users)
        return children

    def add_children(self, g, children: list, branches_of: _Tree | None = None) -> None:
        """Draw ``children``; ``branches_of`` is the parallel group whose branches they are."""
        for child in children:
            if branches_of is not None and isinstance(child, _Tree):  # (the merge is a layer, not a branch)
                self.add_branch(g, child, branches_of)
            elif isinstance(child, _Fold):
                self.add_fold(g, child)
            elif isinstance(child, Node):
                self.add_stack(g, _Stack([child]))
            elif isinstance(child, _Stack):
                self.add_stack(g, child)
            elif len(child.members) == 1 and child.members[0].path == child.path:
                self.add_stack(g, _Stack([child.members[0]]))  # a group that is one layer at its own path
            elif self.options.depth is not None and len(_parts(child.path)) > self.options.depth:
                self.add_collapsed(g, child)
            else:
                self.add_group(g, child)

    def add_group(self, g, tree: _Tree) -> None:
        children = self.display_children(tree)
        if len(children) == 1 and isinstance(children[0], _Stack) and tree.known_group.kind != "parallel":
            self.add_stack(g, children[0], titled_by=tree)  # a block that is one node: no cluster
            return
        parallel = tree.known_group.kind == "parallel"
        if parallel:
            self.parallels.append(tree)
        self.boxed = True
        with g.subgraph(name=f"cluster_{tree.path}") as sub:
            sub.attr(label="<" + self.group_title(tree) + ">", style="dashed,rounded", color="#888888",
                     fontsize="11", fontname=FONT, labeljust="l", margin="8",
                     tooltip=_plain(f"{tree.path}: {_kind_text(tree.known_group)}"))
            self.add_children(sub, children, branches_of=tree if parallel else None)

    def add_branch(self, g, child, parallel: _Tree) -> None:
        """One branch of a parallel group: a cluster titled by what it does, every branch alike."""
        members = _members(child)
        path = child.path
        if self.options.depth is not None and len(_parts(path)) > self.options.depth and isinstance(child, _Tree):
            self.add_collapsed(g, child, branch=True)
            return
        self.boxed = True
        with g.subgraph(name=f"cluster_{path}") as sub:
            title = f"<b>{_e(does(members))}</b>"  # short, so edges into the branch pass beside it
            sub.attr(label="<" + title + ">", style="dashed,rounded", color="#aaaaaa", fontsize="11", fontname=FONT,
                     labeljust="l", margin="6", tooltip=_plain(f"{path}: branch of {parallel.path}"))
            if isinstance(child, _Tree) and not (len(child.members) == 1 and child.members[0].path == child.path):
                inner = self.display_children(child)
                if child.known_group.kind == "branch" or len(inner) != 1 or not isinstance(inner[0], _Stack):
                    self.add_children(sub, inner)
                else:
                    self.add_stack(sub, inner[0], titled_by=child)
            else:
                self.add_children(sub, [child])

    def group_title(self, tree: _Tree) -> str:
        group, name = tree.known_group, _display_name(tree.path)
        if group.kind == "branch":
            return f"<b>{_e(does(tree.members))}</b> {_grey(name)}"
        return f"<b>{_e(name)}</b> {_grey(_kind_text(group))}"

    def add_stack(self, g, stack: _Stack, titled_by: _Tree | None = None) -> None:
        """A layer (and the layers that only follow it) as one node."""
        main = stack.nodes[0]
        family = family_of(main.type)
        for n in stack.nodes:
            fam = family_of(n.type)
            if fam not in self.families:
                self.families.append(fam)
        layer = lookup(main.type)
        key = layer.key_params(main.args) if layer is not None else ""
        if titled_by is not None:
            head = f"<b>{_e(_display_name(titled_by.path))}</b> {_grey(_kind_text(titled_by.known_group))}"
            body = f"{main.type} {key}".strip()
        else:
            head = f"<b>{_e(_display_name(main.path))}</b> {_grey(main.type)}"
            body = key
        followers = ", ".join(_short_type(n) for n in stack.nodes[1:])
        if followers:
            body = f"{body} + {followers}" if body else f"+ {followers}"
        lines = [head] + ([_e(body)] if body else [])
        if self.options.shapes:
            lines.append(_small(shape_text(stack.nodes[-1].shape)))
        params = sum(self.figures[n.path].params.total for n in stack.nodes)
        macs = sum(self.figures[n.path].macs for n in stack.nodes)
        what = " + ".join(n.type for n in stack.nodes)
        tip = f"{main.path}: {what}, {count(params)} params, {short(macs)} MACs"
        g.node(main.path, _html(lines), fillcolor=family_fill(family), color=family_border(family), tooltip=_plain(tip))
        for n in stack.nodes:
            self.display[n.path] = main.path

    def add_block_node(self, g, node_id: str, head: str, what: str, members: list[Node], tip: str,
                       stacked: bool, note: str = "", kind: str = "collapsed") -> None:
        params = sum(self.figures[n.path].params.total for n in members)
        macs = sum(self.figures[n.path].macs for n in members)
        figures = f"{count(params)} params" + (f" · {self.macs(macs)}" if macs else "")
        lines = [head, _grey(what)] + ([_grey(note)] if note else []) + [_small(figures)]
        if self.options.shapes:
            lines.append(_small(shape_text(members[-1].shape)))
        attrs = dict(fillcolor=BLOCK_COLOUR, penwidth="1.6", tooltip=_plain(tip))
        if stacked:
            attrs["peripheries"] = "2"
            attrs["style"] = "filled"
        g.node(node_id, _html(lines), **attrs)
        for n in members:
            self.display[n.path] = node_id
        self.blocks_shown[kind] = None

    def add_collapsed(self, g, tree: _Tree, branch: bool = False) -> None:
        name = _display_name(tree.path)
        if branch or tree.known_group.kind == "branch":
            head, what = f"<b>{_e(does(tree.members))}</b>", f"{name} · {_layers(len(tree.members))}"
        else:
            head, what = f"<b>{_e(name)}</b>", f"{_kind_text(tree.known_group)} · {_layers(len(tree.members))}"
        self.add_block_node(g, f"@{tree.path}", head, what, tree.members, f"{tree.path}: {what} (collapsed)",
                            stacked=False)

    def add_fold(self, g, run: _Fold) -> None:
        n = len(run.copies)
        what = f"{run.what} · {_layers(len(run.copies[0]))} each"
        first, last = run.copies[0][0].path, run.copies[-1][-1].path
        alike = "identical copies" if not run.growth else "copies alike but for channels or rates"
        self.add_block_node(g, f"@{run.path}", f"<b>{_e(run.name)}</b> ×{n}", what, run.members,
                            f"{first} .. {last}: {n} {alike} of {what}" + (f"; {run.growth}" if run.growth else ""),
                            stacked=True, note=run.growth, kind="copies that differ" if run.growth else "copies")

    # -- ranks and edges

    def align_branch_heads(self) -> None:
        """The first node of every branch of a parallel group on one rank, side by side."""
        for tree in self.parallels:
            heads = []
            for n in tree.members:
                head = self.display[n.path]
                if all(not _inside(i, tree.path) for i in n.inputs) and head not in heads:
                    heads.append(head)
            if len(heads) > 1:
                with self.dot.subgraph() as same:
                    same.attr(rank="same")
                    for head in heads:
                        same.node(head)
                    for a, b in zip(heads, heads[1:]):  # in the order the spec lists the branches
                        same.edge(a, b, style="invis")

    def display_edges(self) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for node in self.graph.nodes:
            head = self.display[node.path]
            for src in node.inputs:
                tail = self.display[src]
                if tail != head:
                    seen[(tail, head)] = None
        return list(seen)

    def wrap_cuts(self) -> list[tuple[str, list[str]]]:
        """Where the top-level chain is cut into ``wrap`` pieces: for each cut, in order, the node
        whose output passes over it and the nodes of the next piece that read that output."""
        pieces = self.options.wrap
        if pieces <= 1:
            return []
        units = self.top_level
        child_of: dict[str, int] = {}
        for i, child in enumerate(units):
            for n in _members(child):
                child_of[self.display[n.path]] = i
        edges = self.display_edges()
        crossing: dict[int, list[tuple[str, str]]] = {}  # cut before child i -> edges over it
        for tail, head in edges:
            a, b = child_of.get(tail, -1), child_of[head]
            for i in range(a + 1, b + 1):
                crossing.setdefault(i, []).append((tail, head))
        ranks = _ranks(edges)
        extent = [max((ranks[self.display[n.path]] for n in _members(c)), default=0) for c in units]
        # a cut is allowed where one tensor crosses it, from the child just before
        allowed = [i for i in range(1, len(units))
                   if len({t for t, _ in crossing.get(i, [])}) == 1 and child_of.get(crossing[i][0][0]) == i - 1]
        total = extent[-1] if extent else 0
        cuts: list[int] = []
        piece = total / pieces
        for k in range(1, pieces):
            target = total * k / pieces
            # near the even place, a cut that one edge crosses beats one that several do (a wrapped
            # parallel group would trail an edge to each of its branches)
            best = min((i for i in allowed if not cuts or i > cuts[-1]),
                       key=lambda i: abs(extent[i - 1] - target) + 0.4 * piece * (len(crossing[i]) > 1),
                       default=None)
            if best is not None:
                cuts.append(best)
        return [(crossing[i][0][0], list(dict.fromkeys(head for _, head in crossing[i]))) for i in cuts]

    def opened(self, children: list) -> list:
        """The top-level children, where one group holds most of the layers (DenseNet's and
        torchvision's ``features``) its children instead, as deep as that goes: drawn without that
        group's box, so a wrap can cut between them (Graphviz keeps a box in one piece)."""
        units = list(children)
        total = len(self.graph.nodes)
        depth = self.options.depth
        while True:
            big = next((i for i, c in enumerate(units) if isinstance(c, _Tree) and 2 * len(c.members) > total
                        and c.known_group.kind == "block" and (depth is None or len(_parts(c.path)) <= depth)),
                       None)
            if big is None:
                return units
            units[big:big + 1] = self.display_children(units[big])

    def add_edges(self, cuts: list[tuple[str, list[str]]]) -> None:
        joined = {(tail, head) for tail, heads in cuts for head in heads}
        for tail, head in self.display_edges():
            if (tail, head) not in joined:
                self.dot.edge(tail, head)
            elif not self.boxed:  # a join drawn as one edge (see add_joins)
                self.dot.edge(tail, head, constraint="false", style="dashed")

    def add_joins(self, cuts: list[tuple[str, list[str]]]) -> None:
        """The pieces of a wrapped chain side by side (one under another for LR/RL), in the order
        they run, their beginnings on one rank.

        Where blocks are drawn as boxes, an edge from one piece to the next would cross them, so
        each cut is a pair of markers: the piece before it ends in "continued in column k + 1",
        the next begins, on the input's rank, with "from column k", whose edges go to the layers
        that read the tensor cut; no edge runs from one piece to another. A graph of plain nodes
        only keeps each cut as one dashed edge, from a column's foot to the next one's head: it
        passes between plain nodes and crosses nothing, and four markers would outnumber them."""
        if not cuts:
            return
        if self.boxed:
            starts = [INPUT_ID] + [self.join_markers(k, tail, heads) for k, (tail, heads) in enumerate(cuts, start=1)]
        else:
            first = self.display[_members(self.top_level[0])[0].path]
            starts = list(dict.fromkeys([first] + [head for _, heads in cuts for head in heads]))
        with self.dot.subgraph() as same:
            same.attr(rank="same")
            for node_id in starts:
                same.node(node_id)
            for left, right in zip(starts, starts[1:]):  # the pieces left to right in the order they run
                same.edge(left, right, style="invis")

    def join_markers(self, k: int, tail: str, heads: list[str]) -> str:
        """The markers of the k-th cut (see ``add_joins``); returns the one that begins the next piece."""
        piece = "column" if self.options.rankdir in ("TB", "BT") else "row"
        end, start, name = f"{JOIN_ID}{k}.end", f"{JOIN_ID}{k}.start", tail.lstrip("@")
        self.dot.node(end, f"continued in {piece} {k + 1}", **JOIN_MARKER,
                      tooltip=_plain(f"the output of {name} goes on in {piece} {k + 1}"))
        self.dot.node(start, f"from {piece} {k}", **JOIN_MARKER,
                      tooltip=_plain(f"the output of {name}, at the end of {piece} {k}"))
        self.dot.edge(tail, end)
        for head in heads:
            self.dot.edge(start, head)
        return start

    def add_legend(self) -> None:
        entries = [(family_fill(f), FAMILY_LABELS.get(f, f)) for f in FAMILIES if f in self.families]
        columns = 3 if self.options.rankdir in ("TB", "BT") else 1
        self.dot.node(LEGEND_ID, _legend_table(entries, columns, self.blocks_shown), shape="plain", style="",
                      fontsize="9", tooltip=_plain("colours by layer family"))


def _members(child) -> list[Node]:
    if isinstance(child, Node):
        return [child]
    if isinstance(child, _Stack):
        return child.nodes
    return child.members


def _ranks(edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path rank of every display node (edges are in execution order of their heads)."""
    rank: dict[str, int] = {INPUT_ID: 0}
    for tail, head in edges:
        rank[head] = max(rank.get(head, 0), rank.get(tail, 0) + 1)
    return rank


def _legend_table(entries: list[tuple[str, str]], columns: int, blocks) -> str:
    """An HTML table of colour swatches and family names, ``columns`` pairs a row, and a white
    swatch for the kinds of ``blocks`` drawn ("collapsed", "copies", "copies that differ")."""
    swatch = '<td bgcolor="{}" width="12" border="1"> </td>'
    rows = []
    for start in range(0, len(entries), columns):
        cells = "".join(swatch.format(colour) + f'<td align="left">{_e(name)}</td>'
                        for colour, name in entries[start:start + columns])
        rows.append(f"<tr>{cells}</tr>")
    span = 2 * min(columns, len(entries))
    if blocks:
        words = {"collapsed": "collapsed", "copies": "×N identical copies",
                 "copies that differ": "×N copies that differ as the node says"}
        rows.append(f'<tr>{swatch.format(BLOCK_COLOUR)}<td align="left" colspan="{span - 1}">'
                    f"block: {_e(', or '.join(words[k] for k in words if k in blocks))}</td></tr>")
    return ('<<table border="0" cellborder="0" cellspacing="3" cellpadding="1">'
            f'<tr><td colspan="{span}" align="left"><b>layer families</b></td></tr>' + "".join(rows) + "</table>>")


def to_dot(summary, depth: int | None = None, rankdir: str = "TB", shapes: bool = True, legend: bool = True,
           fold: bool = True, compact: bool = True, wrap: int = 1, note: str = "") -> str:
    """The DOT text of a Summary's graph (deterministic: same summary and options, same text)."""
    return dot_and_nodes(summary, depth, rankdir, shapes, legend, fold, compact, wrap, note)[0]


def dot_and_nodes(summary, depth: int | None = None, rankdir: str = "TB", shapes: bool = True, legend: bool = True,
                  fold: bool = True, compact: bool = True, wrap: int = 1,
                  note: str = "") -> tuple[str, dict[str, list[str]]]:
    """The DOT text, and for each DOT node the paths of the layers it shows (a page maps clicks so)."""
    options = DotOptions(depth, rankdir, shapes, legend, fold, compact, wrap, note)
    options.check()
    writer = _DotWriter(summary, options)
    text = writer.write()
    shows: dict[str, list[str]] = {}
    for path, node_id in writer.display.items():
        if path != INPUT:
            shows.setdefault(node_id, []).append(path)
    return text, shows


def graph_picture(summary, wrap: int | str = "auto", **options):
    """The graph style as a ``Picture``; ``wrap="auto"`` cuts a long chain into the number of pieces
    that brings the picture nearest 16:9 (it lays the graph out once whole to measure it) and,
    without a ``depth``, opens blocks as deep as still fits a slide (``slide.fits_slide``)."""
    from .picture import Picture

    if wrap != "auto" and (isinstance(wrap, bool) or not isinstance(wrap, int)):
        raise UsageError(f"wrap must be 'auto' or an integer from 1 to {MAX_WRAP}, found {wrap!r}")
    if wrap != "auto" or find_engine() is None:
        dot = to_dot(summary, wrap=wrap if isinstance(wrap, int) else 1, **options)
        return Picture(lazy_scene=lambda: dot_scene(dot, title=summary.name), dot=dot, formats=FORMATS,
                       write_other=lambda path, fmt: render_dot(dot, path, fmt))
    if options.get("depth") is not None:
        dot, scene = _wrapped(summary, options)
    else:
        dot, scene = _slide_picture(summary, options)
    return Picture(scene, dot=dot, formats=FORMATS, write_other=lambda path, fmt: render_dot(dot, path, fmt))


def _wrapped(summary, options: dict) -> tuple[str, Scene]:
    """(DOT, scene) of the graph cut into the number of pieces, near the one that would bring it
    nearest 16:9, that makes its smallest text largest on a slide (``slide.text_on_slide``)."""
    dot = to_dot(summary, **options)
    scene = dot_scene(dot, title=summary.name)
    best = (text_on_slide(scene), dot, scene)
    near = fitting_wrap(scene.width, scene.height, options.get("rankdir", "TB"))
    if near > 1:
        for pieces in sorted({max(2, near - 1), near, min(MAX_WRAP, near + 1)}):
            wrapped = to_dot(summary, wrap=pieces, **options)
            if wrapped != dot:
                other = dot_scene(wrapped, title=summary.name)
                legible = text_on_slide(other)
                if legible > best[0]:
                    best = (legible, wrapped, other)
    return best[1], best[2]


def _slide_picture(summary, options: dict) -> tuple[str, Scene]:
    """(DOT, scene) at the deepest depth whose wrapped picture fits a slide (every layer first, then
    blocks collapsed from the deepest paths up), else the most legible one; a depth whose DOT has
    more than MAX_LAID_OUT nodes and boxes is not laid out (work bound, not the rule: such a
    picture is far past the slide). A collapsed picture says so in a line under its title."""
    deepest = max(len(_parts(n.path)) for n in summary.graph.nodes) - 2
    best: tuple[float, str, Scene] | None = None
    for depth in [None, *range(max(deepest, 0), -1, -1)]:
        chosen = dict(options)
        if depth is not None:
            chosen.update(depth=depth, note=f"blocks collapsed to depth {depth} (automatically: the deepest that "
                                            "fits a slide; --depth chooses)")
        if depth != 0 and _items(to_dot(summary, **chosen)) > MAX_LAID_OUT:
            continue
        dot, scene = _wrapped(summary, chosen)
        legible = text_on_slide(scene)
        if legible >= MIN_TEXT_PX:
            return dot, scene
        if best is None or legible > best[0]:
            best = (legible, dot, scene)
    assert best is not None, "depth 0 is always laid out"
    return best[1], best[2]


def _items(dot: str) -> int:
    """Nodes and clusters: what a reader has to take in."""
    return dot.count("[label=") + dot.count("subgraph cluster_") + dot.count('subgraph "cluster_')


def fitting_wrap(width: float, height: float, rankdir: str, aspect: float = 16 / 9) -> int:
    """How many pieces a picture ``width`` × ``height`` laid out in one piece should be cut into to
    come nearest ``aspect`` (pieces go side by side for TB/BT, one under another for LR/RL)."""
    if width <= 0 or height <= 0:
        return 1
    ratio = (aspect * height / width) if rankdir in ("TB", "BT") else (width / (aspect * height))
    # pieces are never quite even (cuts fall between blocks), so lean towards one more
    return max(1, min(MAX_WRAP, math.ceil(math.sqrt(ratio) - 0.25))) if ratio > 1 else 1


# ---------------------------------------------------------------- rendering


def find_engine() -> tuple[str, str] | None:
    """(kind, command): ``graphviz-pure`` (installed with archspec: the same layout everywhere), else
    the system ``dot``; None if neither."""
    pure = shutil.which("graphviz-pure")
    if pure:
        return "graphviz-pure", pure
    beside = Path(sys.executable).parent / ("graphviz-pure.exe" if os.name == "nt" else "graphviz-pure")
    if beside.is_file() and os.access(beside, os.X_OK):
        return "graphviz-pure", str(beside)
    system = shutil.which("dot")
    if system:
        return "dot", system
    return None


def _engine() -> tuple[str, str]:
    engine = find_engine()
    if engine is None:
        raise UsageError("no Graphviz engine found to lay the graph out: install one with "
                         "'pip install graphviz-pure' (or install Graphviz, e.g. 'apt-get install graphviz'), "
                         "or write the DOT text with an output ending in .dot")
    return engine


def dot_scene(dot_text: str, title: str = ""):
    """The Scene of ``dot_text``: Graphviz lays it out, ``layout.layout_scene`` draws it."""
    from .layout import engine_json, layout_scene

    kind, command = _engine()
    return layout_scene(engine_json(command, kind, dot_text), title=title)


def render_dot(dot_text: str, output: str | os.PathLike, fmt: str, scale: float = 2) -> Path:
    """Write ``dot_text`` to ``output`` as ``fmt`` (svg, png, pdf or dot), atomically.

    SVG and PNG are drawn by archspec from Graphviz's layout (with the bundled font, PNG at
    ``scale`` pixels per CSS pixel); PDF is the system Graphviz's own rendering.
    """
    from ..files import atomic_write

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    path = Path(output)
    if fmt == "dot":
        atomic_write(path, lambda tmp: Path(tmp).write_text(dot_text, encoding="utf-8"))
        return path
    if fmt in ("svg", "png"):
        return dot_scene(dot_text).save(path, fmt, scale=scale)
    system = shutil.which("dot")
    if system is None:
        raise UsageError(f"cannot write '{path}': PDF needs the system Graphviz (e.g. 'apt-get install graphviz' "
                         "or 'brew install graphviz'); without it, choose .svg or .png")

    def run(tmp: str) -> None:
        try:
            done = subprocess.run([system, "-Tpdf", "-o", tmp], input=dot_text.encode("utf-8"),
                                  capture_output=True, timeout=ENGINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ArchspecError(f"dot did not finish drawing '{path}' in {ENGINE_TIMEOUT_S} s") from None
        except OSError as exc:
            raise ArchspecError(f"could not run dot ({system}): {exc}") from None
        if done.returncode != 0 or not os.path.getsize(tmp):
            err = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            raise ArchspecError(f"dot failed to draw '{path}': {err}")

    atomic_write(path, run)
    return path
