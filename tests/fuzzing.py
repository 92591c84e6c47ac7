"""Settings shared by every property and fuzz test: fast and repeatable by default, larger on demand.

    ARCHSPEC_FUZZ_EXAMPLES=N   examples per test (default: each test's own, small enough for CI)
    ARCHSPEC_FUZZ_SEED=S       draw other examples than the fixed default ones (bench/fuzz.sh sets both)
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, seed, settings

SEED = os.environ.get("ARCHSPEC_FUZZ_SEED")
EXAMPLES = os.environ.get("ARCHSPEC_FUZZ_EXAMPLES")


def examples(default: int) -> int:
    return int(EXAMPLES) if EXAMPLES else default


def fuzz(default_examples: int, **options):
    """A decorator: hypothesis settings with the example count and seed from the environment."""
    chosen = settings(max_examples=examples(default_examples), deadline=None, derandomize=SEED is None,
                      database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                            HealthCheck.filter_too_much], **options)

    def apply(test):
        test = chosen(test)
        return seed(int(SEED))(test) if SEED is not None else test

    return apply
