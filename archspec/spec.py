"""Stage 1: load a spec file, its block-library imports, and where every part of them was written.

``load("vgg16.yaml")`` reads an existing file; a name that is not a file is looked up in the
zoo bundled with the package, so ``archspec summary vgg16.yaml`` works from any directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArchspecError, Collector, Location
from .loader import MAX_IMPORT_DEPTH, Document, PathKey, parse_yaml, read_document
from . import zoo
from .layers import lookup
from .text import did_you_mean
from .vocabulary import reserved_words

IMPORT_SUFFIXES = {".yaml", ".yml"}


@dataclass
class BlockDef:
    """A reusable block as written: its document and the key path of its definition."""

    name: str
    document: Document
    key_path: PathKey  # ("blocks", name)

    @property
    def definition(self) -> dict:
        return self.document.data["blocks"][self.name]

    @property
    def location(self) -> Location:
        return self.document.locate(self.key_path, key=True)


@dataclass
class Spec:
    """A loaded spec: the main document plus every block it can call, wherever defined."""

    document: Document
    imported: list[Document] = field(default_factory=list)
    blocks: dict[str, BlockDef] = field(default_factory=dict)

    @property
    def data(self) -> dict:
        return self.document.data if isinstance(self.document.data, dict) else {}

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def name(self) -> str:
        name = self.data.get("name")
        return name if isinstance(name, str) else Path(self.file).stem

    @property
    def documents(self) -> list[Document]:
        return [self.document, *self.imported]


def _display(path: Path) -> str:
    """A path as the user would recognise it: relative to the working directory if inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def resolve_path(name: str | os.PathLike) -> Path:
    """An existing file, else a spec of the bundled zoo ("vgg16", "vgg16.yaml")."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = zoo.find(str(name))
    if bundled is not None:
        return bundled
    if path.exists():
        raise ArchspecError("not a file", Location(str(name)))
    hint = zoo.suggest(str(name))
    raise ArchspecError(f"no such file, and no zoo spec of that name{hint}", Location(str(name)))


def load(source: str | os.PathLike | Spec) -> Spec:
    """Load a spec from a path (or zoo name), with its imports; YAML and import errors raise."""
    if isinstance(source, Spec):
        return source
    path = resolve_path(source)
    shown = str(source) if Path(source).is_file() else _display(path)
    return _link(read_document(path, shown))


def loads(text: str, file: str = "<string>", base_dir: str | os.PathLike | None = None) -> Spec:
    """Load a spec from YAML text; relative imports resolve against ``base_dir``."""
    document = parse_yaml(text, file, Path(base_dir or ".").resolve() / file if base_dir else None)
    return _link(document)


def _link(document: Document) -> Spec:
    spec = Spec(document)
    problems = Collector()
    _collect_blocks(spec, document, problems, stack=())
    problems.raise_if_any()
    return spec


def _import_target(here: Path, entry: str) -> Path:
    """A file relative to the importing one if there is one, else a bundled library by name
    (``imports: [resnet]`` is the package's specs/lib/resnet.yaml, from any directory)."""
    local = (here / entry).resolve()
    if local.is_file():
        return local
    bundled = zoo.library(entry)
    return bundled.resolve() if bundled is not None else local


def _library_hint(entry: str) -> str:
    """For a name alone (not a path): the bundled libraries it could have meant."""
    if "/" in entry or "\\" in entry:
        return ""
    bundled = zoo.libraries()
    return ", and no bundled library of that name" + (
        did_you_mean(Path(entry).stem, bundled) or f" (bundled: {', '.join(bundled)})")


def _collect_blocks(spec: Spec, document: Document, problems: Collector, stack: tuple[Path, ...]) -> None:
    data = document.data if isinstance(document.data, dict) else {}
    here = document.path.parent if document.path else Path.cwd()
    imports = data.get("imports") or []
    if isinstance(imports, list):
        for i, entry in enumerate(imports):
            where = document.locate(("imports", i))
            if not isinstance(entry, str):
                continue  # the schema check reports the wrong type
            if ("/" in entry or "\\" in entry or Path(entry).suffix) and Path(entry).suffix.lower() not in IMPORT_SUFFIXES:
                # only YAML files are read: a spec cannot make archspec open (and quote) any other file
                problems.add(f"cannot import '{entry}': imports are block libraries in .yaml or .yml files", where)
                continue
            target = _import_target(here, entry)
            chain = stack + ((document.path,) if document.path else ())
            if target in chain or target == document.path:
                cycle = " -> ".join(_display(p) for p in (*chain, target))
                problems.add(f"import cycle: {cycle}", where)
                continue
            if len(chain) >= MAX_IMPORT_DEPTH:
                problems.add(f"imports are nested more than {MAX_IMPORT_DEPTH} deep", where)
                continue
            if any(d.path == target for d in spec.imported):
                continue  # imported twice through different files: one copy of its blocks
            if not target.is_file():
                problems.add(f"cannot import '{entry}': no such file ({_display(target)})" + _library_hint(entry),
                             where)
                continue
            try:
                imported = read_document(target, _display(target))
            except ArchspecError as exc:
                problems.extend(exc)
                continue
            spec.imported.append(imported)
            _collect_blocks(spec, imported, problems, chain)
    blocks = data.get("blocks") or {}
    if isinstance(blocks, dict):
        for name in blocks:
            if lookup(name) is not None or name in reserved_words():
                problems.add(f"block '{name}' has the name of a built-in layer type; the layer type "
                             "would always win, so rename the block", document.locate(("blocks", name), key=True))
                continue
            if name in spec.blocks:
                first = spec.blocks[name].location
                problems.add(f"block '{name}' is defined twice (also at {first})",
                             document.locate(("blocks", name), key=True))
                continue
            spec.blocks[name] = BlockDef(name, document, ("blocks", name))
