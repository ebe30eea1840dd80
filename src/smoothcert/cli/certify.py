"""``smoothcert certify``: certify every skip-th test example, one TSV row per example ([CRK19]
CERTIFY with the radii of [YDH+20])."""

from __future__ import annotations

import argparse
import math
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

#: certification modes (as ``smoothcert.certify.classifier.CERTIFY_MODES``)
MODES = ("fixed", "adaptive")
#: Clopper-Pearson conventions (as ``smoothcert.stats.BOUNDS``)
BOUNDS = ("one-sided", "two-sided")
NORMS = ("l1", "l2", "linf")


def _norms(text: str) -> list[str]:
    values = [v.strip().lower() for v in text.split(",")]
    bad = [v for v in values if v not in NORMS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown norm(s) {', '.join(map(repr, bad))}; choose from {', '.join(NORMS)}")
    return values


def _radii(text: str) -> tuple[str | None, list[float]]:
    """One --radii value: ``0.25,0.5`` (every norm) or ``l1=0.25,0.5`` (that norm only)."""
    norm, sep, values = text.partition("=")
    if sep:
        norm = norm.strip().lower()
        if norm not in NORMS:
            raise argparse.ArgumentTypeError(
                f"unknown norm {norm!r} in --radii {text!r}; choose from {', '.join(NORMS)}")
    else:
        norm, values = None, text
    try:
        radii = [float(v) for v in values.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"radii must be comma-separated numbers, e.g. 0.25,0.5 or l1=0.25,0.5; got "
            f"{text!r}") from None
    if not all(v > 0 and math.isfinite(v) for v in radii):
        raise argparse.ArgumentTypeError(f"radii must be finite numbers > 0, got {text!r}")
    return norm, radii


def _goal_radii(given: list[tuple[str | None, list[float]]] | None
                ) -> list[float] | dict[str, list[float]] | None:
    """The --radii values as the library takes them: one list for every norm, or a list per
    norm; ValueError for a mix of the two or a norm given twice."""
    if not given:
        return None
    plain = [radii for norm, radii in given if norm is None]
    if plain:
        if len(given) > 1:
            raise ValueError("--radii takes either one list for every norm (e.g. 0.25,0.5) or "
                             "one list per norm (e.g. --radii l1=0.5,1 --radii linf=0.001), "
                             "not both and not two plain lists")
        return plain[0]
    per_norm: dict[str, list[float]] = {}
    for norm, radii in given:
        assert norm is not None
        if norm in per_norm:
            raise ValueError(f"--radii gives {norm} twice; give each norm's radii once")
        per_norm[norm] = radii
    return per_norm


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="certified radii of the smoothed classifier on a dataset",
        description="For each selected example: select the top class from n0 noisy samples, "
                    "bound its probability from below with n fresh samples (Clopper-Pearson at "
                    "level alpha), and certify the noise's radius in each requested norm; "
                    "abstain when the bound is <= 1/2. With probability >= 1 - alpha per "
                    "example, a certified prediction is robust within its radii. A "
                    "deterministic noise (e.g. dssn) enumerates its transformations instead: "
                    "no --n0, --n or --alpha.",
    )
    add_run_arguments(parser)
    add_sample_arguments(parser, n0=True)
    parser.add_argument("--norms", type=_norms, default=None,
                        help="comma-separated norms to certify: l1, l2, linf (default: the "
                             "norms the noise certifies directly)")
    parser.add_argument("--convert", action="store_true",
                        help="certify norms the noise does not certify directly by the lp "
                             "conversion (valid, loose; recorded in the run record)")
    parser.add_argument("--bound", choices=BOUNDS, default="one-sided",
                        help="Clopper-Pearson convention: one-sided at alpha (default), or "
                             "two-sided at alpha, i.e. one-sided at alpha/2 (the code of Yang "
                             "et al. 2020)")
    parser.add_argument("--mode", choices=MODES, default="fixed",
                        help="fixed: n estimation samples per example ([CRK19]); adaptive: "
                             "pre-declared stages up to n, stopping once the goal "
                             "(--radii and/or --tolerance) is decided, with the same guarantee "
                             "(the samples column records what each example used)")
    parser.add_argument("--radii", type=_radii, action="append", default=None,
                        help="adaptive goal: comma-separated radii to certify or give up, in "
                             "every norm (e.g. 0.25,0.5), or in one norm (l1=0.5,1; repeat the "
                             "flag for each norm, e.g. --radii l2=0.5 --radii linf=0.002)")
    parser.add_argument("--tolerance", default=None,
                        help="adaptive goal: stop when the radius is within this of the best "
                             "n samples could give, absolute (0.01) or relative (1%%)")
    parser.add_argument("--format", choices=("smoothcert", "cohen"), default="smoothcert",
                        dest="results_format",
                        help="results file: smoothcert's columns (default), or Cohen et al.'s "
                             "six (idx label predict radius correct time; one norm only)")
    parser.set_defaults(func=run, validate=validate)


def validate(args: argparse.Namespace) -> None:
    """Every check that needs no model, data or file (``main`` runs it before ``run``)."""
    check_run_arguments(args)
    check_sample_arguments(args)
    radii = _goal_radii(args.radii)
    if isinstance(radii, dict) and args.norms is not None:
        missing = sorted(set(radii) - set(args.norms))
        if missing:
            raise ValueError(f"--radii gives {', '.join(missing)}, which --norms "
                             f"({','.join(args.norms)}) does not certify")
    if args.mode == "adaptive":
        from smoothcert.certify.adaptive import parse_tolerance

        if args.radii is None and args.tolerance is None:
            raise ValueError("--mode adaptive needs a goal: --radii and/or --tolerance")
        if args.tolerance is not None:
            parse_tolerance(args.tolerance)
    elif args.radii is not None or args.tolerance is not None:
        raise ValueError("--radii and --tolerance are goals of --mode adaptive")
    if args.results_format == "cohen" and args.norms is not None and len(args.norms) != 1:
        raise ValueError(f"--format cohen writes one radius column; give one norm with "
                         f"--norms, not {','.join(args.norms)}")


def run(args: argparse.Namespace) -> int:
    from smoothcert.certify.dataset import certify_dataset

    prepared = prepare(args, "certify")
    noise = prepared.smoothed.noise
    norms = args.norms if args.norms is not None else [n.value for n in noise.direct_norms]

    def work(path: Path, shard: Any) -> Any:
        return certify_dataset(
            prepared.smoothed, prepared.dataset, path, n0=args.n0, n=args.n, alpha=args.alpha,
            norms=norms, convert=args.convert, bound=args.bound, skip=args.skip,
            max_examples=args.max_examples, seed=args.seed, device=prepared.device,
            configuration=prepared.configuration, settings=prepared.settings,
            progress=prepared.progress, shard=shard, mode=args.mode,
            radii=_goal_radii(args.radii), tolerance=args.tolerance,
            results_format=args.results_format)

    return run_and_report("certified", args, prepared, work)
