"""``smoothcert risk``: the smoothed risk Delta-hat over a grid of training noise alpha (one
checkpoint each) and smoothing noise beta, [PS23]'s MNIST / CIFAR-10 experiment.

Each checkpoint's alpha is its training noise sigma (0 for clean training). The grid lives in
``--out`` (``risk.csv`` + ``run.json``, resumable: a rerun computes only the missing cells); after
the run, ``risk_summary.csv`` (with Clopper-Pearson intervals), ``alpha_star.csv`` (raw and
Savitzky-Golay alpha* per beta) and the figures ``risk_curves`` and ``risk_heatmap`` are written.
"""

from __future__ import annotations

import argparse
import csv
import functools
import glob
import math
import sys
from pathlib import Path

from smoothcert._values import parse_values
from smoothcert.cli._values import add_classes_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    from smoothcert.noises import list_noises

    p = subparsers.add_parser(
        "risk", help="smoothed risk (majority-vote error) over training noise x smoothing noise",
        description="Delta-hat_{alpha,beta}: the error rate of the majority vote of N noisy "
                    "predictions (no abstention), for every checkpoint (alpha = its training "
                    "noise) and every smoothing noise beta.")
    p.add_argument("--checkpoints", nargs="+", default=[],
                   help="checkpoint files: paths, comma-separated lists or quoted glob patterns")
    p.add_argument("--betas", default="0,0.1,...,0.9",
                   help="smoothing noise levels (default 0,0.1,...,0.9); 0 = no noise")
    p.add_argument("--n", type=int, default=100, help="noise draws per input (default 100)")
    p.add_argument("--noise", default="gaussian", choices=list_noises(),
                   help="smoothing noise family (default gaussian)")
    p.add_argument("--dataset", default="mnist", help="dataset name (default mnist)")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--root", default=None, help="dataset folder (default: the dataset's own)")
    add_classes_argument(p, "as the models were trained")
    p.add_argument("--max-examples", type=int, default=None,
                   help="evaluate only the first N inputs of the split (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default 0)")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="noisy inputs per forward pass (default 1000)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--channels-last", action="store_true",
                   help="run convolutional models in the channels-last memory format (often "
                        "faster on CPUs; the votes are the same up to float rounding)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--window", type=int, default=15, help="Savitzky-Golay window (default 15)")
    p.add_argument("--order", type=int, default=3, help="Savitzky-Golay order (default 3)")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the summaries and figures from --out/risk.csv")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default png,pdf)")
    p.add_argument("--out", required=True, help="output folder of the grid")
    p.set_defaults(func=run)


def expand_checkpoints(items: list[str]) -> list[Path]:
    """Paths from the command line: each item may be a path, a comma list or a glob pattern."""
    paths: list[Path] = []
    for item in items:
        for part in (s.strip() for s in item.split(",")):
            if not part:
                continue
            matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
            if not matches:
                raise FileNotFoundError(f"no checkpoint matches {part!r}")
            paths.extend(Path(m) for m in matches)
    first: dict[Path, Path] = {}
    for path in paths:  # the same file named twice counts once; paths are kept as given
        first.setdefault(path.resolve(), path)
    unique = list(first.values())
    if not unique:
        raise ValueError("give at least one checkpoint with --checkpoints")
    return unique


def run(args: argparse.Namespace) -> int:
    from smoothcert.pal_sulam import risk

    out = Path(args.out)
    if not args.report_only:
        _evaluate(args, out)
    table = risk.read_risk_table(out)
    _report(table, out, args)
    return 0


