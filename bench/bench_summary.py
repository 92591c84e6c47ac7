"""Benchmark (not a test): archspec's VGG-16 summary against torchinfo's, side by side.

    .venv/bin/python bench/bench_summary.py [--runs 15] [--skip-torch] [--json FILE]

Measures, in one run, the median wall time of:

a) ``archspec summary specs/vgg16.yaml`` as a whole process (the venv's console script, table
   and ``--format json``), next to an empty ``python -c pass`` and ``import archspec.cli``; as
   repeated runs see it (the schema check of the unchanged spec remembered, archspec/validity.py)
   and as a first run does (``ARCHSPEC_CACHE_DIR=``: the check runs, jsonschema is imported);
b) the same summary in-process through the Python API (``archspec.summarize``), with and
   without rendering the table, plus the first (cold) call and the phases of one call;
c) torchinfo summarising VGG-16 written by hand in plain torch (no torchvision): in-process
   (``torchinfo.summary`` alone, and with the model's construction) and as a whole process
   (importing torch and torchinfo, building, summarising, printing).

Then prints the medians with the ratio torchinfo / archspec, and the import-time breakdown of
the ``archspec summary`` process (``-X importtime``) grouped by top-level package.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "vgg16.yaml"
BIN = Path(sys.executable).parent  # the venv's bin/: run this file with .venv/bin/python
ARCHSPEC = BIN / "archspec"

# VGG-16 (configuration D) in plain torch, the layout of torchvision.models.vgg16.
VGG16_SOURCE = '''
import torch
from torch import nn

def vgg16(classes=1000):
    layers, c = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(
        nn.Sequential(*layers),
        nn.AdaptiveAvgPool2d((7, 7)),
        nn.Flatten(),
        nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, classes),
        ),
    )
'''
TORCHINFO_PROCESS = VGG16_SOURCE + '''
import torchinfo
print(torchinfo.summary(vgg16(), input_size=(1, 3, 224, 224), verbose=0))
'''


def median_time(fn, runs: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def process(argv: list[str], env: dict | None = None):
    def run():
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)
    return run


def load_average() -> str:
    """The 1-minute load average, to show how busy the machine was (other processes skew timings)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (OSError, AttributeError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _importtime(argv: list[str], env: dict) -> list[tuple[int, int, str, int]]:
    """One run of ``argv`` under -X importtime: (self us, cumulative us, module, nesting) per import."""
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    modules = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|", 2)
        nesting = (len(name) - len(name.lstrip())) // 2
        modules.append((int(self_us), int(cum_us), name.strip(), nesting))
    return modules


def import_breakdown(argv: list[str], env: dict, runs: int = 5) -> dict:
    """Import times of the process ``argv``, medians over ``runs`` runs (microseconds): the total,
    self time grouped by top-level package, the slowest modules by self time, and the outermost
    imports by cumulative time."""
    samples = [_importtime(argv, env) for _ in range(runs)]

    def med(values) -> int:
        return int(statistics.median(values))

    total = med([sum(m[0] for m in mods) for mods in samples])
    packages: dict[str, list[int]] = defaultdict(list)
    selfs: dict[str, list[int]] = defaultdict(list)
    outer: dict[str, list[int]] = defaultdict(list)
    for mods in samples:
        per_package: dict[str, int] = defaultdict(int)
        for self_us, cum_us, name, nesting in mods:
            per_package[name.split(".")[0]] += self_us
            selfs[name].append(self_us)
            if nesting == 0:
                outer[name].append(cum_us)
        for name, us in per_package.items():
            packages[name].append(us)
    loaded = {name.split(".")[0] for mods in samples for _, _, name, _ in mods}
    return {
        "runs": runs,
        "total_us": total,
        "heavy_packages_imported": sorted(loaded & {"torch", "networkx", "numpy", "torchinfo"}),
        "by_package_us": dict(sorted(((k, med(v)) for k, v in packages.items()), key=lambda kv: -kv[1])),
        "slowest_modules_self_us": sorted(((k, med(v)) for k, v in selfs.items()), key=lambda kv: -kv[1])[:15],
        "outermost_cumulative_us": sorted(((k, med(v)) for k, v in outer.items()), key=lambda kv: -kv[1]),
    }


def archspec_phases(runs: int) -> dict[str, float]:
    """Median seconds of each stage of one in-process summary (caches warm)."""
    from archspec import render
    from archspec.api import check
    from archspec.expand import expand
    from archspec.spec import load
    from archspec.summary import summarize_graph
    from archspec.text_table import plain

    def table(s):
        return plain(render.summary_lines(s, 160))  # what `archspec summary` prints into a pipe

    spec = load(SPEC)
    graph = expand(spec)
    s = summarize_graph(graph)
    steps = {
        "load (YAML with positions)": lambda: load(SPEC),
        "schema check (jsonschema)": lambda: check(spec),
        "expand (shapes inferred)": lambda: expand(spec),
        "analyse (summarize_graph)": lambda: summarize_graph(graph),
        "render table (text)": lambda: table(s),
        "render json": lambda: render.to_json(s),
    }
    return {name: median_time(fn, runs)[0] for name, fn in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per measurement (median; >= 10)")
    parser.add_argument("--skip-torch", action="store_true", help="measure archspec only")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    runs = max(options.runs, 10)
    if not ARCHSPEC.exists():
        sys.exit(f"{ARCHSPEC} not found: run this file with the venv's python (.venv/bin/python)")
    python = sys.executable
    results: dict[str, float] = {}

    def measure(label: str, fn, warmup: int = 1) -> float:
        value, _ = median_time(fn, runs, warmup)
        results[label] = value
        print(f"  {label:<58} {value * 1000:9.1f} ms", flush=True)
        return value

    print(f"archspec benchmark: {runs} runs per figure, median wall time\n"
          f"python {platform.python_version()}, {cpu_model()}, {os.cpu_count()} CPU(s), "
          f"load average {load_average()} at start\n", flush=True)
    results["load average at start"] = load_average()

    # Whole processes run as after a normal install: with bytecode caches. They are kept in a
    # temporary PYTHONPYCACHEPREFIX, so the source tree gets no __pycache__ folders.
    cache_dir = tempfile.mkdtemp(prefix="archspec-bench-pycache-")
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = cache_dir
    cached["ARCHSPEC_CACHE_DIR"] = tempfile.mkdtemp(prefix="archspec-bench-valid-")  # not the user's ~/.cache
    first_run = {**cached, "ARCHSPEC_CACHE_DIR": ""}  # nothing remembered: every run checks the schema
    no_cache = os.environ.get("PYTHONDONTWRITEBYTECODE")
    summary_argv = [str(ARCHSPEC), "summary", str(SPEC)]

    print("(a) whole processes (bytecode cached, as after pip install)", flush=True)
    measure("python -c pass (interpreter start)", process([python, "-c", "pass"], cached))
    measure("python -c 'import archspec.cli'", process([python, "-c", "import archspec.cli"], cached))
    a_table = measure("archspec summary specs/vgg16.yaml", process(summary_argv, cached))
    a_first = measure("archspec summary specs/vgg16.yaml, schema check not remembered",
                      process(summary_argv, first_run))
    a_json = measure("archspec summary specs/vgg16.yaml --format json",
                     process(summary_argv + ["--format", "json"], cached))
    measure("archspec validate specs/vgg16.yaml", process([str(ARCHSPEC), "validate", str(SPEC)], cached))
    if no_cache:
        print("    as this environment runs it (PYTHONDONTWRITEBYTECODE is set: every archspec module is\n"
              "    compiled from source at each start, the editable install having no cached bytecode)")
        measure("archspec summary specs/vgg16.yaml (no bytecode cache)", process(summary_argv))
        measure("python -c 'import archspec.cli' (no bytecode cache)", process([python, "-c", "import archspec.cli"]))

    print("\n(b) archspec in-process (Python API)", flush=True)
    start = time.perf_counter()
    import archspec
    from archspec.render import summary_lines
    from archspec.text_table import plain
    results["import archspec (in this process)"] = time.perf_counter() - start
    start = time.perf_counter()
    summary = archspec.summarize(SPEC)
    results["archspec.summarize, first call (cold caches)"] = time.perf_counter() - start
    label = "import archspec" + (" (no bytecode cache)" if no_cache else "")
    print(f"  {label:<58} {results['import archspec (in this process)'] * 1000:9.1f} ms\n"
          f"  {'archspec.summarize, first call (cold caches)':<58} "
          f"{results['archspec.summarize, first call (cold caches)'] * 1000:9.1f} ms")
    b_api = measure("archspec.summarize(vgg16.yaml)", lambda: archspec.summarize(SPEC))

    def summarize_and_render():
        plain(summary_lines(archspec.summarize(SPEC), 160))

    measure("archspec.summarize + render the table", summarize_and_render)
    phases = archspec_phases(runs)
    for name, value in phases.items():
        print(f"    phase: {name:<49} {value * 1000:9.2f} ms")
    results.update({f"phase: {k}": v for k, v in phases.items()})
    totals = summary.totals

    rows = [("archspec summary (process)", a_table), ("archspec summary (process, first run of the spec)", a_first),
            ("archspec summary --format json (process)", a_json),
            ("archspec.summarize (in-process)", b_api)]
    if no_cache:
        rows.insert(2, ("archspec summary (process, no bytecode cache)",
                        results["archspec summary specs/vgg16.yaml (no bytecode cache)"]))
    if not options.skip_torch:
        print("\n(c) torchinfo on VGG-16 in plain torch", flush=True)
        namespace: dict = {}
        start = time.perf_counter()
        exec(VGG16_SOURCE, namespace)
        import torch
        import torchinfo
        results["import torch + torchinfo (in this process)"] = time.perf_counter() - start
        seconds = results["import torch + torchinfo (in this process)"]
        print(f"  {'import torch + torchinfo':<58} {seconds * 1000:9.1f} ms")
        vgg16 = namespace["vgg16"]
        model = vgg16()
        stats = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)
        c_summary = measure("torchinfo.summary(model) (model built)",
                            lambda: torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0))
        c_with_build = measure("vgg16() + torchinfo.summary",
                               lambda: torchinfo.summary(vgg16(), input_size=(1, 3, 224, 224), verbose=0))
        c_process = measure("python -c 'import torch, torchinfo; build; summary'",
                            process([python, "-c", TORCHINFO_PROCESS], cached))
        # torchinfo counts each bias addition as one more mult-add; archspec (torchvision's
        # convention) counts the multiply-accumulates of conv and linear weights only.
        bias_adds = sum(math.prod(f.node.shape) for f in summary.analysis.figures if f.params.biases)
        agree = (stats.total_params == totals.params and stats.total_mult_adds == totals.macs + bias_adds)
        print(f"\n  cross-check: torchinfo params {stats.total_params:,}, mult-adds {stats.total_mult_adds:,}\n"
              f"               archspec params {totals.params:,}, MACs {totals.macs:,} + bias additions "
              f"{bias_adds:,} = {totals.macs + bias_adds:,} -> {'agree' if agree else 'DIFFER'}")
        results["torchinfo total_params"] = stats.total_params
        results["torchinfo total_mult_adds"] = stats.total_mult_adds
        print(f"  torch {torch.__version__}, torchinfo {getattr(torchinfo, '__version__', '?')}, "
              f"torch threads {torch.get_num_threads()}")
        comparisons = [
            ("whole process: torchinfo script vs `archspec summary`", c_process, a_table),
            ("whole process: torchinfo script vs `archspec summary`, first run of the spec", c_process, a_first),
            ("in-process: torchinfo.summary (model built) vs archspec.summarize", c_summary, b_api),
            ("in-process: build + torchinfo.summary vs archspec.summarize", c_with_build, b_api),
        ]
        print("\nMedians and ratios (torchinfo / archspec)")
        print(f"  {'comparison':<68} {'torchinfo':>10} {'archspec':>10} {'ratio':>7}")
        if no_cache:
            comparisons.insert(1, ("whole process: torchinfo script vs `archspec summary`, no bytecode cache",
                                   c_process, results["archspec summary specs/vgg16.yaml (no bytecode cache)"]))
        for label, t, a in comparisons:
            print(f"  {label:<68} {t * 1000:8.1f}ms {a * 1000:8.1f}ms {t / a:6.1f}×")
        wanted = 15
        print(f"  target: the whole process at least {wanted}× faster than torchinfo's -> "
              f"{c_process / a_table:.1f}× ({'met' if c_process / a_table >= wanted else 'NOT met'}); "
              f"first run of a spec {c_process / a_first:.1f}×")

    print("\nSummary of archspec")
    for label, value in rows:
        print(f"  {label:<58} {value * 1000:9.1f} ms")
    target = 0.5
    print(f"  target: the whole `archspec summary specs/vgg16.yaml` process well under {target * 1000:.0f} ms "
          f"-> {'met' if a_table < target / 2 else 'within the limit' if a_table < target else 'NOT met'}")

    print("\nImport time of the `archspec summary specs/vgg16.yaml` process (-X importtime, bytecode cached, "
          "medians of 5 runs)")
    breakdown = import_breakdown(summary_argv, cached)
    results["import_breakdown"] = breakdown
    imports = breakdown["total_us"] / 1e6
    start_up = results["python -c pass (interpreter start)"]
    print(f"  process {a_table * 1000:.0f} ms = interpreter start {start_up * 1000:.0f} ms + imports "
          f"{imports * 1000:.0f} ms (as measured under -X importtime, which inflates them a little) "
          f"+ the rest {max(a_table - start_up - imports, 0) * 1000:.0f} ms (work, rendering, exit)")
    heavy = breakdown["heavy_packages_imported"]
    print(f"  torch, networkx, numpy imported: {', '.join(heavy) if heavy else 'none of them'}")
    print("  self time by top-level package:")
    for name, us in list(breakdown["by_package_us"].items())[:15]:
        print(f"    {name:<40} {us / 1000:8.1f} ms")
    print("  slowest modules (self time):")
    for name, us in breakdown["slowest_modules_self_us"]:
        print(f"    {name:<40} {us / 1000:8.1f} ms")
    print("  outermost imports (cumulative: the module and everything it imports):")
    for name, us in breakdown["outermost_cumulative_us"][:12]:
        print(f"    {name:<40} {us / 1000:8.1f} ms")

    shutil.rmtree(cache_dir, ignore_errors=True)
    shutil.rmtree(cached["ARCHSPEC_CACHE_DIR"], ignore_errors=True)
    results["load average at end"] = load_average()
    print(f"\nload average {load_average()} at the end (above 0.5 or so, other processes shared the CPUs)")
    if options.json:
        options.json.write_text(json.dumps({"runs": runs, "cpu": cpu_model(), "cpus": os.cpu_count(),
                                            "python": platform.python_version(),
                                            "date": time.strftime("%Y-%m-%d"), "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
