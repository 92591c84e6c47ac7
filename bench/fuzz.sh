#!/usr/bin/env bash
# Fuzzing at scale: every property and fuzz test with many more examples than CI runs, from a fresh seed.
#
#   bench/fuzz.sh                                     # every suite, 1,000 examples per test, a random seed
#   ARCHSPEC_FUZZ_SEED=42 bench/fuzz.sh tests/test_layers.py=300 tests/test_fuzz.py=5000
#
# The suites: the spec fuzzer (tests/test_fuzz.py), the window arithmetic and every layer against
# torch (tests/test_window.py, tests/test_layers.py), and the readers of files from strangers:
# damaged weights, checkpoints, state trees, run configs, idx files and CSV listings
# (tests/test_fuzz_files.py). SUITE=N gives one suite N examples per test (ARCHSPEC_FUZZ_EXAMPLES,
# default 1,000, for a suite named without a count), so a slow suite can get fewer per test and
# each its fair share of the time. Suites run one after the other, each with its own seed
# (ARCHSPEC_FUZZ_SEED plus its position); the examples counted are the ones hypothesis reports it
# ran (--hypothesis-show-statistics), not the ones asked for. Logs go to $ARCHSPEC_FUZZ_LOGS
# (default: a fresh temporary folder). Record what you ran in docs/reliability.md.
set -uo pipefail
cd "$(dirname "$0")/.."
default="${ARCHSPEC_FUZZ_EXAMPLES:-1000}"
seed="${ARCHSPEC_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
logs="${ARCHSPEC_FUZZ_LOGS:-$(mktemp -d -t archspec-fuzz.XXXXXX)}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p "$logs"
if [ $# -eq 0 ]; then
    set -- tests/test_fuzz.py tests/test_fuzz_files.py tests/test_window.py tests/test_layers.py
fi
echo "seed $seed, logs in $logs, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
failed=0 total=0 position=0 began=$(date +%s)
for argument in "$@"; do
    suite="${argument%%=*}"
    examples="$default"
    [ "$suite" != "$argument" ] && examples="${argument#*=}"
    suite_seed=$((seed + position))
    position=$((position + 1))
    log="$logs/$(basename "$suite" .py).log"
    start=$(date +%s)
    ARCHSPEC_FUZZ_EXAMPLES="$examples" ARCHSPEC_FUZZ_SEED="$suite_seed" \
        "$python" -m pytest -p no:cacheprovider "$suite" -m "not gpu" --hypothesis-show-statistics >"$log" 2>&1
    status=$?
    # hypothesis' statistics: "- N passing, M failing, and K invalid test cases" per phase of each test
    ran=$(grep -Eo '[0-9]+ passing, [0-9]+ failing' "$log" | awk '{n += $1 + $3} END {print n + 0}')
    tests=$(grep -c '^tests/.*::.*:$' "$log")
    outcome=$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1 | tr -d '=' | xargs)
    echo "$suite: seed $suite_seed, $examples per test asked, $ran examples run in $tests hypothesis tests," \
         "$(( $(date +%s) - start )) s, exit $status ($outcome)"
    total=$((total + ran))
    [ $status -ne 0 ] && failed=1
done
echo "in all: $total examples in $(( $(date +%s) - began )) s, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
exit $failed
