"""Command-line value types shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["int_list", "add_classes_argument"]


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated integers, e.g. a class subset ``0,1``."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None


def add_classes_argument(parser: argparse.ArgumentParser, context: str) -> None:
    """``--classes``: keep only these classes, relabelled 0..k-1 in the given order;
    ``context`` ends the help text (e.g. "as the model was trained")."""
    parser.add_argument("--classes", default=None, type=int_list,
                        help="keep only these classes, relabelled 0..k-1 in the given order "
                             f"(e.g. 4,9 for a binary task), {context}")
