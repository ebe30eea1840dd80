"""``smoothcert`` entry point.

Every module in ``smoothcert.cli`` (other than this one and names starting with ``_``) is a
subcommand: it defines ``register(subparsers)``, which adds its parser and sets ``func`` (a
callable taking the parsed namespace and returning an exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from smoothcert._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smoothcert",
        description="Certified robustness by randomized smoothing with noise of all shapes "
                    "and sizes.",
    )
    parser.add_argument("--version", action="version", version=f"smoothcert {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from smoothcert.cli import __path__ as cli_path

    for module in sorted(pkgutil.iter_modules(cli_path), key=lambda m: m.name):
        if module.name == "main" or module.name.startswith("_"):
            continue
        importlib.import_module(f"{__package__}.{module.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        # bad input: a one-line message naming the value, not a traceback
        print(f"smoothcert {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"smoothcert {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `smoothcert analyze ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
