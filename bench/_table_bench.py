"""What bench_tables.py and bench_levelset.py share: the command line, the p_lower values
(as certification produces them) and a fresh, temporary table cache."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator

import numpy as np
import torch


def setup(description: str, baseline_values: int, baseline_help: str
          ) -> tuple[argparse.Namespace, np.ndarray, np.ndarray]:
    """Parse --dim/--values/--baseline-values, pin torch to one thread and draw the p_lower
    values: (args, p for the lookup timing, the first --baseline-values of them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dim", type=int, default=3072)
    parser.add_argument("--values", type=int, default=200_000,
                        help="p_lower values per throughput measurement")
    parser.add_argument("--baseline-values", type=int, default=baseline_values,
                        help=baseline_help)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    # p_lower as certification produces them: up to alpha^(1/n) = 0.99993 for n = 1e5
    p = rng.uniform(0.5, 0.99993, args.values)
    print(f"d = {args.dim}; {args.values} p_lower values per lookup timing")
    return args, p, p[: args.baseline_values]


@contextlib.contextmanager
def fresh_table_cache() -> Iterator[None]:
    """Point the on-disk table cache at an empty temporary folder, so every build is timed."""
    old = os.environ.get("SMOOTHCERT_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SMOOTHCERT_CACHE_DIR"] = cache
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("SMOOTHCERT_CACHE_DIR", None)
            else:
                os.environ["SMOOTHCERT_CACHE_DIR"] = old
