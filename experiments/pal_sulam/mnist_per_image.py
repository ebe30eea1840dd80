"""Pal & Sulam on MNIST, decided per image: which test images the smoothed classifier gets wrong,
for every model h_alpha and smoothing noise beta, and paired (McNemar) tests across alpha.

    python experiments/pal_sulam/mnist_per_image.py --checkpoints DIR/clean.pt DIR/alpha*.pt \\
        --betas 0.1,0.2,...,0.9 --n 100 --out runs/pal_sulam/mnist-per-image [--max-examples M]
        [--device cuda] [--batch-size 10000] [--channels-last]
    python experiments/pal_sulam/mnist_per_image.py --out runs/pal_sulam/mnist-per-image --report
    python experiments/pal_sulam/mnist_per_image.py --amend results/.../tests.csv

Each cell (alpha, beta) is the majority vote of N Gaussian draws per test image (no abstention),
each image drawing from its own stream (seed ``input_seed(seed, index)``, as ``smoothcert
risk``), so every alpha sees the same noise on the same image: the comparisons across alpha are
paired in images and draws. With ``--curtail`` each image draws only until its vote of N is
decided (``smoothcert.pal_sulam.risk.curtailed_vote``: the same vote, at least N // 2 + 1
draws); the draws come in rounds, so the realized noise differs from ``smoothcert risk``'s, but
the vote is the same random variable. Without it, a cell's error count equals that command's
``risk.csv`` entry. ``--cells A/B,...`` evaluates only those (alpha, beta) pairs; ``--betas``
all betas for every checkpoint. Cells are written one file each
(``cells/alpha{a}-beta{b}.npy``, a boolean per test image: wrong; with the forward passes per
image in ``cells/alpha{a}-beta{b}.draws.npy``), so a rerun computes only the missing ones.
``--report`` writes the tables only (see ``report``); every run ends with them. ``--amend``
adds the paired difference intervals to a tests.csv written before they were reported.
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
import time
from pathlib import Path

import numpy as np
import torch

from smoothcert.data import get_dataset
from smoothcert.models.checkpoint import load_checkpoint
from smoothcert.noises import get_noise
from smoothcert.pal_sulam.risk import curtailed_vote, majority_vote, vote_counts
from smoothcert.stats import (
    clopper_pearson_interval,
    holm_adjust,
    mcnemar_exact,
    paired_difference_interval_counts,
)


def cell_path(out: Path, alpha: float, beta: float) -> Path:
    return out / "cells" / f"alpha{alpha:.2f}-beta{beta:.2f}.npy"


def wanted_cells(args: argparse.Namespace, alpha: float) -> list[float]:
    if args.cells:
        pairs = [tuple(float(v) for v in item.split("/")) for item in args.cells.split(",")]
        return [b for a, b in pairs if abs(a - alpha) < 1e-9]
    return [float(b) for b in args.betas.split(",")]


def evaluate(args: argparse.Namespace, out: Path) -> None:
    paths = sorted({Path(p) for item in args.checkpoints for p in glob.glob(item)})
    dataset = get_dataset("mnist", "test", args.data_dir)
    count = len(dataset) if args.max_examples < 0 else min(args.max_examples, len(dataset))
    images = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(count)])
    labels = np.array([int(dataset[i][1]) for i in range(count)])
    (out / "cells").mkdir(parents=True, exist_ok=True)
    np.save(out / "labels.npy", labels)
    for path in paths:
        ck = load_checkpoint(path)
        alpha = float((ck.train_noise or {}).get("sigma", 0.0) or 0.0)
        todo = [b for b in wanted_cells(args, alpha) if not cell_path(out, alpha, b).exists()]
        if not todo:
            continue
        model = ck.model.to(args.device).eval()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if args.compile:
            model = torch.compile(model)
        for beta in todo:
            start_time = time.perf_counter()
            noise = None if beta == 0 else get_noise("gaussian", dim=784, sigma=beta)
            per = max(1, args.batch_size // (1 if noise is None else args.n))
            if args.curtail and noise is not None:
                per = max(1, 4 * per)   # most images stop after n // 2 + 1 draws
            wrong = np.zeros(count, dtype=bool)
            draws = np.full(count, 1 if noise is None else args.n, dtype=np.int64)
            for start in range(0, count, per):
                idx = list(range(start, min(start + per, count)))
                batch = images[idx].to(args.device)
                if args.curtail and noise is not None:
                    votes, draws[idx] = curtailed_vote(
                        model, batch, idx, noise=noise, n=args.n, num_classes=10,
                        seed=args.seed, batch_size=args.batch_size)
                else:
                    votes = majority_vote(vote_counts(
                        model, batch, idx, noise=noise, n=args.n, num_classes=10,
                        seed=args.seed, batch_size=args.batch_size))
                wrong[idx] = votes != labels[idx]
            np.save(cell_path(out, alpha, beta).with_suffix(".draws.npy"), draws)
            np.save(cell_path(out, alpha, beta), wrong)   # last: its presence marks the cell done
            print(f"alpha {alpha:.2f} beta {beta:.2f}: {wrong.mean():.2%} wrong, "
                  f"{draws.mean():.1f} forward passes per image, "
                  f"{time.perf_counter() - start_time:.0f} s", flush=True)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """Images wrong under a only, under b only, and the exact two-sided McNemar p-value."""
    return mcnemar_exact(a, b)


def with_difference(row: dict) -> dict:
    """The row of a comparison with the difference of the two errors (a's minus b's) and its
    95% paired interval (Newcombe's method 10, unadjusted), from its counts alone."""
    errors_a, errors_b, n = int(row["errors_a"]), int(row["errors_b"]), int(row["n"])
    only_a, only_b = int(row["wrong_only_a"]), int(row["wrong_only_b"])
    both = errors_a - only_a
    if both != errors_b - only_b or both < 0:
        raise ValueError(f"inconsistent counts in {row!r}: errors_a - wrong_only_a must equal "
                         "errors_b - wrong_only_b (the images wrong under both)")
    diff, low, high = paired_difference_interval_counts(both, only_a, only_b,
                                                        n - both - only_a - only_b)
    return {**row, "difference": diff, "diff_low95": low, "diff_high95": high}


def amend(path: Path) -> None:
    """Add the difference columns of ``with_difference`` to a tests.csv written without them,
    and write tests.md again from it and the risk.csv beside it (the cells are not needed)."""
    with open(path, newline="") as f:
        rows = [with_difference(r) for r in csv.DictReader(f)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(path.parent / "risk.csv", newline="") as f:
        counts = {(float(r["alpha"]), float(r["beta"])): (int(r["n_errors"]), int(r["n"]))
                  for r in csv.DictReader(f)}
    numbers = {"beta": float, "alpha_a": float, "alpha_b": float, "errors_a": int,
               "errors_b": int, "n": int, "wrong_only_a": int, "wrong_only_b": int}
    write_verdicts(path.parent, [{k: numbers.get(k, float)(v) for k, v in r.items()}
                                 for r in rows], counts)


def load_cells(out: Path) -> dict[tuple[float, float], np.ndarray]:
    cells = {}
    for path in sorted((out / "cells").glob("alpha*-beta*.npy")):
        if path.name.endswith(".draws.npy"):
            continue
        a, b = path.stem[len("alpha"):].split("-beta")
        cells[(float(a), float(b))] = np.load(path)
    return cells


def percent_interval(k: int, n: int) -> str:
    """k of n in %, with the 95% Clopper-Pearson interval, to two decimals."""
    low, high = clopper_pearson_interval(k, n, 0.05)
    return f"{100 * k / n:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def comparisons(alphas: list[float], beta: float) -> list[tuple[float, float]]:
    """The pre-specified pairs (a, b) of one beta, each asking "is a's risk different from b's":
    every alpha below beta against every alpha at or above it (does the minimum lie below
    beta?), and every alpha above beta against alpha = beta (does one above beat it?)."""
    below = [a for a in alphas if a < beta - 1e-9]
    at_or_above = [a for a in alphas if a >= beta - 1e-9]
    above = [a for a in alphas if a > beta + 1e-9]
    pairs = [(a, b) for a in below for b in at_or_above]
    pairs += [(a, beta) for a in above if any(abs(b - beta) < 1e-9 for b in alphas)]
    return pairs


def report(out: Path) -> None:
    """risk.csv (every cell, with its 95% Clopper-Pearson interval and forward passes per image),
    risk.md (the error in % as a beta x alpha table),
    tests.csv (the ``comparisons`` of every beta: the images wrong under one model only, the
    exact two-sided McNemar p-value, Holm's adjustment over the comparisons of that beta, and
    the difference of the two errors with its 95% paired interval, unadjusted),
    and tests.md: per beta, alpha* (the smallest error, descriptive), alpha = beta, and two
    verdicts at family-wise level 5% within that beta. "alpha* < beta": yes (listing them) when
    some alpha below beta errs significantly less than every evaluated alpha at or above beta;
    no when some alpha at or above beta errs significantly less than every alpha below it;
    otherwise undecided. "Some alpha beats alpha = beta": yes when some other alpha errs
    significantly less than alpha = beta; no when alpha = beta errs significantly less than
    every other; otherwise undecided, followed by the best other alpha against alpha = beta
    (its difference and paired interval bound the effect the data leave open). The pairs are
    fixed before looking at the errors, so choosing alpha* does not bias the tests."""
    cells = load_cells(out)
    with open(out / "risk.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["alpha", "beta", "n_errors", "n", "error", "low95", "high95",
                         "passes_per_image"])
        for (a, b), wrong in sorted(cells.items()):
            low, high = clopper_pearson_interval(int(wrong.sum()), wrong.size, 0.05)
            draws = out / "cells" / f"alpha{a:.2f}-beta{b:.2f}.draws.npy"
            passes = float(np.load(draws).mean()) if draws.exists() else float("nan")
            writer.writerow([a, b, int(wrong.sum()), wrong.size, wrong.mean(), low, high,
                             round(passes, 2)])
    betas = sorted({b for _, b in cells})
    alphas = sorted({a for a, _ in cells})
    grid = ["| β \\ α | " + " | ".join(f"{a:g}" for a in alphas) + " |",
            "|---|" + "---:|" * len(alphas)]
    for beta in betas:   # error in %, two decimals; the smallest of the row in bold
        errors = {a: cells[(a, beta)].mean() for a in alphas if (a, beta) in cells}
        low = min(errors.values())
        grid.append(f"| {beta:g} | " + " | ".join(
            "" if a not in errors else
            (f"**{100 * errors[a]:.2f}**" if errors[a] == low else f"{100 * errors[a]:.2f}")
            for a in alphas) + " |")
    (out / "risk.md").write_text("\n".join(grid) + "\n")
    rows = []
    for beta in betas:
        have = sorted(a for a, b in cells if b == beta)
        for a, b in comparisons(have, beta):
            only_a, only_b, p = mcnemar(cells[(a, beta)], cells[(b, beta)])
            rows.append({"beta": beta, "alpha_a": a, "alpha_b": b,
                         "errors_a": int(cells[(a, beta)].sum()),
                         "errors_b": int(cells[(b, beta)].sum()), "n": cells[(a, beta)].size,
                         "wrong_only_a": only_a, "wrong_only_b": only_b, "p_mcnemar": p})
    if not rows:
        print(f"wrote {out / 'risk.csv'} ({len(cells)} cells; nothing to compare)")
        return
    for beta in betas:   # each beta is its own question: Holm over that beta's comparisons
        mine = [r for r in rows if r["beta"] == beta]
        for r, adj in zip(mine, holm_adjust([r["p_mcnemar"] for r in mine]), strict=True):
            r["p_holm"] = adj
    rows = [with_difference(r) for r in rows]
    with open(out / "tests.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_verdicts(out, rows, {key: (int(wrong.sum()), wrong.size)
                               for key, wrong in cells.items()})
    print(f"wrote {out / 'risk.csv'}, {out / 'tests.csv'} and {out / 'tests.md'} "
          f"({len(cells)} cells)")


