"""Differential-method radius tables: build time and lookup throughput.

For each family whose radius needs the differential integral, builds its table in a fresh, empty
cache directory, then times certified_radius on many p_lower values, and compares against the
baseline of the same run: one adaptive quadrature (scipy.integrate.quad) per p_lower. The exact
Laplace l-inf radius (a closed-form sum, no table) is timed too.

    python bench/bench_tables.py [--dim 3072] [--values 200000]

Goals: a table builds in under 6 s; lookups run at >= 1e5 p_lower values per second.
"""

from __future__ import annotations

import time

from _table_bench import fresh_table_cache, setup
from smoothcert.noises import get_noise
from smoothcert.noises.exp1 import exp_norm_phi
from smoothcert.noises.exp_p import exp_p_phi
from smoothcert.noises.pow_inf import pow_inf_phi
from smoothcert.noises.radii.differential import radius_direct
from smoothcert.noises.radii.table import clear_memory_cache

CASES = [
    ("exp_inf", "linf", {"k": 2.0}),
    ("exp_inf", "linf", {"k": 0.5}),
    ("pow_inf", "linf", {}),
    ("exp1", "l1", {"k": 2.0}),
    ("exp1", "l1", {"k": 0.5}),
    ("exp_p", "l1", {"p": 0.5}),
]


def phi_of(noise):
    if noise.name in ("exp1", "exp_inf"):
        return exp_norm_phi(noise.dim, noise.k)
    if noise.name == "pow_inf":
        return pow_inf_phi(noise.dim, noise.a)
    return exp_p_phi(noise.p)


def main() -> None:
    args, p, p_base = setup(__doc__.splitlines()[0], 20,
                            "p_lower values for the per-value quadrature baseline")
    print(f"{'family':<10}{'norm':<6}{'shape':<14}{'build s':>9}{'lookups/s':>12}"
          f"{'quad/s':>9}{'ratio':>9}")
    with fresh_table_cache():
        clear_memory_cache()
        for name, norm, shape in CASES:
            noise = get_noise(name, dim=args.dim, scale=1.0, **shape)
            start = time.perf_counter()
            noise.certified_radius(0.9, norm)  # builds the table
            build = time.perf_counter() - start
            start = time.perf_counter()
            noise.certified_radius(p, norm)
            rate = args.values / (time.perf_counter() - start)
            phi = phi_of(noise)
            start = time.perf_counter()
            radius_direct(p_base, phi)
            base = args.baseline_values / (time.perf_counter() - start)
            label = ",".join(f"{k}={v:g}" for k, v in shape.items()) or "default"
            print(f"{name:<10}{norm:<6}{label:<14}{build:>9.3f}{rate:>12.3g}{base:>9.3g}"
                  f"{rate / base:>9.0f}")
        noise = get_noise("laplace", dim=args.dim, scale=1.0)
        start = time.perf_counter()
        noise.certified_radius(p, "linf")
        rate = args.values / (time.perf_counter() - start)
        print(f"{'laplace':<10}{'linf':<6}{'exact sum':<14}{'-':>9}{rate:>12.3g}")


if __name__ == "__main__":
    main()