def _evaluate(args: argparse.Namespace, out: Path) -> None:
    import torch

    from smoothcert.certify.dataset import check_dataset_matches, file_sha256
    from smoothcert.data import get_dataset
    from smoothcert.models.checkpoint import load_checkpoint
    from smoothcert.noises import get_noise
    from smoothcert.pal_sulam import risk

    betas = parse_values(args.betas, "--betas")
    paths = expand_checkpoints(args.checkpoints)
    if args.n < 1:
        raise ValueError(f"--n must be a positive integer, got {args.n}")
    device = torch.device(args.device)
    kwargs = {"root": args.root} if args.root else {}
    if args.classes is not None:
        kwargs["classes"] = list(args.classes)
    dataset = get_dataset(args.dataset, split=args.split, **kwargs)
    count = len(dataset) if args.max_examples is None else min(args.max_examples, len(dataset))
    if count < 1:
        raise ValueError(f"--max-examples must be >= 1, got {args.max_examples}")
    grid = risk.RiskGrid(out, {
        "dataset": args.dataset, "split": args.split, "examples": count, "n": args.n,
        "noise": args.noise, "seed": args.seed, "vote": "majority, ties to the lowest class",
        **({} if args.classes is None else {"classes": list(args.classes)})})

    alphas: dict[float, Path] = {}
    for path in paths:
        ckpt = load_checkpoint(path)
        try:
            check_dataset_matches(ckpt, dataset.info)
        except ValueError as error:
            raise ValueError(f"checkpoint {str(path)!r}: {error}") from None
        sigma = (ckpt.train_noise or {}).get("sigma")
        alpha = risk.grid_key(0.0 if sigma is None else sigma)
        if alpha in alphas:
            raise ValueError(f"{str(alphas[alpha])!r} and {str(path)!r} both have training noise "
                             f"alpha={alpha}")
        alphas[alpha] = path
        grid.bind_checkpoint(alpha, f"sha256:{file_sha256(path)}", str(path))
        del ckpt  # models are loaded again one at a time, only for missing cells

    missing = len(grid.missing(alphas, betas))
    bar = None
    if missing and not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=missing, desc="risk cells", unit="cell", file=sys.stderr)

    def load(path: Path):
        ckpt = load_checkpoint(path, map_location=device)
        if args.channels_last:
            ckpt.model.to(memory_format=torch.channels_last)
        return ckpt

    def evaluate(ckpt, beta: float):
        dim = math.prod(ckpt.input_shape)
        noise = None if beta == 0 else get_noise(args.noise, dim=dim, sigma=beta)
        if bar is not None:
            bar.set_postfix_str(f"alpha={(ckpt.train_noise or {}).get('sigma', 0)} beta={beta:g}")
        estimate = risk.smoothed_risk(ckpt.model, dataset, noise=noise, n=args.n,
                                      num_classes=ckpt.num_classes, seed=args.seed,
                                      indices=range(count), device=device,
                                      batch_size=args.batch_size)
        if bar is not None:
            bar.update(1)
        return estimate

    loaders = {a: functools.partial(load, p) for a, p in alphas.items()}
    try:
        done = risk.run_risk_grid(grid, loaders, betas, evaluate)
    finally:
        if bar is not None:
            bar.close()
    print(f"{done} new cells in {grid.csv_path}")


def _report(table, out: Path, args: argparse.Namespace) -> None:
    from smoothcert.pal_sulam import risk

    low, high = table.interval()
    with open(out / "risk_summary.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["alpha", "beta", "n_errors", "n", "error", "ci_low", "ci_high"])
        for i, alpha in enumerate(table.alphas):
            for j, beta in enumerate(table.betas):
                if table.n[i, j] > 0:
                    writer.writerow([repr(float(alpha)), repr(float(beta)),
                                     int(table.n_errors[i, j]), int(table.n[i, j]),
                                     repr(float(table.error[i, j])), repr(float(low[i, j])),
                                     repr(float(high[i, j]))])
    best = risk.best_alphas(table, args.window, args.order)
    with open(out / "alpha_star.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["beta", "raw_alpha", "raw_error", "smoothed_alpha", "smoothed_error"])
        for b in best:
            writer.writerow([b.beta, b.raw_alpha, b.raw_error,
                             "" if b.smoothed_alpha is None else b.smoothed_alpha,
                             "" if b.smoothed_error is None else b.smoothed_error])
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    from smoothcert.plots.risk import risk_curves_figure, risk_heatmap_figure

    for stem, fig in (("risk_curves", risk_curves_figure(table, args.window, args.order)),
                      ("risk_heatmap", risk_heatmap_figure(table))):
        for fmt in formats:
            fig.savefig(out / f"{stem}.{fmt}", dpi=150)
    print("beta   alpha*(raw)  error    alpha*(smoothed)  error")
    for b in best:
        smoothed = ("        -" if b.smoothed_alpha is None
                    else f"{b.smoothed_alpha:9g}  {b.smoothed_error:.4f}")
        print(f"{b.beta:4g}   {b.raw_alpha:9g}  {b.raw_error:.4f}   {smoothed}")
