"""``smoothcert analyze``: certified accuracy at radii for certification files, their envelope
and the average certified radius; or a file converted to Cohen et al.'s format."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smoothcert.analysis import (
    TABLE_FORMATS,
    CertificationResults,
    accuracy_curve,
    average_certified_radius,
    common_inputs,
    default_radii,
    envelope,
    format_accuracy_table,
    group_by_noise,
    parse_radii,
    read_results,
)
from smoothcert.norms import Norm
from smoothcert.runs.atomic import write_text_atomic
from smoothcert.runs.cohen import table_to_cohen
from smoothcert.runs.reading import read_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="certified accuracy at radii, envelope over runs, ACR",
        description="Certified accuracy of each certification file (smoothcert's TSV or Cohen et "
                    "al.'s six-column format) at the given radii, the envelope (the best run at "
                    "each radius) and the average certified radius. A point counts as certified "
                    "at radius r if its prediction is correct and its radius is >= r; "
                    "abstentions count as wrong. Percentages are rounded down.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path,
                        help="certification TSV files")
    parser.add_argument("--norm", default=None, type=norm_argument,
                        help="norm of the radii: l1, l2 or linf (default: the one norm all "
                             "files have radii for)")
    parser.add_argument("--radii", type=_radii_argument, default=None,
                        help="radii as a list '0,0.25,0.5' or a range '0:4:0.5' (stop included); "
                             "default: the papers' radii for the norm (l1 0:4:0.5, l2 0:1:0.25, "
                             "linf 0,1/255,2/255,4/255,8/255)")
    parser.add_argument("--format", dest="fmt", choices=TABLE_FORMATS, default=None,
                        help="output format (default: by the suffix of --out, "
                             f"{_SUFFIX_HELP}; table on standard output); csv has one row per "
                             "radius and accuracies as fractions")
    parser.add_argument("--labels", default=None,
                        help="comma-separated names for the files, in order (default: file "
                             "names without suffix)")
    parser.add_argument("--digits", type=int, default=1,
                        help="decimals of the percentages, rounded down (default 1)")
    parser.add_argument("--no-envelope", action="store_true", help="omit the envelope")
    parser.add_argument("--by-noise", action="store_true",
                        help="one column per noise family (read from the run records): the "
                             "envelope of that family's runs, e.g. over sigma")
    parser.add_argument("--common", action="store_true",
                        help="only the inputs (idx) that every file has, e.g. an exact run on "
                             "all test images beside a Monte Carlo run on every 10th")
    parser.add_argument("--out", type=Path, default=None,
                        help="write to this file (its folder must exist) instead of standard "
                             "output")
    parser.add_argument("--export", choices=("cohen",), default=None,
                        help="instead of a table, convert the one FILE to Cohen et al.'s "
                             "six-column format (idx label predict radius correct time), with "
                             "its radii in --norm")
    parser.set_defaults(func=run)


#: table formats by the suffix of --out
SUFFIX_FORMATS = {".md": "markdown", ".csv": "csv", ".tex": "latex", ".txt": "table"}
_SUFFIX_HELP = ", ".join(f"{suffix} {fmt}" for suffix, fmt in SUFFIX_FORMATS.items())


def norm_argument(text: str) -> Norm:
    """``--norm``: a norm, or an argparse error naming the value and the norms."""
    try:
        return Norm.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _radii_argument(text: str) -> np.ndarray:
    try:
        return parse_radii(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_output(out: Path | None) -> None:
    """Refuse an output file whose folder does not exist (nothing is created or written)."""
    if out is not None and not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of --out {str(out)!r} does not exist "
                                f"({str(out.parent)!r}); create it first")
    if out is not None and out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a folder; give a file name")


def table_format(fmt: str | None, out: Path | None) -> str:
    """--format if given, else the format the suffix of --out names (table on stdout)."""
    if fmt is not None:
        return fmt
    if out is None:
        return "table"
    suffix = out.suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise ValueError(f"cannot tell the table format from the suffix {suffix!r} of --out "
                         f"{str(out)!r}; use {', '.join(SUFFIX_FORMATS)} ({_SUFFIX_HELP}) or "
                         f"give --format")
    return SUFFIX_FORMATS[suffix]


def default_labels(paths: Sequence[Path]) -> list[str]:
    """Short distinct names for ``paths``: the file stem, with as many parent folders as it takes
    to tell equal stems apart (``a/certify.tsv``, ``b/certify.tsv`` -> ``a/certify``, ...)."""
    resolved = [p.resolve() for p in paths]
    depth = 0
    while True:
        labels = ["/".join([*p.parent.parts[len(p.parent.parts) - depth:], p.stem]) if depth
                  else p.stem for p in resolved]
        if len(set(labels)) == len(labels) or all(depth >= len(p.parent.parts)
                                                  for p in resolved):
            return labels
        depth += 1


def parse_labels(text: str | None, paths: Sequence[Path]) -> list[str]:
    if text is None:
        return default_labels(paths)
    labels = [label.strip() for label in text.split(",")]
    if len(labels) != len(paths) or not all(labels):
        raise ValueError(
            f"--labels needs {len(paths)} non-empty comma-separated names, one per file, "
            f"got {text!r}"
        )
    return labels


def common_norm(results: Sequence[CertificationResults]) -> Norm:
    """The norm when all ``results`` have radii for exactly one common norm; else ValueError."""
    shared = set.intersection(*(set(r.norms) for r in results))
    if len(shared) != 1:
        have = ", ".join(sorted(n.value for n in shared)) or "none"
        raise ValueError(f"choose a norm with --norm; the files share radii for: {have}")
    return shared.pop()


def _emit(text: str, out: Path | None) -> None:
    if out is not None:
        write_text_atomic(out, text)
    else:
        sys.stdout.write(text)


def _export_cohen(args: argparse.Namespace) -> int:
    if len(args.files) != 1:
        raise ValueError(f"--export cohen converts one file, got {len(args.files)}")
    table = read_table(args.files[0])
    norm = args.norm if args.norm is not None else common_norm([read_results(args.files[0])])
    _emit(table_to_cohen(table, norm.value), args.out)
    return 0


def run(args: argparse.Namespace) -> int:
    check_output(args.out)
    if args.export == "cohen":
        return _export_cohen(args)
    fmt = table_format(args.fmt, args.out)
    labels = parse_labels(args.labels, args.files)
    results = [read_results(path, label=label)
               for path, label in zip(args.files, labels, strict=True)]
    if args.common:
        results = common_inputs(results)
    norm = args.norm if args.norm is not None else common_norm(results)
    radii = args.radii if args.radii is not None else default_radii(norm)
    if args.by_noise:
        groups = group_by_noise(results)
        curves = [envelope([accuracy_curve(r, radii, norm) for r in runs], label=name)
                  for name, runs in groups.items()]
        acr = None  # an envelope has no average certified radius of its own
    else:
        curves = [accuracy_curve(r, radii, norm) for r in results]
        acr = [average_certified_radius(r, norm) for r in results]
    text = format_accuracy_table(curves, fmt=fmt, acr=acr,
                                 include_envelope=not args.no_envelope, digits=args.digits)
    _emit(text, args.out)
    return 0
