"""``smoothcert merge``: merge the shard files of one run (``--shard I/N``) into one results file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge the shards of a run (--shard I/N) into one results file",
        description="Merge the results files of all shards of one certify or predict run "
                    "(out.shard0-of-N.tsv ... out.shardN-1-of-N.tsv, each with its .json run "
                    "record) into one file, rows sorted by idx: the file one process would have "
                    "written, except the seconds column. Refuses shards of different "
                    "configurations, missing or repeated shards, and missing, repeated or "
                    "foreign rows (resume an unfinished shard by running its command again).",
    )
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD",
                        help="the shard results files, e.g. results.shard*-of-8.tsv")
    parser.add_argument("--out", required=True, type=Path,
                        help="merged results file (TSV); its run record goes beside it as .json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from smoothcert.runs.shards import merge_shards

    summary = merge_shards(args.shards, args.out)
    print(f"merged {summary.rows} rows from {summary.shards} shards -> {summary.path}")
    return 0
