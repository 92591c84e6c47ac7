#!/usr/bin/env bash
# Fuzzing at scale: every property and fuzz test with many more examples than CI runs, from a fresh seed.
#
#   bench/fuzz.sh                      # 1,000 examples per test, a random seed
#   ARCHSPEC_FUZZ_EXAMPLES=5000 ARCHSPEC_FUZZ_SEED=42 bench/fuzz.sh
#
# The suites: the spec fuzzer (tests/test_fuzz.py), the window arithmetic and every layer against
# torch (tests/test_window.py, tests/test_layers.py), and the readers of files from strangers:
# damaged weights, checkpoints, state trees and run configs (tests/test_fuzz_files.py).
# Each test draws ARCHSPEC_FUZZ_EXAMPLES examples; the total is that times the number of tests,
# which the script prints with pytest's own count. Record what you ran in docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export ARCHSPEC_FUZZ_EXAMPLES="${ARCHSPEC_FUZZ_EXAMPLES:-1000}"
export ARCHSPEC_FUZZ_SEED="${ARCHSPEC_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
python="${PYTHON:-.venv/bin/python}"
suites=(tests/test_fuzz.py tests/test_fuzz_files.py tests/test_window.py tests/test_layers.py)
tests=$("$python" -m pytest -q --collect-only -p no:cacheprovider "${suites[@]}" -m "not gpu" | grep -c '::' || true)
echo "seed $ARCHSPEC_FUZZ_SEED: up to $ARCHSPEC_FUZZ_EXAMPLES examples in each of $tests tests" \
     "(up to $((ARCHSPEC_FUZZ_EXAMPLES * tests)) examples; tests without hypothesis run once)"
start=$(date +%s)
"$python" -m pytest -q -p no:cacheprovider "${suites[@]}" -m "not gpu" "$@"
echo "fuzzing took $(( $(date +%s) - start )) s"
