"""Rerun the hostile and careless inputs of docs/reliability.md and print which still pass.

    .venv/bin/python bench/hostile_cases.py            # every case, the slow training faults included
    .venv/bin/python bench/hostile_cases.py --quick    # without the tests marked slow (kill -9, signals…)

Each case is either a command line run here, in a fresh folder, against files written for it (its
exit code, a phrase its message must hold, nothing of a file it must not echo, never a traceback),
or the tests that already reproduce it, named by pytest node id, so nothing is written twice.
The table printed is markdown: one row per case, PASS or FAIL, with what was seen.
"""
from __future__ import annotations

import gzip
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Case:
    group: str
    what: str
    args: list[str] = field(default_factory=list)  # a command line, run in the case's folder
    code: int = 1
    says: str = ""  # a phrase of the expected message (stderr and stdout together)
    never: str = ""  # what must not be shown (an echoed file, a raw control character)
    files: dict[str, bytes | str] = field(default_factory=dict)
    full_disk: bool = False  # files the command writes are cut at 1 KB (RLIMIT_FSIZE)
    before: list[str] = field(default_factory=list)  # a command line run first, without the limit
    tests: list[str] = field(default_factory=list)  # or: the pytest node ids reproducing it


SPEC = "archspec: 1\nname: {name}\ninput: [1, 8, 8]\nlayers:\n  - conv2d: {{out: 4, kernel: 3}}\n  - relu\n" \
       "  - flatten\n  - linear: {{out: 10}}\n"
TINY = SPEC.format(name="tiny")


def idx(values: bytes, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + values


def png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 100).save(out, format="PNG")
    return out.getvalue()


TRAIN = ["train", "tiny.yaml", "--epochs", "1", "--workers", "0", "--device", "cpu"]

