"""Pal & Sulam on MNIST, decided per image: which test images the smoothed classifier gets wrong,
for every model h_alpha and smoothing noise beta, and paired (McNemar) tests across alpha.

    python experiments/pal_sulam/mnist_per_image.py --checkpoints DIR/clean.pt DIR/alpha*.pt \\
        --betas 0.1,0.2,...,0.9 --n 100 --out runs/pal_sulam/mnist-per-image [--max-examples M]
        [--device cuda] [--batch-size 10000] [--channels-last]
    python experiments/pal_sulam/mnist_per_image.py --out runs/pal_sulam/mnist-per-image --report

Each cell (alpha, beta) is the majority vote of N Gaussian draws per test image (no abstention)
with the draws of ``smoothcert risk`` (seed ``input_seed(seed, index)``, the same N), so a
cell's error count equals that command's ``risk.csv`` entry. Cells are written one file each
(``cells/alpha{a}-beta{b}.npy``, a boolean per test image: wrong), so a rerun computes only the
missing ones. ``--report`` writes ``tests.csv``: per beta, the smallest-risk alpha (alpha*),
its risk against alpha = beta (the nearest grid value) and alpha = 0, with the exact two-sided
McNemar p-value (binomial test on the discordant images) and Holm's adjustment over the betas
of each comparison; and ``risk.csv`` with 95% Clopper-Pearson intervals.
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
from pathlib import Path

import numpy as np
import torch

from smoothcert.data import get_dataset
from smoothcert.models.checkpoint import load_checkpoint
from smoothcert.noises import get_noise
from smoothcert.pal_sulam.risk import majority_vote, vote_counts
from smoothcert.stats import clopper_pearson_interval, holm_adjust, mcnemar_exact


def cell_path(out: Path, alpha: float, beta: float) -> Path:
    return out / "cells" / f"alpha{alpha:.2f}-beta{beta:.2f}.npy"


def evaluate(args: argparse.Namespace, out: Path) -> None:
    paths = sorted({Path(p) for item in args.checkpoints for p in glob.glob(item)})
    betas = [float(b) for b in args.betas.split(",")]
    dataset = get_dataset("mnist", "test", args.data_dir)
    count = len(dataset) if args.max_examples < 0 else min(args.max_examples, len(dataset))
    images = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(count)])
    labels = np.array([int(dataset[i][1]) for i in range(count)])
    (out / "cells").mkdir(parents=True, exist_ok=True)
    np.save(out / "labels.npy", labels)
    for path in paths:
        ck = load_checkpoint(path)
        alpha = float((ck.train_noise or {}).get("sigma", 0.0) or 0.0)
        todo = [b for b in betas if not cell_path(out, alpha, b).exists()]
        if not todo:
            continue
        model = ck.model.to(args.device).eval()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for beta in todo:
            noise = None if beta == 0 else get_noise("gaussian", dim=784, sigma=beta)
            per = max(1, args.batch_size // (1 if noise is None else args.n))
            wrong = np.zeros(count, dtype=bool)
            for start in range(0, count, per):
                idx = list(range(start, min(start + per, count)))
                votes = vote_counts(model, images[idx].to(args.device), idx, noise=noise,
                                    n=args.n, num_classes=10, seed=args.seed,
                                    batch_size=args.batch_size)
                wrong[idx] = majority_vote(votes) != labels[idx]
            np.save(cell_path(out, alpha, beta), wrong)
            print(f"alpha {alpha:.2f} beta {beta:.2f}: {wrong.mean():.2%} wrong", flush=True)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Images wrong under a only, under b only, and the exact two-sided McNemar p-value."""
    return mcnemar_exact(a, b)


def report(out: Path) -> None:
    cells = {}
    for path in sorted((out / "cells").glob("alpha*-beta*.npy")):
        a, b = path.stem[len("alpha"):].split("-beta")
        cells[(float(a), float(b))] = np.load(path)
    alphas = sorted({a for a, _ in cells})
    with open(out / "risk.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["alpha", "beta", "n_errors", "n", "error", "low95", "high95"])
        for (a, b), wrong in sorted(cells.items()):
            low, high = clopper_pearson_interval(int(wrong.sum()), wrong.size, 0.05)
            writer.writerow([a, b, int(wrong.sum()), wrong.size, wrong.mean(), low, high])
    rows = []
    for beta in sorted({b for _, b in cells}):
        have = [a for a in alphas if (a, beta) in cells]
        risks = {a: cells[(a, beta)].mean() for a in have}
        best = min(have, key=lambda a: (risks[a], a))
        for name, other in (("alpha=beta", min(have, key=lambda a: abs(a - beta))),
                            ("alpha=0", min(have))):
            only_best, only_other, p = mcnemar(cells[(best, beta)], cells[(other, beta)])
            rows.append({"beta": beta, "comparison": name, "alpha_star": best,
                         "risk_star": risks[best], "alpha_other": other,
                         "risk_other": risks[other], "wrong_only_star": only_best,
                         "wrong_only_other": only_other, "p_mcnemar": p})
    for name in ("alpha=beta", "alpha=0"):
        mine = [r for r in rows if r["comparison"] == name]
        for r, adj in zip(mine, holm_adjust([r["p_mcnemar"] for r in mine]), strict=True):
            r["p_holm"] = adj
    with open(out / "tests.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / 'risk.csv'} and {out / 'tests.csv'} ({len(cells)} cells)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", nargs="*", default=[])
    parser.add_argument("--betas", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-examples", type=int, default=-1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--report", action="store_true", help="only write the reports")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.report:
        if not args.checkpoints:
            parser.error("give --checkpoints (or --report)")
        evaluate(args, args.out)
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
