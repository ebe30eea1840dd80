"""``smoothcert sweep``: run a grid of training and certification jobs from a TOML file."""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid of train and certify jobs described in a TOML file",
        description="Expand a sweep file (see experiments/README.md for the schema) into "
                    "`smoothcert train` and `smoothcert certify` jobs and run them in order, "
                    "skipping jobs whose outputs are complete (a checkpoint with all its epochs; "
                    "a results TSV with all its rows and its run record).",
    )
    parser.add_argument("config", type=Path, metavar="CONFIG.toml", help="the sweep file")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the command line of every job that would run, one per line, "
                             "and run nothing")
    parser.add_argument("--only", action="append", default=None, metavar="PATTERN",
                        help="run only jobs whose name matches this shell-style pattern (jobs "
                             "are named FOLDER/train and FOLDER/certify...; e.g. 'uniform-*'); "
                             "the training job a certification needs comes along; repeatable")
    parser.add_argument("--all", dest="include_complete", action="store_true",
                        help="with --dry-run, also list jobs whose outputs are complete")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failed job, go on with the jobs that do not depend on it")
    parser.set_defaults(func=run)


def _known_flags(command: str) -> dict[str, argparse.Action]:
    from smoothcert.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: action for flag, action in sub.choices[command]._option_string_actions.items()
            if flag.startswith("--")}


def check_job(job: Any) -> None:
    """Parse and check a job's command as ``smoothcert`` would before running it: an unknown
    option is named (with the closest valid ones), bad values are refused. Touches no file."""
    from smoothcert.cli.main import UsageError, parse_command

    command = job.args[0]
    known = _known_flags(command)
    for key, value in job.options.items():
        flag = "--" + str(key).replace("_", "-")
        if flag not in known:
            close = difflib.get_close_matches(flag, list(known), n=3)
            hint = f"; did you mean {', '.join(f[2:] for f in close)}?" if close else ""
            raise ValueError(f"unknown option {key!r} for {command}{hint}")
        if isinstance(value, Mapping) and not isinstance(known[flag], argparse._AppendAction):
            repeatable = sorted(f[2:].replace("-", "_") for f, a in known.items()
                                if isinstance(a, argparse._AppendAction))
            raise ValueError(f"option {key!r} of {command} takes one value, got the table "
                             f"{dict(value)!r}; a table gives a repeatable option once per entry "
                             f"(repeatable: {', '.join(repeatable)})")
    try:
        parse_command(job.args)
    except UsageError as exc:
        raise ValueError(exc.message) from None


def check_jobs(jobs: Sequence[Any]) -> None:
    """``check_job`` on every job; one ValueError listing every job that fails."""
    problems = []
    for job in jobs:
        try:
            check_job(job)
        except ValueError as exc:
            problems.append(f"  {job.name}: {exc}")
    if problems:
        raise ValueError(f"{len(problems)} of {len(jobs)} jobs are not valid:\n"
                         + "\n".join(problems))


def run(args: argparse.Namespace) -> int:
    from smoothcert.runs.sweep import load_sweep, run_jobs, select_jobs

    sweep = load_sweep(args.config)
    jobs = select_jobs(sweep.jobs, args.only)
    if args.only and not jobs:
        raise ValueError(f"no job of {str(args.config)!r} matches {args.only}; job names: "
                         f"{', '.join(job.name for job in sweep.jobs)}")
    check_jobs(jobs)  # as the real run would, before anything runs
    if args.dry_run:
        for job in jobs:
            if args.include_complete or not job.is_complete():
                print(job.command_line())
        return 0
    status = run_jobs(jobs, keep_going=args.keep_going)
    counts = {key: sum(1 for v in status.values() if v == key)
              for key in ("done", "skipped", "failed", "blocked")}
    not_reached = len(jobs) - len(status)
    print(f"sweep {args.config}: {counts['done']} run, {counts['skipped']} already complete, "
          f"{counts['failed']} failed, {counts['blocked']} blocked"
          + (f", {not_reached} not started" if not_reached else ""), file=sys.stderr)
    return 1 if counts["failed"] or counts["blocked"] else 0
