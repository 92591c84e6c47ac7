"""Benchmark (not a test): drawing a 1,000-block residual network next to a 100-block one.

    .venv/bin/python bench/bench_draw.py [--runs 5] [--blocks 100 1000]

Every block alike (a ResNet basic block: conv, bn, relu, conv, bn, add with the block's input,
relu), written three ways: a named ``repeat`` (its copies are groups), an unnamed ``repeat``
(no groups: the copies are found as a period in the layers) and the blocks listed one by one.
For each, the median wall time of ``archspec draw SPEC -o out.svg`` as a whole process, and in
process of the parts: summarize, the DOT text, layout and drawing, writing the SVG. Folding
should make everything after the summary independent of the number of blocks: the DOT's node
count and the SVG's size are printed to show it. Ratios are 1,000 blocks / 100 blocks.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

BLOCK = """\
blocks:
  basic:
    params: {c: int}
    body:
      - residual:
          - conv2d: {out: $c, kernel: 3, padding: 1, bias: false}
          - batchnorm2d
          - relu
          - conv2d: {out: $c, kernel: 3, padding: 1, bias: false}
          - batchnorm2d
      - relu
"""

UNNAMED_BODY = """\
      - residual:
          - conv2d: {out: 16, kernel: 3, padding: 1, bias: false}
          - batchnorm2d
          - relu
          - conv2d: {out: 16, kernel: 3, padding: 1, bias: false}
          - batchnorm2d
      - relu
"""


def spec_text(kind: str, blocks: int) -> str:
    head = f"archspec: 1\nname: residual{blocks}\ninput: [16, 32, 32]\n"
    tail = "  - global_avgpool\n  - linear: {out: 10}\n"
    if kind == "named repeat":
        return head + BLOCK + f"layers:\n  - {{repeat: {blocks}, name: stage, body: [{{basic: {{c: 16}}}}]}}\n" + tail
    if kind == "unnamed repeat":
        return head + f"layers:\n  - repeat: {blocks}\n    body:\n" + UNNAMED_BODY + tail
    return head + BLOCK + "layers:\n" + "".join("  - {basic: {c: 16}}\n" for _ in range(blocks)) + tail


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(path: Path, out: Path, runs: int) -> dict:
    import archspec
    from archspec.draw.graph import dot_scene, to_dot

    summary = archspec.summarize(path)
    dot = to_dot(summary, wrap=1)
    scene = dot_scene(dot)
    figures = {
        "process": median_time(lambda: subprocess.run([str(BIN / "archspec"), "draw", str(path), "-o", str(out)],
                                                      check=True, capture_output=True), runs),
        "summarize": median_time(lambda: archspec.summarize(path), runs),
        "dot": median_time(lambda: to_dot(summary, wrap=1), runs),
        "layout+draw": median_time(lambda: dot_scene(dot), runs),
        "svg": median_time(lambda: scene.to_svg(), runs),
        "nodes": dot.count("[label="),
        "svg_bytes": out.stat().st_size,
        "layers": len(summary.graph.nodes),
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--blocks", type=int, nargs=2, default=[100, 1000])
    args = parser.parse_args()
    small, large = args.blocks
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, medians; ratio = {large} / {small} blocks")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("named repeat", "unnamed repeat", "listed"):
            results = {}
            for blocks in (small, large):
                path = Path(tmp) / f"{kind.replace(' ', '_')}{blocks}.yaml"
                path.write_text(spec_text(kind, blocks), encoding="utf-8")
                results[blocks] = measure(path, Path(tmp) / "out.svg", args.runs)
            a, b = results[small], results[large]
            print(f"\n{kind}: {a['layers']} and {b['layers']} layers")
            print(f"  {'':22}{small:>10}{large:>10}{'ratio':>8}")
            for key, unit in (("process", "s"), ("summarize", "s"), ("dot", "s"), ("layout+draw", "s"),
                              ("svg", "s"), ("nodes", ""), ("svg_bytes", "")):
                fmt = "{:>10.3f}" if unit else "{:>10d}"
                ratio = b[key] / a[key] if a[key] else float("nan")
                print(f"  {key + (' (' + unit + ')' if unit else ''):22}" + fmt.format(a[key]) + fmt.format(b[key])
                      + f"{ratio:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
