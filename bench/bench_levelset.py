"""Level-set (Neyman-Pearson) radius tables: build time and lookup throughput.

For each spherical family certified by the level-set method, builds its l2 radius table at scale
1 in a fresh, empty cache directory (no cached solution path either), then times
certified_radius on many p_lower values, and compares against the baseline of the same run: the
direct level-set solve (Newton on the two quadrature equations) of one p_lower at a time.

    python bench/bench_levelset.py [--dim 3072] [--values 200000]

Goals: a table builds in under 40 s at d = 3072; lookups run at >= 1e5 p_lower values per second.
"""

from __future__ import annotations

import time

import numpy as np

from _table_bench import fresh_table_cache, setup
from smoothcert.noises import get_noise
from smoothcert.noises.radii import levelset
from smoothcert.noises.radii.table import clear_memory_cache

CASES = [
    ("exp2", {"k": 1.0, "j": 0.0}),
    ("exp2", {"k": 2.0, "j": 2048.0}),
    ("exp2", {"k": 0.5, "j": 0.0}),
    ("exp2", {"k": 4.0, "j": 100.0}),
    ("pow2", {"k": 2.0}),
    ("pow2", {"k": 1.0}),
]


def main() -> None:
    args, p, p_base = setup(__doc__.splitlines()[0], 5,
                            "p_lower values solved one at a time for the baseline")
    print(f"{'family':<7}{'shape':<16}{'build s':>9}{'lookups/s':>12}{'direct/s':>10}"
          f"{'ratio':>10}")
    with fresh_table_cache():
        for name, shape in CASES:
            clear_memory_cache()
            levelset.clear_path_cache()
            noise = get_noise(name, dim=args.dim, scale=1.0, **shape)
            law = noise.radial_law()
            start = time.perf_counter()
            levelset.radius_table(law)
            build = time.perf_counter() - start
            start = time.perf_counter()
            noise.certified_radius(p, "l2")
            rate = args.values / (time.perf_counter() - start)
            start = time.perf_counter()
            for value in p_base:
                levelset.radius(law, np.array([value]))
            base = args.baseline_values / (time.perf_counter() - start)
            label = ",".join(f"{k}={v:g}" for k, v in noise.shape_params.items())
            print(f"{name:<7}{label:<16}{build:>9.2f}{rate:>12.3g}{base:>10.3g}"
                  f"{rate / base:>10.3g}")


if __name__ == "__main__":
    main()
