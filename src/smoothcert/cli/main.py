"""``smoothcert`` entry point.

Every module in ``smoothcert.cli`` (other than this one and names starting with ``_``) is a
subcommand: it defines ``register(subparsers)``, which adds its parser and sets ``func`` (a
callable taking the parsed namespace and returning an exit code) as a default. A subcommand may
also set ``validate`` (the same namespace; raises ValueError), the checks that need no model or
data: ``smoothcert sweep`` runs them on every job before anything runs.

Building the parser imports no torch, scipy, numpy or matplotlib (``smoothcert --help`` and
``smoothcert CMD --help`` answer at once): subcommand modules import the library inside their
functions, and the registries' names come from ``smoothcert.cli._catalog``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from smoothcert._version import __version__
from smoothcert.cli._noise_args import NOISE_MODULE_FLAG, import_noise_modules

__all__ = ["main", "build_parser", "parse_command", "UsageError", "Parser"]


class UsageError(ValueError):
    """A command line argparse refuses; ``parser`` is the (sub)parser that refused it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse without prefix matching of long options (``--epoch`` is not ``--epochs``) and
    with errors raised as ``UsageError`` (``main`` prints them and exits with status 2)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(self, message)


def _subcommands() -> list[str]:
    from smoothcert.cli import __path__ as cli_path

    return sorted(m.name for m in pkgutil.iter_modules(cli_path)
                  if m.name != "main" and not m.name.startswith("_"))


def _command_help(name: str) -> str:
    """The ``help=`` of ``add_parser("name", ...)`` in the command's module, read from its source
    (so ``smoothcert --help`` imports no command module)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_parser"
                and node.args and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == name):
            for keyword in node.keywords:
                if keyword.arg == "help":
                    try:
                        return str(ast.literal_eval(keyword.value))
                    except ValueError:
                        return ""
    return ""


def build_parser(command: str | None = None) -> Parser:
    """The ``smoothcert`` parser. With a ``command``, only that command's module is imported
    and the others are listed by name and help (what ``main`` does); without, every command is
    complete."""
    parser = Parser(
        prog="smoothcert",
        description="Certified robustness by randomized smoothing with noise of all shapes "
                    "and sizes.",
    )
    parser.add_argument("--version", action="version", version=f"smoothcert {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug); also after the command")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    names = _subcommands()
    for name in names:
        if command is None or name == command:
            importlib.import_module(f"{__package__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=_command_help(name))
    _add_verbose(sub)
    return parser


def _add_verbose(sub: argparse._SubParsersAction) -> None:
    """-v after the command too (`smoothcert certify ... -v`, `smoothcert plot radius ... -v`),
    counted with the one before it."""
    for subparser in sub.choices.values():
        subparser.add_argument("-v", "--verbose", action="count", default=0,
                               dest="verbose_after", help="more log output (-v info, -vv debug)")
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbose(action)


def _noise_modules(argv: Sequence[str]) -> list[str]:
    """The values of ``--noise-module`` in ``argv`` (their families must be registered before
    the parser, whose choices and shape flags come from the registry, is built)."""
    modules = []
    for i, item in enumerate(argv):
        if item == NOISE_MODULE_FLAG and i + 1 < len(argv):
            modules.append(argv[i + 1])
        elif item.startswith(NOISE_MODULE_FLAG + "="):
            modules.append(item.split("=", 1)[1])
    return modules


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a full command line (``["certify", "--checkpoint", ...]``) as ``main`` does and run
    the command's ``validate`` if it has one; raises UsageError or ValueError, touches no
    file."""
    import_noise_modules(_noise_modules(argv))
    args = build_parser(_command(argv)).parse_args(list(argv))
    validate = getattr(args, "validate", None)
    if validate is not None:
        validate(args)
    return args


def _command(argv: Sequence[str]) -> str:
    """The command of a command line: its first word that is not an option (the main parser's
    options take no values)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _usage_error(exc: UsageError) -> None:
    exc.parser.print_usage(sys.stderr)
    print(f"{exc.parser.prog}: error: {exc.message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    try:
        import_noise_modules(_noise_modules(argv))
        parser = build_parser(command)
        args = parser.parse_args(argv)
    except UsageError as exc:
        _usage_error(exc)
        raise SystemExit(2) from None
    except ValueError as exc:
        print(f"smoothcert {command or ''}: error: {exc}".replace(" :", ":"), file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    verbose = args.verbose + getattr(args, "verbose_after", 0)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        validate = getattr(args, "validate", None)
        if validate is not None:
            validate(args)  # every check that needs no model or data, before any file
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError) as exc:
        # bad input: a one-line message naming the value, not a traceback
        message = str(exc) or type(exc).__name__
        print(f"smoothcert {args.command}: error: {message}", file=sys.stderr)
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
