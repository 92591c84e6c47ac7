"""The docs are tests: every shell command and Python snippet in README.md and docs/*.md runs here.

How a fenced block in the docs is read:

- ``sh``/``bash`` lines are commands; each must exit 0. A line ending in ``\\`` continues.
  ``a && b`` runs both. Set-up commands (``pip``, ``python3 -m venv``, ``git``, ``apt-get``,
  ``cd``, cluster launchers) are not run: CI runs the README's set-up itself.
- A block (any language but python) whose lines start with ``$ `` is a transcript: each command
  runs, and what it prints must equal the lines below it. A line ``...`` stands for any number of
  lines; trailing spaces do not count. ``$ echo $?`` prints the previous exit code.
- ``python`` blocks run as scripts; a plain block right after one is its expected output.
- ``yaml`` blocks holding a whole spec (``archspec:`` and ``layers:``) must validate.
- A comment on the line before a fence steers its block: ``<!-- docs-test: skip REASON -->``
  leaves it out (the reason shows in the report); ``fails`` expects a non-zero exit (a spec that
  must not validate); ``file=NAME`` also writes the block to NAME, for the commands after it.

``DOCS_TEST_QUICK=1`` trains one epoch wherever a doc trains (a quick local loop; CI runs the
commands as written). Commands run in document order (README first, then docs/ by name) in one scratch folder, so a
run trained by one block is there for the next. The placeholders the docs use (``my_net.yaml``,
``photos.csv``, ``digit.png``, ...) are made there first, by ``make_placeholders``.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->")
# programs a doc may show but a test does not run: set-up, other machines, long-running servers
# DOCS_TEST_QUICK=1: trainings run one epoch (a quick local loop; CI runs them as written)
QUICK = bool(os.environ.get("DOCS_TEST_QUICK"))
COMMAND_LIMIT_S = 900  # a bound on a hung command, far above any documented command's cost
NOT_RUN = {"pip", "pip3", "git", "apt-get", "apt", "cd", "source", "torchrun", "srun", "sbatch", "kubectl",
           "tensorboard", "jupyter", "docker", "export", "open", "xdg-open"}


@dataclass
class Block:
    doc: Path
    line: int
    lang: str
    text: str
    directives: str  # the text of a <!-- docs-test: ... --> comment before the fence, or ""
    output: str | None = None  # for a python block, the plain block that follows it

    @property
    def skip(self) -> str | None:
        return self.directives[4:].strip() or "marked skip" if self.directives.startswith("skip") else None

    @property
    def fails(self) -> bool:
        return not self.skip and "fails" in self.directives.split()

    @property
    def file(self) -> str | None:
        names = [w[5:] for w in self.directives.split() if w.startswith("file=")]
        return names[0] if names else None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks_of(doc: Path) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    found: list[Block] = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(Block(doc, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2),
                           marker.group(1) if marker else ""))
    for first, second in zip(found, found[1:]):
        gap = text.split("\n")[first.line + first.text.count("\n") + 1: second.line - 1]
        if first.lang == "python" and second.lang == "" and not "".join(gap).strip():
            first.output = second.text
    return found


def is_transcript(block: Block) -> bool:
    return block.lang != "python" and any(line.startswith("$ ") for line in block.text.splitlines())


def is_whole_spec(block: Block) -> bool:
    return block.lang == "yaml" and re.search(r"^archspec:", block.text, re.M) and re.search(
        r"^layers:", block.text, re.M) is not None


def runnable(block: Block) -> bool:
    return (block.lang in ("sh", "bash", "python") or is_transcript(block) or bool(is_whole_spec(block))
            or block.file is not None)


ALL_BLOCKS = [b for doc in DOCS for b in blocks_of(doc) if runnable(b)]


# ---------------------------------------------------------------- the scratch folder


def make_placeholders(folder: Path) -> None:
    """The files the docs name as examples, made small and real."""
    import numpy as np
    from PIL import Image

    (folder / "specs").symlink_to(ROOT / "specs", target_is_directory=True)
    (folder / "lib").symlink_to(ROOT / "specs" / "lib", target_is_directory=True)  # a spec's imports: [lib/...]
    write_mnist(folder / "mnist", train=300, test=60)  # ~/mnist: HOME is the scratch folder
    my_net = (ROOT / "specs" / "lenet_digits.yaml").read_text(encoding="utf-8")
    my_net = my_net.replace("name: lenet_digits", "name: my_net").replace("classes: 10", "classes: 2")
    (folder / "my_net.yaml").write_text(my_net, encoding="utf-8")  # for photos.csv: cat, dog
    shutil.copy(ROOT / "tests" / "fixtures" / "keras" / "mnist_cnn.keras", folder / "mnist.keras")
    rng = np.random.default_rng(0)
    for name in ("digit.png", "cat.png", "dog.png", "image.png", "my_photo.jpg"):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(folder / name)
    step = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=np.uint8) * 25
    Image.fromarray(step).save(folder / "step6x6.png")
    photos = folder / "photos"
    lines = []
    for label in ("cat", "dog"):
        (photos / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(photos / label / f"{i}.png")
            lines.append(f"photos/{label}/{i}.png,{label}")
    (folder / "photos.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "train.yaml").write_text("epochs: 1\nbatch_size: 8\n", encoding="utf-8")


def write_mnist(folder: Path, train: int, test: int) -> None:
    """MNIST's four idx files (big-endian header, then bytes), with random 28×28 digits."""
    import numpy as np

    folder.mkdir()
    rng = np.random.default_rng(1)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([2051, count, 28, 28], dtype=">u4").tobytes() + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([2049, count], dtype=">u4").tobytes() + labels.tobytes())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    make_placeholders(folder)
    return folder


