"""One exception family for every user mistake, each carrying where it happened."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

# Characters a terminal would act on instead of showing: C0/C1 controls (ESC starts colour and
# cursor sequences), format characters (U+202E reverses the text that follows) and line separators.
_SHOWN_AS_IS = {"\n", "\t"}


def printable(text: str) -> str:
    """``text`` safe to print to a terminal: every control or format character written as an escape.

    Every message archspec prints goes through ``Problem`` (or this function directly), so a name,
    path or value read from a file cannot recolour, move or reorder what the terminal shows.
    """
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _SHOWN_AS_IS or ch.isprintable() or unicodedata.category(ch) == "Zs":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


@dataclass(frozen=True)
class Location:
    """A point in a source file (1-based line and column, as editors count)."""

    file: str
    line: int = 0
    col: int = 0
    # the part of the YAML document pointed at, e.g. ("layers", 3, "conv2d"); not part of equality
    key_path: tuple = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        if self.line and self.col:
            return f"{printable(self.file)}:{self.line}:{self.col}"
        if self.line:  # a row of a data file: no column to point at
            return f"{printable(self.file)}:{self.line}"
        return printable(self.file)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, data set or command line; a warning is likely wrong but valid."""

    message: str
    location: Location | None = None
    node: str = ""  # dotted node path ("stage2.block1.conv2"), empty for spec-level problems
    severity: str = "error"  # or "warning": shown beside the errors, never a failure by itself

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.node}: " if self.node else ""
        return f"{where}{self.severity}: {printable(what)}{printable(self.message)}"


def file_order(problem: Problem) -> tuple:
    """Sort key: problems of several files and passes in the order a reader meets them."""
    where = problem.location
    return (where.file, where.line, where.col) if where else ("", 0, 0)


def warning(message: str, location: Location | None = None, node: str = "") -> Problem:
    return Problem(message, location, node, severity="warning")


class SpecWarning(UserWarning):
    """A spec that is valid but likely not what its author meant; ``problem`` says where and why.

    The pipeline issues one through Python's warnings for each of a graph's warnings, so every
    command and API call shows it; the command line prints it as ``file:line:col: warning: …``.
    """

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class ArchspecError(Exception):
    """Base of every error archspec raises for bad input; never a bug in archspec itself."""

    def __init__(self, message: str, location: Location | None = None, node: str = ""):
        super().__init__(message)
        self.problem = Problem(message, location, node)

    @property
    def problems(self) -> list[Problem]:
        return [self.problem]

    def __str__(self) -> str:
        return str(self.problem)


class SpecError(ArchspecError):
    """One or more problems in a spec; all of them are reported at once."""

    def __init__(self, problems: list[Problem]):
        Exception.__init__(self, "\n".join(str(p) for p in problems))
        self._problems = list(problems)
        # the first error (a warning may come before it in the file)
        self.problem = next((p for p in self._problems if p.is_error), self._problems[0])

    @property
    def problems(self) -> list[Problem]:
        return self._problems

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self._problems)


class LimitError(ArchspecError):
    """Input refused because it is larger than archspec will process."""


class UsageError(ArchspecError):
    """A wrong command-line argument or API argument (exit code 2)."""


@dataclass
class Collector:
    """Gathers problems so a stage can report all of them instead of stopping at the first."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, location: Location | None = None, node: str = "") -> None:
        # One message per place: a mistake inside a repeated block is reported once, not per copy.
        if any(p.location == location and p.message == message for p in self.problems):
            return
        self.problems.append(Problem(message, location, node))

    def extend(self, error: ArchspecError) -> None:
        for problem in error.problems:
            self.add(problem.message, problem.location, problem.node)

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)
