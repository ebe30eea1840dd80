"""``smoothcert certify``: certify every skip-th test example, one TSV row per example ([CRK19]
CERTIFY with the radii of [YDH+20])."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from smoothcert.certify.adaptive import parse_tolerance
from smoothcert.certify.classifier import CERTIFY_MODES
from smoothcert.cli._run_args import add_run_arguments, prepare, run_and_report
from smoothcert.norms import Norm
from smoothcert.stats import BOUNDS, check_alpha, check_sample_count


def _norms(text: str) -> list[Norm]:
    try:
        return [Norm.parse(v) for v in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _radii(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"radii must be comma-separated numbers, e.g. 0.25,0.5; got {text!r}") from None
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"radii must be finite numbers > 0, got {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="certified radii of the smoothed classifier on a dataset",
        description="For each selected example: select the top class from n0 noisy samples, "
                    "bound its probability from below with n fresh samples (Clopper-Pearson at "
                    "level alpha), and certify the noise's radius in each requested norm; "
                    "abstain when the bound is <= 1/2. With probability >= 1 - alpha per "
                    "example, a certified prediction is robust within its radii.",
    )
    add_run_arguments(parser)
    parser.add_argument("--n0", type=int, default=100,
                        help="samples to select the top class (default 100)")
    parser.add_argument("--n", type=int, default=100_000,
                        help="samples to estimate its probability (default 100000)")
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="failure probability per example (default 0.001)")
    parser.add_argument("--norms", type=_norms, default=[Norm.L2],
                        help="comma-separated norms to certify: l1, l2, linf (default l2)")
    parser.add_argument("--convert", action="store_true",
                        help="certify norms the noise does not certify directly by the lp "
                             "conversion (valid, loose; recorded in the run record)")
    parser.add_argument("--bound", choices=sorted(BOUNDS), default="one-sided",
                        help="Clopper-Pearson convention: one-sided at alpha (default), or "
                             "two-sided at alpha, i.e. one-sided at alpha/2 (the code of Yang "
                             "et al. 2020)")
    parser.add_argument("--mode", choices=CERTIFY_MODES, default="fixed",
                        help="fixed: n estimation samples per example ([CRK19]); adaptive: "
                             "pre-declared stages up to n, stopping once the goal "
                             "(--radii and/or --tolerance) is decided, with the same guarantee "
                             "(the samples column records what each example used)")
    parser.add_argument("--radii", type=_radii, default=None,
                        help="adaptive goal: comma-separated radii to certify or give up, in "
                             "every norm (e.g. 0.25,0.5)")
    parser.add_argument("--tolerance", default=None,
                        help="adaptive goal: stop when the radius is within this of the best "
                             "n samples could give, absolute (0.01) or relative (1%%)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from smoothcert.certify.dataset import RunSummary, certify_dataset
    from smoothcert.runs.shards import Shard

    # the cheap checks first, before loading anything
    check_sample_count("n0", args.n0)
    check_sample_count("n", args.n)
    check_alpha(args.alpha)
    if args.mode == "adaptive":
        if args.radii is None and args.tolerance is None:
            raise ValueError("--mode adaptive needs a goal: --radii and/or --tolerance")
        if args.tolerance is not None:
            parse_tolerance(args.tolerance)
    elif args.radii is not None or args.tolerance is not None:
        raise ValueError("--radii and --tolerance are goals of --mode adaptive")
    prepared = prepare(args)

    def work(path: Path, shard: Shard | None) -> RunSummary:
        return certify_dataset(
            prepared.smoothed, prepared.dataset, path, n0=args.n0, n=args.n, alpha=args.alpha,
            norms=args.norms, convert=args.convert, bound=args.bound, skip=args.skip,
            max_examples=args.max_examples, seed=args.seed, device=prepared.device,
            configuration=prepared.configuration, settings=prepared.settings,
            progress=prepared.progress, shard=shard, mode=args.mode, radii=args.radii,
            tolerance=args.tolerance)

    return run_and_report("certified", args, prepared, work)