# ---------------------------------------------------------------- running


def commands_of(text: str) -> list[str]:
    """Command lines of an sh block: comments dropped, continuations joined, && split."""
    joined = re.sub(r"\s*\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        commands += [part.strip() for part in line.split("&&")]
    return commands


class Shell:
    """Runs one documented command in the scratch folder; remembers the last exit code."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.last_code = 0

    def run(self, command: str) -> tuple[int | None, str]:
        """(exit code, output), or (None, reason) for a command that is shown but not run."""
        if command == "echo $?":
            return 0, f"{self.last_code}\n"
        words = shlex.split(command, comments=True)
        if not words:
            return 0, ""
        program = words[0].removeprefix(".venv/bin/")
        if program in NOT_RUN or (program.startswith("python") and words[1:3] in (["-m", "venv"], ["-m", "pytest"])):
            return None, f"set-up command: {program}"  # (and the test suite itself)
        if "|" in words:
            return None, "a pipe into another program"
        if program == "archspec":
            args = words[1:]
            if QUICK and args[:1] == ["train"] and not {"--epochs", "--resume"} & set(args):
                args += ["--epochs", "1"]
            code, output = self._archspec(args)
        elif program in ("python", "python3"):
            code, output = self._process([sys.executable, *words[1:]])
        else:
            code, output = self._process([program, *words[1:]])
        self.last_code = code
        return code, output

    def _archspec(self, args: list[str]) -> tuple[int, str]:
        """In-process, as a user's shell would run it, but without a new interpreter each time."""
        import traceback

        from click.testing import CliRunner

        from archspec.cli import main

        def too_long(signum, frame):  # a command that never returns (a server) fails, not hangs
            raise TimeoutError(f"still running after {COMMAND_LIMIT_S} s; a doc marks such a block skip")

        here = os.getcwd()
        os.chdir(self.folder)
        previous = signal.signal(signal.SIGALRM, too_long)
        signal.alarm(COMMAND_LIMIT_S)
        try:
            result = CliRunner().invoke(main, args, env={"COLUMNS": "160", "HOME": str(self.folder)},
                                        prog_name="archspec")
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
            os.chdir(here)
        output = result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            output += "".join(traceback.format_exception(result.exception))
            return 99, output  # a traceback is never what a doc shows
        return result.exit_code, output

    def _process(self, argv: list[str]) -> tuple[int, str]:
        done = subprocess.run(argv, cwd=self.folder, capture_output=True, text=True, timeout=COMMAND_LIMIT_S,
                              env=dict(_environment(), HOME=str(self.folder)))
        return done.returncode, done.stdout + done.stderr


def _environment() -> dict[str, str]:
    env = dict(os.environ, COLUMNS="160", PYTHONPATH=str(ROOT))
    env.pop("FORCE_COLOR", None)
    return env


def matches(expected: str, actual: str) -> bool:
    """Line by line, trailing spaces ignored; a line '...' matches any number of lines."""
    want = [line.rstrip() for line in expected.rstrip("\n").splitlines()]
    got = [line.rstrip() for line in actual.rstrip("\n").splitlines()]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and want[i] == got[j] and match(i + 1, j + 1)

    return match(0, 0)


def transcript(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in pairs]


@pytest.mark.slow
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_documented_block_runs(block: Block, scratch: Path):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    fails = block.fails
    shell = Shell(scratch)
    if block.file:
        (scratch / block.file).write_text(block.text, encoding="utf-8")
        if not is_whole_spec(block):
            return
    if is_whole_spec(block):
        path = scratch / (block.file or f"doc-{block.line}.yaml")
        path.write_text(block.text, encoding="utf-8")
        code, output = shell.run(f"archspec validate {path.name}")
        assert (code != 0) == fails, f"{block.id}: the spec does not validate:\n{output}"
    elif block.lang == "python":
        script = scratch / f"doc-{block.doc.stem}-{block.line}.py"
        script.write_text(block.text, encoding="utf-8")
        code, output = shell.run(f"python {script.name}")
        assert code == 0, f"{block.id}: the snippet fails:\n{output}"
        if block.output is not None:
            assert matches(block.output, output), f"{block.id}: the snippet prints\n{output}"
    elif is_transcript(block):
        for command, expected in transcript(block.text):
            code, output = shell.run(command)
            if code is None:
                continue
            assert matches(expected, output), f"{block.id}: `{command}` printed\n{output}"
    else:
        for command in commands_of(block.text):
            code, output = shell.run(command)
            if code is None:
                continue
            assert (code != 0) == fails, f"{block.id}: `{command}` exited {code}:\n{output[-3000:]}"


def test_the_collector_finds_the_readme_blocks():
    readme = [b for b in ALL_BLOCKS if b.doc.name == "README.md"]
    assert any(b.lang == "python" for b in readme)
    assert any(is_transcript(b) for b in readme)
    assert matches("a\n...\nd", "a\nb\nc\nd") and not matches("a\n...\nd", "a\nb\nc")
    assert commands_of("x \\\n  y && z # c\n# only a comment\n") == ["x y", "z # c"]
    assert Block(ROOT, 1, "yaml", "", "fails file=net.yaml").file == "net.yaml"
    assert Block(ROOT, 1, "sh", "", "skip a cluster").skip == "a cluster"
