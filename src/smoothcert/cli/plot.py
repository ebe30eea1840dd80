"""``smoothcert plot``: figures as PNG or PDF.

- ``plot certified FILE...``: certified accuracy against radius per run, and the envelope.
- ``plot radius --noises uniform,gaussian,laplace``: certified radius against p_lower at equal
  sigma ([YDH+20]'s comparison of distributions).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from smoothcert.analysis import common_inputs, group_by_noise, read_results
from smoothcert.cli.analyze import common_norm, norm_argument, parse_labels
from smoothcert.norms import Norm

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="figures: certified accuracy, radius vs p_lower",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    certified = kinds.add_parser(
        "certified", help="certified accuracy vs radius for certification files, with envelope")
    certified.add_argument("files", nargs="+", metavar="FILE", type=Path,
                           help="certification TSV files (smoothcert's or Cohen et al.'s)")
    certified.add_argument("--norm", type=norm_argument, default=None,
                           help="l1, l2 or linf (default: the one norm all files have)")
    certified.add_argument("--labels", default=None,
                           help="comma-separated legend names, one per file")
    certified.add_argument("--max-radius", type=float, default=None,
                           help="right end of the radius axis (default: past the largest radius)")
    certified.add_argument("--no-envelope", action="store_true", help="omit the envelope")
    certified.add_argument("--by-noise", action="store_true",
                           help="one curve per noise family (from the run records): the "
                                "envelope of that family's runs")
    certified.add_argument("--common", action="store_true",
                           help="only the inputs (idx) that every file has")
    certified.add_argument("--title", default=None)
    certified.add_argument("--out", type=Path, required=True, help="output file, .png or .pdf")
    certified.set_defaults(func=run_certified)

    radius = kinds.add_parser(
        "radius", help="certified radius vs p_lower for noise families at equal sigma")
    radius.add_argument("--noises", required=True,
                        help="comma-separated noise names, with shape parameters in parentheses "
                             "where needed, e.g. 'uniform,gaussian,laplace' or "
                             "'exp_inf(k=1,j=0),uniform'")
    radius.add_argument("--sigma", type=float, default=1.0,
                        help="common sigma (RMS per coordinate) of all noises (default 1)")
    radius.add_argument("--dim", type=int, required=True,
                        help="input dimension, e.g. 3072 for CIFAR-10")
    radius.add_argument("--norm", type=Norm.parse, required=True, help="l1, l2 or linf")
    radius.add_argument("--p-max", type=float, default=0.999,
                        help="right end of the p_lower axis (default 0.999)")
    radius.add_argument("--no-convert", action="store_true",
                        help="refuse noises that do not certify the norm directly (by default "
                             "they are drawn with the lp conversion, marked in the legend)")
    radius.add_argument("--title", default=None)
    radius.add_argument("--out", type=Path, required=True, help="output file, .png or .pdf")
    radius.set_defaults(func=run_radius)


_SPEC = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*(?:\((.*)\))?\s*$")


def split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: ``'a(k=1,j=0),b'`` -> ``['a(k=1,j=0)', 'b']``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced parentheses in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError(f"unbalanced parentheses in {text!r}")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_noise_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'exp_inf(k=1, j=0)'`` -> ``('exp_inf', {'k': 1, 'j': 0})``."""
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"cannot read noise {spec!r}; write name or name(param=value, ...)")
    name, inner = match.group(1), match.group(2)
    params: dict[str, Any] = {}
    for item in (inner or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"noise parameter {item.strip()!r} in {spec!r} must be name=value")
        params[key.strip()] = _value(value.strip())
    return name, params


def run_certified(args: argparse.Namespace) -> int:
    from smoothcert.plots.certified import (
        new_figure,
        plot_certified_accuracy,
        plot_envelopes,
        save_figure,
    )

    labels = parse_labels(args.labels, args.files)
    results = [read_results(path, label=label)
               for path, label in zip(args.files, labels, strict=True)]
    if args.common:
        results = common_inputs(results)
    norm = args.norm if args.norm is not None else common_norm(results)
    figure, ax = new_figure()
    if args.by_noise:
        plot_envelopes(ax, group_by_noise(results), norm, max_radius=args.max_radius,
                       title=args.title)
    else:
        plot_certified_accuracy(ax, results, norm, max_radius=args.max_radius,
                                show_envelope=not args.no_envelope, title=args.title)
    path = save_figure(figure, args.out)
    logger.info("wrote %s", path)
    return 0


def run_radius(args: argparse.Namespace) -> int:
    from smoothcert.noises import get_noise
    from smoothcert.plots.certified import new_figure, plot_radius_vs_p_lower, save_figure

    noises = []
    for spec in split_top_level(args.noises):
        name, params = parse_noise_spec(spec)
        noises.append(get_noise(name, dim=args.dim, sigma=args.sigma, **params))
    if not noises:
        raise ValueError(f"--noises names no noise: {args.noises!r}")
    figure, ax = new_figure()
    plot_radius_vs_p_lower(ax, noises, args.norm, p_max=args.p_max,
                           convert=not args.no_convert, title=args.title)
    path = save_figure(figure, args.out)
    logger.info("wrote %s", path)
    return 0
