"""``smoothcert predict``: the smoothed classifier's prediction on every skip-th test example,
with a hypothesis test, one TSV row per example ([CRK19] PREDICT)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from smoothcert.cli._run_args import (
    add_run_arguments,
    add_sample_arguments,
    check_run_arguments,
    check_sample_arguments,
    prepare,
    run_and_report,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predictions of the smoothed classifier on a dataset",
        description="For each selected example: classify n noisy samples and return the top "
                    "class unless a two-sided binomial test of the top two counts has p-value "
                    "> alpha (then abstain, -1). With probability >= 1 - alpha per example, a "
                    "returned class is the smoothed classifier's prediction. A deterministic "
                    "noise enumerates its transformations instead: no --n or --alpha.",
    )
    add_run_arguments(parser)
    add_sample_arguments(parser, n0=False)
    parser.set_defaults(func=run, validate=validate)


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no model, data or file (``main`` runs it before ``run``)."""
    check_run_arguments(args)
    check_sample_arguments(args)


def run(args: argparse.Namespace) -> int:
    from smoothcert.certify.dataset import predict_dataset

    prepared = prepare(args, "predict")

    def work(path: Path, shard: Any) -> Any:
        return predict_dataset(
            prepared.smoothed, prepared.dataset, path, n=args.n, alpha=args.alpha,
            skip=args.skip, max_examples=args.max_examples, seed=args.seed,
            device=prepared.device, configuration=prepared.configuration,
            settings=prepared.settings, progress=prepared.progress, shard=shard)

    return run_and_report("predicted", args, prepared, work)
