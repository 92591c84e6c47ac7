"""The analysis never imports torch (nor matplotlib, which only charts need), and its cost does not
depend on the batch size."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import archspec

ROOT = Path(__file__).resolve().parent.parent

PROBE = textwrap.dedent("""
    import io, sys, contextlib
    import archspec
    from archspec import api
    from archspec.cli import main

    api.summarize("vgg16", batch=8)
    archspec.validate("specs/vgg16.yaml")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for args in (["validate", "specs/vgg16.yaml"],
                     ["summary", "specs/vgg16.yaml"],
                     ["summary", "vgg16.yaml", "--format", "json", "--depth", "0", "--explain"],
                     ["summary", "specs/vgg16.yaml", "--format", "markdown", "--batch", "4"],
                     ["summary", "specs/vgg16.yaml", "--format", "csv"],
                     ["draw", "specs/lenet5.yaml", "--style", "boxes", "-o", sys.argv[1]],
                     ["schema"]):
            rc = main(args, standalone_mode=False)
            assert rc in (None, 0), (args, rc)
    assert "138,357,544" in out.getvalue()
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print("TORCH:", loaded[:5])
    print("MATPLOTLIB:", "matplotlib" in sys.modules)
""")


def test_validate_summary_draw_and_schema_never_import_torch_or_matplotlib(tmp_path):
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "lenet5.svg")], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "TORCH: []" in r.stdout, f"torch was imported: {r.stdout}"
    assert "MATPLOTLIB: False" in r.stdout, "matplotlib is for charts (compare, inspect, train) only"


def test_zoo_command_never_imports_torch():
    probe = ("import sys, io, contextlib\nfrom archspec.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['zoo'], standalone_mode=False)\n"
             "print('TORCH:', [m for m in sys.modules if m == 'torch' or m.startswith('torch.')][:5])")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "TORCH: []" in r.stdout


def calls_made(batch: int) -> int:
    """Python function calls that one summarize() makes: a count of work, the same on any machine."""
    count = [0]

    def profile(frame, event, arg):
        if event == "call":
            count[0] += 1

    sys.setprofile(profile)
    try:
        archspec.summarize("vgg16", batch=batch)
    finally:
        sys.setprofile(None)
    return count[0]


def test_summarize_work_does_not_depend_on_batch():
    calls_made(1)  # warm caches (schema validator, imports)
    small, huge = calls_made(1), calls_made(100_000)
    assert huge <= small * 1.01, f"batch 1: {small} calls, batch 100000: {huge} calls"
    assert archspec.summarize("vgg16", batch=100_000).totals.macs == 100_000 * archspec.summarize("vgg16").totals.macs


# What `archspec summary` and `archspec validate` need on a valid spec; anything else is start-up
# time paid for nothing (the trainer, the weights code, the pictures, graph algorithms, arrays).
NOT_NEEDED_BY_THE_ANALYSIS = ("torch", "numpy", "networkx", "safetensors", "PIL", "matplotlib",
                              "archspec.train", "archspec.weights", "archspec.draw", "archspec.data",
                              "archspec.commands.training", "archspec.commands.drawing")
# the schema of a spec's `train:` section is derived from the training options' definition
NEEDED_FOR_THE_SCHEMA = {"archspec.train", "archspec.train.config", "archspec.data", "archspec.data.sources"}


def test_summary_and_validate_processes_import_only_what_they_use():
    probe = textwrap.dedent("""
        import sys, io, contextlib
        from archspec.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for args in (["summary", "specs/vgg16.yaml"], ["validate", "specs/resnet18.yaml"]):
                assert main(args, standalone_mode=False) in (None, 0)
        print("LOADED:", sorted(sys.modules))
    """)
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.split("LOADED:", 1)[1]
    modules = ast.literal_eval(loaded.strip())
    unneeded = sorted(m for m in modules if m not in NEEDED_FOR_THE_SCHEMA
                      and any(m == p or m.startswith(p + ".") for p in NOT_NEEDED_BY_THE_ANALYSIS))
    assert unneeded == [], f"imported by summary/validate without being used: {unneeded}"


def test_summaries_never_import_rich():
    """The table is laid out by archspec/text_table.py: rich (80 ms) only for rich's own consoles."""
    probe = textwrap.dedent("""
        import sys, io, contextlib
        from archspec.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            for fmt in ("table", "json", "csv", "markdown"):
                assert main(["summary", "specs/vgg16.yaml", "--format", fmt], standalone_mode=False) in (None, 0)
        print("RICH:", sorted(m for m in sys.modules if m == "rich" or m.startswith("rich."))[:3])
    """)
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "RICH: []" in r.stdout, r.stdout
