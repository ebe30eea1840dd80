"""The 10-seed columns of the synthetic table in README.md, from one `smoothcert synthetic` run
per seed:

    for s in 0 1 2 3 4 5 6 7 8 9; do
      smoothcert synthetic --out runs/pal_sulam/synthetic-seed$s --seed $s --formats png
    done
    python results/pal_sulam/synthetic_seeds.py runs/pal_sulam/synthetic-seed{0..9} \
        --out results/pal_sulam/synthetic_seeds.csv

Writes one row per (seed, beta, zeta): the 10-image mean of Delta_{alpha,beta} - Delta_{0,beta}
at alpha = 20 and its minimum over alpha > 0 (with the argmin), and prints the summary over seeds.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for folder in args.folders:
        with open(folder / "run.json") as f:
            seed = int(__import__("json").load(f)["config"]["seed"])
        curves: dict[tuple[float, int], dict[float, float]] = defaultdict(dict)
        with open(folder / "synthetic.csv", newline="") as f:
            for r in csv.DictReader(f):
                curves[(float(r["beta"]), int(r["zeta"]))][float(r["alpha"])] = float(
                    r["delta_minus_delta0"])
        for (beta, zeta), curve in sorted(curves.items()):
            positive = {a: v for a, v in curve.items() if a > 0}
            best = min(positive, key=lambda a: (positive[a], a))
            rows.append({"seed": seed, "beta": beta, "zeta": zeta, "at_alpha20": curve[20.0],
                         "min_over_alpha": positive[best], "argmin_alpha": best})
    rows.sort(key=lambda r: (r["beta"], r["zeta"], r["seed"]))
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print("beta zeta  alpha=20 mean±sd (min, max)   seeds helped  min over alpha: mean, lowest")
    for key in sorted({(r["beta"], r["zeta"]) for r in rows}):
        mine = [r for r in rows if (r["beta"], r["zeta"]) == key]
        at20 = np.array([r["at_alpha20"] for r in mine])
        mins = np.array([r["min_over_alpha"] for r in mine])
        helped = mins < 0
        print(f"{key[0]:4g} {key[1]:4d}  {at20.mean():+.5f}±{at20.std(ddof=1):.5f} "
              f"({at20.min():+.5f}, {at20.max():+.5f})  {helped.sum()}/{len(mine)}  "
              f"{mins[helped].mean() if helped.any() else 0:+.5f}, {mins.min():+.5f} "
              f"(alphas {sorted(r['argmin_alpha'] for r in mine if r['min_over_alpha'] < 0)})")


if __name__ == "__main__":
    main()
