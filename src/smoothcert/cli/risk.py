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
from pathlib import Path

from smoothcert._values import parse_values
from smoothcert.cli._catalog import noise_families
from smoothcert.cli._values import add_classes_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    noises = list(noise_families())
    p = subparsers.add_parser(
        "risk", help="smoothed risk (majority-vote error) over training noise x smoothing noise",
        description="Delta-hat_{alpha,beta}: the error rate of the majority vote of N noisy "
                    "predictions (no abstention), for every checkpoint (alpha = its training "
                    "noise sigma) and every smoothing noise sigma beta (--smooth-sigmas). The "
                    "CSV columns keep the paper's names alpha and beta.")
    p.add_argument("--checkpoints", nargs="+", default=[],
                   help="checkpoint files: paths, comma-separated lists or quoted glob patterns; "
                        "each one's training noise sigma is its alpha")
    p.add_argument("--smooth-sigmas", dest="betas", default="0,0.1,...,0.9",
                   help="smoothing noise levels beta (default 0,0.1,...,0.9); 0 = no noise")
    p.add_argument("--betas", dest="betas", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=100, help="noise draws per input (default 100)")
    p.add_argument("--noise", default="gaussian", choices=noises, metavar="FAMILY",
                   help=f"smoothing noise family (default gaussian): {', '.join(noises)}")
    p.add_argument("--noise-module", action="append", default=[], metavar="MODULE",
                   dest="noise_modules",
                   help="import this module first: it registers more noise families "
                        "(repeatable)")
    p.add_argument("--dataset", default="mnist", help="dataset name (default mnist)")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="dataset split (default test)")
    p.add_argument("--data-dir", dest="root", default=None,
                   help="data directory (default $SMOOTHCERT_DATA_DIR)")
    p.add_argument("--root", dest="root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_classes_argument(p, "as the models were trained")
    p.add_argument("--max", dest="max_examples", type=int, default=None,
                   help="evaluate only the first N inputs of the split (default all)")
    p.add_argument("--max-examples", dest="max_examples", type=int, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default 0)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="noisy inputs per forward pass (default 1000, or 250 on a CPU whose "
                        "allocator is not glibc; see bench/README.md)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--channels-last", action="store_true",
                   help="run convolutional models in the channels-last memory format (often "
                        "faster on CPUs; the votes are the same up to float rounding)")
    p.add_argument("--no-progress", action="store_true", help="no progress report on stderr")
    p.add_argument("--window", type=int, default=15, help="Savitzky-Golay window (default 15)")
    p.add_argument("--order", type=int, default=3, help="Savitzky-Golay order (default 3)")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite the summaries and figures from --out/risk.csv")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default png,pdf)")
    p.add_argument("--out", required=True, help="output folder of the grid")
    p.set_defaults(func=run, validate=validate)


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no model, data or file."""
    parse_values(args.betas, "--smooth-sigmas")
    for name, value, minimum in (("--n", args.n, 1), ("--seed", args.seed, 0),
                                 ("--max", args.max_examples, 1),
                                 ("--batch-size", args.batch_size, 1)):
        if value is not None and value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if args.window < 1 or args.order < 0 or args.order >= args.window:
        raise ValueError(f"--window must be >= 1 and --order in [0, window), got window "
                         f"{args.window}, order {args.order}")
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in _FORMATS]
    if bad or not formats:
        raise ValueError(f"--formats {args.formats!r}: choose from {', '.join(_FORMATS)}")


#: figure formats matplotlib writes
_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")


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
    from smoothcert.cli._allocator import default_batch_size, keep_freed_memory
    from smoothcert.cli._progress import ProgressReporter
    from smoothcert.data import get_dataset
    from smoothcert.models.checkpoint import load_checkpoint
    from smoothcert.noises import get_noise
    from smoothcert.pal_sulam import risk

    keep_freed_memory()
    betas = parse_values(args.betas, "--smooth-sigmas")
    paths = expand_checkpoints(args.checkpoints)
    device = torch.device(args.device)
    batch_size = args.batch_size or default_batch_size(device.type)
    kwargs = {"root": args.root} if args.root else {}
    if args.classes is not None:
        kwargs["classes"] = list(args.classes)
    dataset = get_dataset(args.dataset, split=args.split, **kwargs)
    count = len(dataset) if args.max_examples is None else min(args.max_examples, len(dataset))

    # every checkpoint is checked before the grid's files are created
    alphas: dict[float, Path] = {}
    digests: dict[float, str] = {}
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
        digests[alpha] = f"sha256:{file_sha256(path)}"
        del ckpt  # models are loaded again one at a time, only for missing cells
    grid = risk.RiskGrid(out, {
        "dataset": args.dataset, "split": args.split, "examples": count, "n": args.n,
        "noise": args.noise, "seed": args.seed, "vote": "majority, ties to the lowest class",
        **({} if args.classes is None else {"classes": list(args.classes)})})
    for alpha, path in alphas.items():
        grid.bind_checkpoint(alpha, digests[alpha], str(path))

    missing = len(grid.missing(alphas, betas))
    reporter = ProgressReporter("risk cells", "cell", enabled=not args.no_progress)
    reporter(0, missing)
    finished = 0

    def load(path: Path):
        ckpt = load_checkpoint(path, map_location=device)
        if args.channels_last:
            ckpt.model.to(memory_format=torch.channels_last)
        return ckpt

    def evaluate(ckpt, beta: float):
        nonlocal finished
        dim = math.prod(ckpt.input_shape)
        noise = None if beta == 0 else get_noise(args.noise, dim=dim, sigma=beta)
        estimate = risk.smoothed_risk(ckpt.model, dataset, noise=noise, n=args.n,
                                      num_classes=ckpt.num_classes, seed=args.seed,
                                      indices=range(count), device=device,
                                      batch_size=batch_size)
        finished += 1
        reporter(finished, missing)
        return estimate

    loaders = {a: functools.partial(load, p) for a, p in alphas.items()}
    try:
        done = risk.run_risk_grid(grid, loaders, betas, evaluate)
    finally:
        reporter.close()
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
