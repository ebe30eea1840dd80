"""Radius throughput: certified radii per second for each registered (family, norm) at d = 3072.

Tables are built (or loaded from the cache) by a first call, timed separately; the throughput is
then measured on ``--count`` p_lower values spread over (1/2, 0.99999], the range a certification
with n = 100,000 samples produces (goal: at least 1e5 values per second). Run from the repository
root:

    python bench/bench_radii.py [--dim 3072] [--count 100000] [--fresh-cache] [--tabulated]
                                [--family NAME ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from smoothcert import get_noise, list_noises
from smoothcert.norms import Norm

GOAL = 1e5

#: shapes whose radii come from tables (differential or level-set method), with --tabulated
TABULATED = [
    ("exp1", {"k": 2.0}),
    ("exp_inf", {"k": 2.0}),
    ("exp_p", {"p": 0.5}),
    ("exp2", {"k": 1.0}),
    ("exp2", {"k": 2.0, "j": 2048}),
    ("pow2", {}),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=3072)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--family", nargs="+", default=None, help="only these families")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="build every table in an empty temporary cache directory")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--tabulated", action="store_true",
                        help="also time shapes whose radii come from tables: "
                             + "; ".join(f"{n} {s}" for n, s in TABULATED))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.fresh_cache:
        os.environ["SMOOTHCERT_CACHE_DIR"] = tempfile.mkdtemp(prefix="smoothcert-bench-")
    rng = np.random.default_rng(0)
    p = 0.5 + (0.99999 - 0.5) * rng.random(args.count)
    names = args.family or list_noises()
    cases = [(name, {}) for name in names]
    if args.tabulated:
        cases += [(n, shape) for n, shape in TABULATED if n in names and n in list_noises()]

    print(f"d = {args.dim}, {args.count} p_lower values in (1/2, 0.99999], best of "
          f"{args.repeats}")
    print(f"{'noise':<24}{'norm':<8}{'first call s':>14}{'values/s':>14}")
    slow = []
    for name, shape in cases:
        noise = get_noise(name, dim=args.dim, sigma=1.0, **shape)
        title = name + "".join(f" {k}={v}" for k, v in shape.items())
        for norm in Norm:
            convert = norm not in noise.direct_norms
            start = time.perf_counter()
            noise.certified_radius(p[:16], norm, convert=convert)
            first = time.perf_counter() - start
            best = np.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                noise.certified_radius(p, norm, convert=convert)
                best = min(best, time.perf_counter() - start)
            rate = args.count / best
            label = f"{norm.value}{'*' if convert else ''}"
            flag = "" if rate >= GOAL else "  below goal"
            print(f"{title:<24}{label:<8}{first:>14.3f}{rate:>14.3g}{flag}")
            if rate < GOAL:
                slow.append(f"{title}/{label}")
    print("* = by the lp conversion from the direct norms")
    print(f"goal: >= {GOAL:.0e} values/s; below: {', '.join(slow) if slow else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
