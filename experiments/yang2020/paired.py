"""[YDH+20]'s orderings, decided with statistics: per-family envelopes over sigma with 95%
Clopper-Pearson intervals, and exact paired (McNemar) tests between families on the same images.

    python experiments/yang2020/paired.py RUNS/*/certify.tsv --norm l1 --radii 0.25,0.5,1,1.5 \\
        --order uniform,laplace,gaussian --out results/yang2020/mnist_full/l1

Every file is a `smoothcert certify` TSV with its run record (the noise family is read from it);
all files must cover the same test images, or with ``--common`` they are compared on the images
they all have. For each family and radius r the envelope takes the
family's run (sigma) with the most images certified at r; the interval is the two-sided 95%
Clopper-Pearson interval of that accuracy. Choosing the sigma on the same images favours every
family alike and is what [YDH+20] Table 1 does; the intervals do not account for it.

For each consecutive pair (A, B) of ``--order`` (the predicted ordering, best first) and each r,
the test counts the images certified at r by A's envelope run and not by B's (b) and the other
way round (c), and gives the exact one-sided McNemar p-value P[Binomial(b + c, 1/2) >= b] for
"A certifies more than B", and Holm's adjustment over the radii of that pair. ``--pairs
A>B,C>D`` tests those predictions instead of the consecutive pairs (e.g.
``laplace>gaussian,uniform>gaussian`` asks whether any family certifies more than the
Gaussian). Percentages are printed rounded down, interval ends outwards. Writes
``OUT.envelope.csv`` and ``OUT.tests.csv`` and prints both as markdown.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from smoothcert.analysis.results import common_inputs, group_by_noise, read_results
from smoothcert.stats import clopper_pearson_interval, holm_adjust, mcnemar_exact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--norm", required=True)
    parser.add_argument("--radii", required=True, help="comma-separated radii")
    parser.add_argument("--order", required=True,
                        help="the predicted ordering of the families, best first")
    parser.add_argument("--pairs", default="",
                        help="test these predictions A>B instead of --order's consecutive pairs")
    parser.add_argument("--common", action="store_true",
                        help="compare on the test images every file has (otherwise all files "
                             "must cover the same images)")
    parser.add_argument("--out", type=Path, required=True, help="prefix of the CSV files")
    args = parser.parse_args(argv)
    radii = [float(r) for r in args.radii.split(",")]
    results = [read_results(f) for f in args.files]
    if args.common:
        results = common_inputs(results)
    groups = group_by_noise(results)
    order = args.order.split(",")
    if args.pairs:
        pairs = [tuple(item.split(">")) for item in args.pairs.split(",")]
        if any(len(pair) != 2 for pair in pairs):
            parser.error(f"--pairs {args.pairs!r}: give A>B,C>D with family names")
        order = list(dict.fromkeys(order + [f for pair in pairs for f in pair]))
    else:
        pairs = list(zip(order, order[1:], strict=False))
    missing = [f for f in order if f not in groups]
    if missing:
        parser.error(f"no runs of {', '.join(missing)}; the files have {', '.join(groups)}")
    reference = None
    for runs in groups.values():
        for run in runs:
            ids = np.sort(run.idx)
            if reference is None:
                reference = ids
            elif not np.array_equal(ids, reference):
                parser.error(f"{run.label} covers other test images than the first file")

    def mask(run, r):  # certified at r, indexed by test image (sorted by index)
        return run.certified_mask(args.norm, r)[np.argsort(run.idx)]

    best = {}
    env_rows = []
    for family in order:
        for r in radii:
            masks = [(mask(run, r), run) for run in groups[family]]
            m, run = max(masks, key=lambda t: int(t[0].sum()))
            best[(family, r)] = m
            k, n = int(m.sum()), m.size
            low, high = clopper_pearson_interval(k, n, 0.05)
            sigma = run.run.get("configuration", {}).get("noise", {}).get("sigma")
            env_rows.append({"family": family, "radius": r, "sigma": sigma, "certified": k,
                             "n": n, "accuracy": k / n, "low95": float(low),
                             "high95": float(high)})
    test_rows = []
    for a, b in pairs:
        pair = []
        for r in radii:
            ma, mb = best[(a, r)], best[(b, r)]
            only_a, only_b, p = mcnemar_exact(ma, mb, alternative="greater")
            pair.append({"better": a, "worse": b, "radius": r, "only_better": only_a,
                         "only_worse": only_b, "p_one_sided": p})
        for row, adj in zip(pair, holm_adjust([row["p_one_sided"] for row in pair]), strict=True):
            row["p_holm"] = adj
        test_rows += pair
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, rows in ((".envelope.csv", env_rows), (".tests.csv", test_rows)):
        with open(f"{args.out}{suffix}", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    def down(x):  # percent, one decimal, rounded down (as smoothcert analyze)
        return math.floor(1000 * x + 1e-9) / 10

    def up(x):
        return math.ceil(1000 * x - 1e-9) / 10

    print(f"| family | {args.norm} radius | σ | certified | 95% interval |")
    print("|---|---:|---:|---:|---|")
    for row in env_rows:
        print(f"| {row['family']} | {row['radius']:g} | {row['sigma']} | "
              f"{down(row['accuracy']):.1f} % | [{down(row['low95']):.1f}, "
              f"{up(row['high95']):.1f}] |")
    print(f"\n| predicted | {args.norm} radius | only the first | only the second | "
          f"one-sided p | Holm |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in test_rows:
        print(f"| {row['better']} > {row['worse']} | {row['radius']:g} | {row['only_better']} | "
              f"{row['only_worse']} | {row['p_one_sided']:.2g} | {row['p_holm']:.2g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
