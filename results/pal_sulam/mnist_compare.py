"""Compare the MNIST Delta-hat grid in this folder with Pal & Sulam's published numbers.

Usage: python results/pal_sulam/mnist_compare.py [risk.csv] [--window W --order O]
Prints markdown tables (alpha* per beta; the error at alpha = 0, at alpha = beta and the best
alpha) with 95% Clopper-Pearson intervals. The published values are those of the paper's Fig. 5
and its error table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from smoothcert.pal_sulam.risk import best_alphas, read_risk_table

PUBLISHED_ALPHA_STAR = dict(zip([round(0.1 * k, 1) for k in range(10)],
                                [0.28, 0.25, 0.28, 0.29, 0.34, 0.42, 0.48, 0.52, 0.60, 0.63],
                                strict=True))
# beta: (error at alpha = 0, at alpha = beta, best error, its alpha), in percent
PUBLISHED_ERRORS = {0.3: (2.28, 0.66, 0.63, 0.26), 0.5: (20.25, 0.84, 0.70, 0.39),
                    0.7: (48.9, 1.09, 0.87, 0.51), 0.9: (62.2, 1.88, 1.31, 0.65)}


def pct(table, i, j, low, high) -> str:
    return (f"{100 * table.error[i, j]:.2f}% [{100 * low[i, j]:.2f}, {100 * high[i, j]:.2f}]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv", nargs="?", default=str(Path(__file__).with_name("mnist_risk_n5.csv")))
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--order", type=int, default=2)
    parser.add_argument("--versus", default=None,
                        help="a second grid of the same models with more draws per image "
                             "(e.g. mnist_risk_n25.csv): print the two side by side instead")
    parser.add_argument("--labels", default="N = 5,N = 25",
                        help="names of the two grids for --versus (default 'N = 5,N = 25')")
    parser.add_argument("--no-published", action="store_true",
                        help="omit the published columns (e.g. for the binary variant)")
    args = parser.parse_args()
    table = read_risk_table(args.csv)
    if args.versus:
        side_by_side(table, read_risk_table(args.versus), args.labels.split(","))
        return
    low, high = table.interval(0.95)
    alphas = [round(float(a), 4) for a in table.alphas]
    print(f"{len(alphas)} models (alpha = {alphas[0]:g}..{alphas[-1]:g}), "
          f"{len(table.betas)} betas, {int(table.n.max())} test inputs per cell\n")

    pub = not args.no_published
    print("| β | α* raw | α* smoothed |" + (" published α* |" if pub else "")
          + " smoothed α*/β | α* < β |")
    print("|---|---|---|" + ("---|" if pub else "") + "---|---|")
    for b in best_alphas(table, args.window, args.order):
        beta = round(float(b.beta), 4)
        s = b.smoothed_alpha
        ratio = "—" if s is None or beta == 0 else f"{s / beta:.2f}"
        below = "—" if s is None or beta == 0 else ("yes" if s < beta else "no")
        published = f" {PUBLISHED_ALPHA_STAR.get(beta, float('nan')):g} |" if pub else ""
        print(f"| {beta:g} | {b.raw_alpha:g} | {'—' if s is None else f'{s:g}'} |{published} "
              f"{ratio} | {below} |")

    print("\n| β | Δ̂ at α = 0 | Δ̂ at α = β | best Δ̂ (α) |"
          + (" published: α = 0 / α = β / best (α) |" if pub else ""))
    print("|---|---|---|---|" + ("---|" if pub else ""))
    for j, beta in enumerate(table.betas):
        beta = round(float(beta), 4)
        i0 = alphas.index(0.0) if 0.0 in alphas else None
        ib = alphas.index(beta) if beta in alphas else None
        col = np.where(table.n[:, j] > 0, table.error[:, j], np.inf)
        ibest = int(np.argmin(col))
        known = PUBLISHED_ERRORS.get(beta)
        pub_s = ("" if not pub else " — |" if known is None
                 else f" {known[0]}% / {known[1]}% / {known[2]}% ({known[3]}) |")
        print(f"| {beta:g} | {'—' if i0 is None else pct(table, i0, j, low, high)} | "
              f"{'—' if ib is None else pct(table, ib, j, low, high)} | "
              f"{pct(table, ibest, j, low, high)} ({alphas[ibest]:g}) |{pub_s}")


def side_by_side(first, second, labels: list[str]) -> None:
    """Delta-hat of the cells the two grids share, per beta: one column per grid, then each
    grid's argmin over those shared cells."""
    alphas = [round(float(a), 4) for a in second.alphas]
    betas = [round(float(b), 4) for b in second.betas]
    low1, high1 = first.interval(0.95)
    low2, high2 = second.interval(0.95)
    cell1 = {(round(float(a), 4), round(float(b), 4)): (i, j)
             for i, a in enumerate(first.alphas) for j, b in enumerate(first.betas)
             if first.n[i, j] > 0}
    header = "| α |" + "".join(f" β = {b:g}, {labels[0]} | β = {b:g}, {labels[1]} |" for b in betas)
    print(header)
    print("|---|" + "---|---|" * len(betas))
    best: dict[float, list[tuple[float, float, float]]] = {b: [] for b in betas}
    for i2, alpha in enumerate(alphas):
        row = f"| {alpha:g} |"
        for j2, beta in enumerate(betas):
            if second.n[i2, j2] <= 0 or (alpha, beta) not in cell1:
                row += " — | — |"
                continue
            i1, j1 = cell1[(alpha, beta)]
            row += (f" {pct(first, i1, j1, low1, high1)} |"
                    f" {pct(second, i2, j2, low2, high2)} |")
            best[beta].append((alpha, first.error[i1, j1], second.error[i2, j2]))
        print(row)
    for beta, cells in best.items():
        if cells:
            a1 = min(cells, key=lambda c: (c[1], c[0]))
            a2 = min(cells, key=lambda c: (c[2], c[0]))
            print(f"\nβ = {beta:g}: argmin over these α: {labels[0]}: {a1[0]:g} "
                  f"({100 * a1[1]:.2f}%), {labels[1]}: {a2[0]:g} ({100 * a2[2]:.2f}%)")


if __name__ == "__main__":
    main()