def write_verdicts(out: Path, rows: list[dict],
                   counts: dict[tuple[float, float], tuple[int, int]]) -> None:
    """tests.md from the comparisons (the rows of tests.csv, with Holm's p-values and the
    difference intervals) and the error counts (errors, images) of every cell; see ``report``."""
    betas = sorted({b for _, b in counts})

    def against_beta(r: dict, a: float) -> str:
        """Comparison row r of alpha = a against alpha = beta, from a's side: the images wrong
        under one of them only, a's error minus alpha = beta's with its 95% paired interval in
        points, and Holm's p-value."""
        mine = r["alpha_a"] == a
        only_a, only_b = ((r["wrong_only_a"], r["wrong_only_b"]) if mine else
                          (r["wrong_only_b"], r["wrong_only_a"]))
        sign = 1 if mine else -1
        diff, low, high = (100 * sign * r[k] for k in ("difference", "diff_low95", "diff_high95"))
        diff, low, high = diff + 0.0, min(low, high) + 0.0, max(low, high) + 0.0   # no "-0.00"
        return (f"{a:g} ({only_a} : {only_b}, {diff:+.2f} [{low:+.2f}, {high:+.2f}] points, "
                f"Holm p = {r['p_holm']:.2g})")

    def pair_row(a: float, b: float, beta: float) -> dict | None:
        """The comparison of a and b at beta (in either order), if it was made."""
        return next((r for r in rows if r["beta"] == beta
                     and (r["alpha_a"], r["alpha_b"]) in ((a, b), (b, a))), None)

    def better(a: float, b: float, beta: float) -> dict | None:
        """The row showing a errs significantly less than b, if there is one."""
        r = pair_row(a, b, beta)
        if r is None:
            return None
        fewer = r["errors_a"] < r["errors_b"] if r["alpha_a"] == a else \
            r["errors_b"] < r["errors_a"]
        return r if fewer and r["p_holm"] < 0.05 else None

    lines = ["| β | α evaluated | α* | error at α* (%) | error at α = β (%) | "
             "α* < β | some α beats α = β |", "|" + "---|" * 7]
    for beta in betas:
        have = sorted(a for a, b in counts if b == beta)
        errors = {a: counts[(a, beta)][0] for a in have}
        n = counts[(have[0], beta)][1]
        star = min(have, key=lambda a: (errors[a], a))
        at = [a for a in have if abs(a - beta) < 1e-9]
        at_or_above = [a for a in have if a >= beta - 1e-9]
        below = [a for a in have if a < beta - 1e-9
                 and at_or_above and all(better(a, b, beta) for b in at_or_above)]
        under = [a for a in have if a < beta - 1e-9]
        over = [a for a in at_or_above if under and all(better(a, b, beta) for b in under)]
        verdict_below = ("yes: " + ", ".join(f"{a:g}" for a in below) if below else
                         "no: " + ", ".join(f"{a:g}" for a in over) if over else "undecided")
        beats = []
        if at:
            for a in have:
                r = better(a, at[0], beta) if a != at[0] else None
                if r:
                    beats.append(against_beta(r, a))
        others = [a for a in have if not at or a != at[0]]
        best_at = at and others and all(better(at[0], a, beta) for a in others)
        verdict_beats = ("yes: " + "; ".join(beats) if beats else
                         "no: α = β errs less than every other" if best_at else "undecided")
        if verdict_beats == "undecided" and at and others:
            # how large a difference the data leave open: the best other alpha against alpha = beta
            rival = min(others, key=lambda a: (errors[a], a))
            verdict_beats += f" ({against_beta(pair_row(rival, at[0], beta), rival)})"
        lines.append(f"| {beta:g} | {', '.join(f'{a:g}' for a in have)} | {star:g} | "
                     f"{percent_interval(errors[star], n)} | "
                     f"{percent_interval(errors[at[0]], n) if at else '—'} | {verdict_below} | "
                     f"{verdict_beats} |")
    (out / "tests.md").write_text("\n".join(lines) + "\n")


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
    parser.add_argument("--compile", action="store_true", help="run the models via torch.compile")
    parser.add_argument("--curtail", action="store_true",
                        help="stop each image's draws once its vote of N is decided")
    parser.add_argument("--cells", default="",
                        help="only these (alpha, beta) pairs, e.g. 0.3/0.5,0.5/0.5")
    parser.add_argument("--report", action="store_true", help="only write the reports")
    parser.add_argument("--amend", type=Path, default=None, metavar="TESTS_CSV",
                        help="only add the difference columns to a tests.csv written without "
                             "them (from its counts), and stop")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.amend is not None:
        amend(args.amend)
        return 0
    if args.out is None:
        parser.error("give --out")
    if not args.report:
        if not args.checkpoints:
            parser.error("give --checkpoints (or --report)")
        evaluate(args, args.out)
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
