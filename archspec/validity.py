"""Documents known to pass the schema check, remembered between command-line runs.

The schema check needs jsonschema, whose import is the largest part of a short ``archspec summary``
process. Whether a document passes depends only on the document and on the schema, so the command
line keeps the digests of documents that passed (SHA-256 of the schema's text and of the document's
data) in one small file, and a later run of an unchanged spec skips the import. A changed spec, a
changed catalogue or a new archspec release changes the digest: the check runs again. Documents
that fail are never remembered, so every problem is reported on every run.

The file holds hexadecimal digests only, nothing read from a spec. It lives in
``$ARCHSPEC_CACHE_DIR`` (an empty value turns this off), else ``$XDG_CACHE_HOME/archspec``, else
``~/.cache/archspec``. A file that cannot be read or written is ignored: the check then runs as
usual. The Python API does not use it (a long-lived process builds the validator once).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

FILE_NAME = "valid-documents.txt"
KEEP = 512  # digests kept, newest last: a few hundred specs in use at once is plenty
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class KnownValid:
    """A bounded set of digests on disk; every failure to read or write is silent (it is a cache)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._digests: list[str] | None = None

    def _load(self) -> list[str]:
        if self._digests is None:
            self._digests = []
            try:
                info = os.stat(self.path)
                if stat.S_ISREG(info.st_mode) and info.st_size <= KEEP * 65 + 1:  # regular and small only
                    text = self.path.read_text(encoding="ascii")
                    self._digests = [line for line in text.splitlines() if _DIGEST.match(line)][-KEEP:]
            except (OSError, UnicodeDecodeError, ValueError):
                pass
        return self._digests

    def __contains__(self, digest: str) -> bool:
        return digest in self._load()

    def add(self, digest: str) -> None:
        from .files import WriteError, atomic_write

        digests = [d for d in self._load() if d != digest][-(KEEP - 1):] + [digest]
        self._digests = digests
        try:
            atomic_write(self.path, lambda tmp: Path(tmp).write_text("\n".join(digests) + "\n", encoding="ascii"))
        except WriteError:
            pass


def default_path() -> Path | None:
    """Where the command line keeps the file, or None when ARCHSPEC_CACHE_DIR is set to nothing."""
    folder = os.environ.get("ARCHSPEC_CACHE_DIR")
    if folder is not None:
        return Path(folder) / FILE_NAME if folder else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archspec" / FILE_NAME


def digest(schema_text: str, data: Any) -> str | None:
    """The document's digest under this schema, or None for data JSON cannot hold (no digest, no cache)."""
    try:
        document = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None  # dates, binary, non-string keys: YAML types a spec does not use
    return hashlib.sha256(schema_text.encode() + b"\0" + document.encode()).hexdigest()


_store: KnownValid | None = None


def remember_between_runs() -> None:
    """Turn the on-disk memory on for this process (the command line does, the Python API does not)."""
    global _store
    path = default_path()
    _store = KnownValid(path) if path is not None else None


def store() -> KnownValid | None:
    return _store