CASES = [
    # ---- interrupted training: the fault-injection suite and the session's tests
    Case("interrupted training", "kill -9 during the folder's birth and epoch 1's writes; resumed to the same figures",
         tests=["tests/test_faults.py::test_kill_9_before_the_nth_atomic_write_lands",
                "tests/test_faults.py::test_kill_9_at_a_random_moment",
                "tests/test_train_session.py::test_a_run_stopped_before_its_first_epoch_resumes_to_the_same_result"]),
    Case("interrupted training", "Ctrl-C and SIGTERM save, exit 130 / 143, print the resume command",
         tests=["tests/test_faults.py::test_a_signal_saves_and_says_how_to_resume",
                "tests/test_train_session.py::test_sigterm_stops_like_ctrl_c_and_says_so",
                "tests/test_train_session.py::test_resume_after_ctrl_c_ends_like_an_uninterrupted_run"]),
    Case("interrupted training", "temporary files of killed writes are removed",
         tests=["tests/test_train_runs.py::test_abandoned_drafts_and_temporaries_are_removed",
                "tests/test_weights.py::test_atomic_write_interrupted_leaves_nothing"]),
    Case("interrupted training", "two runs into one --out never share a folder",
         tests=["tests/test_train_runs.py::test_runs_started_at_once_never_share_a_folder",
                "tests/test_faults.py::test_runs_started_at_once_into_one_out_never_share"]),
    Case("interrupted training", "--resume: changed spec reported, any directory, other options refused",
         tests=["tests/test_train_session.py::test_resume_uses_the_spec_as_trained_from_any_directory",
                "tests/test_train_session.py::test_resume_refuses_options_that_would_make_another_run",
                "tests/test_train_session.py::test_a_run_folder_without_a_checkpoint_resumes_from_scratch"]),
    Case("interrupted training", "a full disk in train: one message, the run resumes",
         tests=["tests/test_faults.py::test_a_full_disk_is_a_message_and_the_run_resumes"]),
    Case("full disk", "compile --save", ["compile", "tiny.yaml", "--save", "w.safetensors"], 1, "cannot write",
         files={"tiny.yaml": TINY}, full_disk=True),
    Case("full disk", "draw", ["draw", "vgg16.yaml", "-o", "v.svg"], 1, "cannot write", full_disk=True),
    Case("full disk", "compare", ["compare", "vgg16.yaml", "resnet18.yaml", "-o", "c.png"], 1, "cannot write",
         full_disk=True),
    Case("full disk", "inspect", ["inspect", "filters", "w.safetensors", "-o", "f.png"], 1, "cannot write",
         files={"tiny.yaml": TINY}, full_disk=True, before=["compile", "tiny.yaml", "--save", "w.safetensors"]),
    # ---- corrupt or foreign files
    Case("corrupt files", "checkpoint state trees of the wrong grammar or not fitting the model",
         tests=["tests/test_train_checkpoint.py::test_a_broken_state_tree_is_one_message",
                "tests/test_train_checkpoint.py::test_a_training_state_that_does_not_fit_is_refused",
                "tests/test_train_checkpoint.py::test_a_checkpoint_without_its_checksum_is_refused"]),
    Case("corrupt files", "a broken config.yaml in a run folder", tests=[
        "tests/test_train_runs.py::test_a_broken_run_config_is_one_message"]),
    Case("corrupt files", "config.yaml with spec: /etc/passwd is not echoed",
         ["train", "--resume", "run"], 1, "", "root:", files={
             "run/config.yaml": "spec: /etc/passwd\nspec_copy: /etc/passwd\nseed: 1\n"}),
    Case("corrupt files", "safetensors: trailing bytes, gaps, overlaps, 100,000 nested [", tests=[
        "tests/test_weights.py::test_a_bad_layout_is_one_message"]),
    Case("corrupt files", "trainer metadata of the wrong form or for another spec", tests=[
        "tests/test_weights.py::test_trainer_metadata_is_checked_against_the_spec"]),
    Case("corrupt files", "a FIFO named checkpoint.safetensors or config.yaml: no hang", tests=[
        "tests/test_weights.py::test_a_fifo_is_refused_without_waiting",
        "tests/test_train_runs.py::test_a_run_config_that_is_a_fifo_is_refused"]),
    Case("corrupt files", "NaN weights, a tensor relabelled int32, a flipped data byte", tests=[
        "tests/test_weights.py::test_weights_full_of_nan_are_refused",
        "tests/test_weights.py::test_a_tensor_relabelled_as_int32_is_refused",
        "tests/test_weights.py::test_a_flipped_byte_fails_the_checksum"]),
    Case("corrupt files", "garbage given as weights to evaluate",
         ["evaluate", "tiny.yaml", "--weights", "w.safetensors"], 1, "w.safetensors",
         files={"tiny.yaml": TINY, "w.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00[[[[[[[["}),
    # ---- data
    Case("data", "an idx file of zero images", TRAIN + ["--data", "mnist:m"], 1, "holds no images", files={
        "tiny.yaml": TINY, "m/train-images-idx3-ubyte": idx(b"", (0, 8, 8)),
        "m/train-labels-idx1-ubyte": idx(b"", (0,))}),
    Case("data", "a 10 KB .gz claiming 784 MB", TRAIN + ["--data", "mnist:m"], 1, "", files={
        "tiny.yaml": TINY, "m/train-images-idx3-ubyte.gz": gzip.compress(idx(b"\1" * 10_000, (1_000_000, 28, 28))),
        "m/train-labels-idx1-ubyte": idx(b"\0" * 10, (1_000_000,))[:26]}),
    Case("data", "gzip bombs and payloads larger than memory, refused before decompressing", tests=[
        "tests/test_data_readers.py::test_gzip_bomb_is_refused_against_available_memory_before_decompressing",
        "tests/test_data_readers.py::test_small_gzip_claiming_a_huge_payload_fails_before_allocating"]),
    Case("data", "CSV labels 3.5, cat, -1 are mistakes at their line", TRAIN + ["--data", "list.csv"], 1,
         "list.csv:5: error: label 3.5 is not a whole number", files={
             "tiny.yaml": TINY, "a.png": png(),
             "list.csv": "a.png,0\na.png,1\na.png,2\na.png,1\na.png,3.5\na.png,cat\na.png,-1\n"}),
    Case("data", "an empty class folder", TRAIN + ["--data", "d"], 1, "holds no image files", files={
        "tiny.yaml": TINY, "d/cat/a.png": png(), "d/dog/.keep": ""}),
    Case("data", "the skip warning names its file and line, not a Python source line", tests=[
        "tests/test_data_readers.py::test_skip_warning_prints_its_location_not_a_source_line"]),
    # ---- specs and command lines
    Case("specs", "metadata: 1", ["validate", "s.yaml"], 1, "s.yaml:9:11: error: expected a mapping", files={
        "s.yaml": TINY + "metadata: 1\n"}),
    Case("specs", "metadata: a list", ["validate", "s.yaml"], 1, "s.yaml:9:11: error: expected a mapping", files={
        "s.yaml": TINY + "metadata: [1, 2]\n"}),
    Case("specs", "bare parallel, residual and repeat", ["validate", "s.yaml"], 1, "'repeat' needs its parts", files={
        "s.yaml": "archspec: 1\ninput: [3, 8, 8]\nlayers:\n  - parallel\n  - residual\n  - repeat\n"}),
    Case("specs", "maxpool2d {kernel: 3, padding: full}", ["validate", "s.yaml"], 1, "torch's pooling refuses it",
         files={"s.yaml": TINY.replace("  - relu\n", "  - maxpool2d: {kernel: 3, padding: full}\n")}),
    Case("specs", "avgpool2d {kernel: [1, 2], padding: same, count_include_pad: false} on 1x1x1; sum pooling in "
         "ceil mode", tests=[
             "tests/test_layers.py::test_catalogue_constructor_matches_the_rules_and_torch[avgpool2d]",
             "tests/test_layers.py::test_sum_pool_ceil_mode_follows_torchs_rule"]),
    Case("specs", "linear {out: 16777216} after a flatten: refused before allocating, with the figure", tests=[
        "tests/test_compiler.py::test_weights_that_cannot_fit_are_refused_before_allocating"]),
    Case("specs", "--lr nan", ["train", "tiny.yaml", "--lr", "nan"], 2, "nan", files={"tiny.yaml": TINY}),
    Case("specs", "lr: .nan in the spec's train: section", ["validate", "tiny.yaml"], 1,
         "tiny.yaml:10:7: error: lr: expected a finite number, found nan", files={
             "tiny.yaml": TINY + "train:\n  lr: .nan\n"}),
    Case("specs", "name: '' (validate)", ["validate", "s.yaml"], 1, "expected a non-empty string",
         files={"s.yaml": SPEC.format(name="''")}),
    Case("specs", "name: '' (draw)", ["draw", "s.yaml", "-o", "s.svg"], 1, "expected a non-empty string",
         files={"s.yaml": SPEC.format(name="''")}),
    Case("security", "imports: [/etc/passwd]", ["validate", "s.yaml"], 1, "", "root:", files={
        "s.yaml": TINY + "imports: [/etc/passwd]\n"}),
    Case("security", "imports: [../../../../etc/shadow]", ["validate", "s.yaml"], 1, "", "root:", files={
        "s.yaml": TINY + "imports: [../../../../etc/shadow]\n"}),
    Case("security", "name: /tmp/x or ../../../x never leads outside runs/", tests=[
        "tests/test_train_runs.py::test_a_spec_name_is_one_harmless_folder_name",
        "tests/test_train_session.py::test_a_spec_name_never_leads_outside_runs"]),
    Case("security", "ESC and U+202E in a name are escaped", ["validate", "s.yaml"], 1, "\\x1b", "\x1b", files={
        "s.yaml": TINY.replace("  - relu\n", '  - {relu: {}, name: "a\\e[31mb\\u202e"}\n')}),
    Case("keras habits", "filters, units, pool_size: each unknown key with its archspec name",
         ["validate", "s.yaml"], 1, "did you mean 'out'", files={
             "s.yaml": "archspec: 1\ninput: [1, 8, 8]\nlayers:\n  - conv2d: {filters: 4, kernel: 3, strides: 1}\n"
                       "  - maxpool2d: {pool_size: 2}\n  - flatten\n  - linear: {units: 10}\n"}),
    Case("keras habits", "activation: relu", ["validate", "s.yaml"], 1, "add the activation as the next item", files={
        "s.yaml": TINY.replace("kernel: 3}", "kernel: 3, activation: relu}")}),
    Case("keras habits", "learning_rate", ["validate", "s.yaml"], 1, "did you mean 'lr'", files={
        "s.yaml": TINY + "train:\n  learning_rate: 0.1\n"}),
    Case("keras habits", "wrong indentation", ["validate", "s.yaml"], 1, "indented deeper than line", files={
        "s.yaml": TINY + "train:\n  lr: 0.1\n    epochs: 3\n"}),
    Case("keras habits", "input: [32, 32, 3] is a warning with the likely intent", ["validate", "s.yaml"], 0,
         "warning: input [32, 32, 3] is read as 32 channels of 32×3", files={
             "s.yaml": TINY.replace("[1, 8, 8]", "[32, 32, 3]").replace("kernel: 3", "kernel: 1")}),
]


