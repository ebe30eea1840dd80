"""``smoothcert predict``: the smoothed classifier's prediction on every skip-th test example,
with a hypothesis test, one TSV row per example ([CRK19] PREDICT)."""

from __future__ import annotations

import argparse
from pathlib import Path

from smoothcert.cli._run_args import add_run_arguments, prepare, run_and_report
from smoothcert.stats import check_alpha, check_sample_count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predictions of the smoothed classifier on a dataset",
        description="For each selected example: classify n noisy samples and return the top "
                    "class unless a two-sided binomial test of the top two counts has p-value "
                    "> alpha (then abstain, -1). With probability >= 1 - alpha per example, a "
                    "returned class is the smoothed classifier's prediction.",
    )
    add_run_arguments(parser)
    parser.add_argument("--n", type=int, default=100_000,
                        help="noisy samples per example (default 100000)")
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="failure probability per example (default 0.001)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from smoothcert.certify.dataset import RunSummary, predict_dataset
    from smoothcert.runs.shards import Shard

    check_sample_count("n", args.n)
    check_alpha(args.alpha)
    prepared = prepare(args)

    def work(path: Path, shard: Shard | None) -> RunSummary:
        return predict_dataset(
            prepared.smoothed, prepared.dataset, path, n=args.n, alpha=args.alpha,
            skip=args.skip, max_examples=args.max_examples, seed=args.seed,
            device=prepared.device, configuration=prepared.configuration,
            settings=prepared.settings, progress=prepared.progress, shard=shard)

    return run_and_report("predicted", args, prepared, work)
