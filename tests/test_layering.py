"""The package's layering: no import cycles (function-level imports included), and the public
facade ``archspec.api`` is imported only by the shells over it (the CLI and the package root).

The import graph is read from the source with ``ast``, so nothing is imported to check it.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "archspec"
ROOT = PACKAGE.parent

# the shells over the public API may import it; nothing beneath them may
API_USERS = re.compile(r"^archspec(\.cli|\.commands\..*|\.__main__|\.view(\..*)?)?$")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The archspec modules that ``path`` imports, at any level of the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]:
        block.body = []  # imports for annotations only: no run-time edge
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from . import api` imports the module archspec.api; `from .x import f` imports archspec.x
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def import_graph() -> nx.DiGraph:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = nx.DiGraph()
    for f in files:
        source = module_name(f)
        graph.add_node(source)
        for target in imported_modules(f, modules):
            graph.add_edge(source, target)
    return graph


def test_the_graph_sees_the_package(import_graph):
    assert {"archspec.api", "archspec.pipeline", "archspec.expand", "archspec.cli"} <= set(import_graph)
    assert import_graph.has_edge("archspec.api", "archspec.pipeline")
    assert import_graph.has_edge("archspec.pipeline", "archspec.expand")


def test_no_import_cycles(import_graph):
    # a parent package importing its submodule is fine; the edges from a submodule to its own
    # package root are left out, since Python resolves them from the parent's partial module
    graph = import_graph.copy()
    graph.remove_edges_from([(a, b) for a, b in import_graph.edges if a.startswith(b + ".")])
    cycles = sorted(sorted(c) for c in nx.simple_cycles(graph) if len(c) > 1)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_only_the_shells_import_the_public_api(import_graph):
    offenders = sorted(m for m, target in import_graph.edges
                       if target == "archspec.api" and not API_USERS.match(m))
    assert offenders == []


OUTSIDE_WORDS = re.compile(r"\blectures?\b|\bseeds? ?0\d\d\b|\bseeds?'|\bthe seeds\b|\bissue #?\d+\b", re.IGNORECASE)


def test_no_words_from_outside_the_project():
    """Users never saw the course notes or the issue tracker: cite the published source instead."""
    roots = [PACKAGE, ROOT / "docs", ROOT / "specs", ROOT / "schemas", ROOT / "README.md", ROOT / "bench"]
    hits = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.suffix not in {".py", ".md", ".yaml", ".yml", ".json", ".txt", ".html", ".js", ".sh"}:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if OUTSIDE_WORDS.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert hits == []


def test_the_package_names_its_public_api_and_functions_win_over_submodules():
    import subprocess
    import sys

    import archspec

    for name in archspec.__all__:
        assert getattr(archspec, name) is not None, name
    # archspec.expand and archspec.infer are functions even when their modules were imported first
    probe = ("import archspec.expand, archspec.infer, archspec.weights\nimport archspec\n"
             "print(callable(archspec.expand), callable(archspec.infer), callable(archspec.load_weights),"
             " type(archspec.expand).__name__)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["True", "True", "True", "function"], r.stderr