def _small_files():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def run_command(case: Case) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as folder:
        for name, content in case.files.items():
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        if case.before:
            subprocess.run([PYTHON, "-m", "archspec", *case.before], cwd=folder, env=env, capture_output=True)
        try:
            result = subprocess.run([PYTHON, "-m", "archspec", *case.args], cwd=folder, env=env, capture_output=True,
                                    text=True, timeout=600, preexec_fn=_small_files if case.full_disk else None)
        except subprocess.TimeoutExpired:
            return False, "no answer in 600 s"
    shown = result.stdout + result.stderr
    seen = f"exit {result.returncode}: {shown.strip().splitlines()[-1][:160] if shown.strip() else '(nothing)'}"
    ok = (result.returncode == case.code and "Traceback" not in shown and case.says in shown
          and not (case.never and case.never in shown))
    return ok, seen


def run_tests(cases: list[Case], quick: bool) -> dict[str, str]:
    """pytest once over every node id named; each id's outcome (passed, failed, skipped, deselected)."""
    ids = sorted({t for c in cases for t in c.tests})
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *ids]
        if quick:
            command += ["-m", "not slow"]
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        import xml.etree.ElementTree as ElementTree

        outcomes: dict[str, str] = {}
        for case in ElementTree.parse(report).iter("testcase"):
            module = case.get("classname", "").replace(".", "/") + ".py"
            name = case.get("name", "").split("[")[0]
            state = ("failed" if case.find("failure") is not None or case.find("error") is not None
                     else "skipped" if case.find("skipped") is not None else "passed")
            key = f"{module}::{name}"
            before = outcomes.get(key)
            outcomes[key] = "failed" if "failed" in (state, before) else (before or state)
            full = f"{module}::{case.get('name')}"
            outcomes[full] = state
    return outcomes


def main() -> int:
    quick = "--quick" in sys.argv
    outcomes = run_tests([c for c in CASES if c.tests], quick)
    print("| group | case | reproduced by | result | seen |\n|---|---|---|---|---|")
    failures = 0
    for case in CASES:
        if case.tests:
            states = [outcomes.get(t, "deselected (slow)" if quick else "not run") for t in case.tests]
            ok = all(s == "passed" for s in states) or (quick and all(s in ("passed", "deselected (slow)")
                                                                      for s in states))
            how = ", ".join(f"`{t.split('::')[-1]}`" for t in case.tests)
            seen = "; ".join(sorted(set(states)))
        else:
            ok, seen = run_command(case)
            how = "`archspec " + " ".join(case.args) + "`"
            seen = seen.replace("|", "\\|").replace("\x1b", "\\x1b")
        failures += not ok
        print(f"| {case.group} | {case.what} | {how} | {'PASS' if ok else 'FAIL'} | {seen} |", flush=True)
    print(f"\n{len(CASES) - failures} of {len(CASES)} cases pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
