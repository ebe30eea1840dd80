"""Splitting a certification run into shards, and merging the shards into one results file.

A run selects inputs ``0, skip, 2*skip, ...`` (at most ``max_examples``); shard ``I`` of ``N``
takes every N-th selected input starting with the I-th (round robin), so the shards are balanced
whatever the cost of an input grows with, and raising ``--max`` later only appends inputs to each
shard. Selection comes first and sharding second, so ``--skip``/``--max`` mean what they mean for
one process.

Each shard is an ordinary results file (``smoothcert.runs.results``) named by ``shard_path``
(``out.tsv`` -> ``out.shard0-of-2.tsv`` with its record ``out.shard0-of-2.json``) and resumes
on its own. Its record's configuration carries ``{"shard": {"index": I, "count": N}}``, and its
settings the number of inputs ``selected`` before sharding, which is all ``merge_shards`` needs
to know which rows every shard must hold.

Because every input draws its noise from a generator seeded by (seed, idx) alone
(``smoothcert.certify.dataset.input_generator``), a row does not depend on the shard that computed
it: the merged file holds, byte for byte, the rows a single process would have written, except the
``seconds`` column (wall-clock time).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smoothcert.runs.atomic import write_text_atomic
from smoothcert.runs.reading import read_run_record, read_table, run_json_path
from smoothcert.runs.results import command_line, library_versions
from smoothcert.runs.selection import select_indices

__all__ = [
    "Shard",
    "shard_path",
    "shard_paths",
    "MergeSummary",
    "merge_shards",
    "SHARD_KEY",
    "SELECTED_KEY",
]

log = logging.getLogger(__name__)

#: the configuration entry of a shard's run record: {"index": I, "count": N}
SHARD_KEY = "shard"
#: the settings entry of a shard's run record: inputs selected before sharding
SELECTED_KEY = "selected"

_SHARD_TEXT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
#: how many missing or duplicated indices an error message spells out
_SHOWN = 5


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``: every ``count``-th selected input, starting with
    the ``index``-th."""

    index: int
    count: int

    def __post_init__(self) -> None:
        _check_int("shard count", self.count, 1)
        _check_int("shard index", self.index, 0)
        if self.index >= self.count:
            raise ValueError(f"shard index must be in 0..{self.count - 1} for {self.count} "
                             f"shards, got {self.index}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (e.g. ``"3/8"``; I counts from 0, as ``$SLURM_ARRAY_TASK_ID`` with
        ``--array=0-7``) -> ``Shard(I, N)``."""
        match = _SHARD_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(f"a shard is written I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def select(self, indices: Sequence[int]) -> list[int]:
        """This shard's part of the selected ``indices``: round robin, order kept."""
        return list(indices[self.index::self.count])

    def path(self, out: str | os.PathLike) -> Path:
        """This shard's results file for the run whose merged results go to ``out``."""
        return shard_path(out, self.index, self.count)

    def describe(self) -> dict[str, int]:
        """The configuration entry recorded in the shard's run record."""
        return {"index": self.index, "count": self.count}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_path(out: str | os.PathLike, index: int, count: int) -> Path:
    """The results file of shard ``index`` of ``count`` for the merged file ``out``:
    ``dir/name.tsv`` -> ``dir/name.shardI-of-N.tsv``. The suffix stays last so that each shard's
    run record (``name.shardI-of-N.json``) is its own; a name without a suffix gets ``.tsv``."""
    Shard(index, count)  # validates
    out = Path(out)
    suffix = out.suffix or ".tsv"
    return out.with_name(f"{out.stem if out.suffix else out.name}.shard{index}-of-{count}{suffix}")


def shard_paths(out: str | os.PathLike, count: int) -> list[Path]:
    """The results files of all ``count`` shards of the run merged into ``out``."""
    return [shard_path(out, index, count) for index in range(count)]


@dataclass(frozen=True)
class MergeSummary:
    """What ``merge_shards`` wrote: ``rows`` rows from ``shards`` shard files to ``path``."""

    path: Path
    shards: int
    rows: int


@dataclass
class _ShardFile:
    """A shard's results file read whole: header, rows (idx -> the row's exact text) and record."""

    path: Path
    header: str
    columns: tuple[str, ...]
    rows: list[tuple[int, str]]
    record: dict[str, Any]
    shard: Shard
    configuration: dict[str, Any]
    selected: int


def _latest_settings(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The settings of the record's most recent session (a resumed run appends one)."""
    resumed = record.get("resumed") or []
    return (resumed[-1] if resumed else record).get("settings") or {}


def _read_record(path: Path) -> dict[str, Any]:
    record = read_run_record(path)
    if record is None:
        raise FileNotFoundError(f"{str(path)!r} has no run record {run_json_path(path).name} "
                                f"beside it")
    if not isinstance(record.get("configuration"), dict):
        raise ValueError(f"run record {str(run_json_path(path))!r} has no configuration")
    return record


def _read_shard(path: Path) -> _ShardFile:
    if not path.is_file():
        raise FileNotFoundError(f"shard file {str(path)!r} does not exist")
    record = _read_record(path)
    configuration = dict(record["configuration"])
    entry = configuration.pop(SHARD_KEY, None)
    if not isinstance(entry, dict):
        raise ValueError(f"{str(path)!r} is not a shard: its run record has no "
                         f"{SHARD_KEY!r} entry (run it with --shard I/N or under torchrun)")
    try:
        shard = Shard(entry.get("index"), entry.get("count"))
    except ValueError as exc:
        raise ValueError(f"{str(path)!r}: bad shard entry {entry!r} ({exc})") from None
    selected = _latest_settings(record).get(SELECTED_KEY)
    if isinstance(selected, bool) or not isinstance(selected, int) or selected < 0:
        raise ValueError(f"{str(path)!r}: its run record does not say how many inputs were "
                         f"selected (settings {SELECTED_KEY!r}: {selected!r})")

    table = read_table(path)
    if table.partial:
        raise ValueError(f"shard {shard} ({str(path)!r}) ends in an incomplete line (the run "
                         f"was interrupted); run the same command again to resume it, then "
                         f"merge")
    if table.header is None:
        raise ValueError(f"{str(path)!r} is not a results file: it has no header line")
    rows = list(zip(table.idx, table.rows, strict=True))
    header, columns = table.header, table.columns
    return _ShardFile(path=path, header=header, columns=columns, rows=rows, record=record,
                      shard=shard, configuration=configuration, selected=selected)


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [f"{key}: {a.get(key)!r} vs {b.get(key)!r}"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _examples(values: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    return shown + (", ..." if len(values) > _SHOWN else "")


def _check_shards(files: list[_ShardFile]) -> list[str]:
    """Every reason the shard files do not make up one complete run."""
    first = files[0]
    problems = []
    for other in files[1:]:
        diff = _differences(first.configuration, other.configuration)
        if diff:
            problems.append(f"{str(other.path)!r} belongs to another run than "
                            f"{str(first.path)!r} ({'; '.join(diff)})")
        if other.columns != first.columns:
            problems.append(f"{str(other.path)!r} has columns {', '.join(other.columns)}, "
                            f"{str(first.path)!r} has {', '.join(first.columns)}")
        if other.selected != first.selected:
            problems.append(f"{str(other.path)!r} selected {other.selected} inputs, "
                            f"{str(first.path)!r} {first.selected} (different --max?)")
    counts = sorted({f.shard.count for f in files})
    if len(counts) > 1:
        problems.append(f"the shards come from splits into different numbers of shards "
                        f"({', '.join(map(str, counts))})")
        return problems
    count = counts[0]
    seen: dict[int, Path] = {}
    for f in files:
        if f.shard.index in seen:
            problems.append(f"shard {f.shard} is given twice: {str(seen[f.shard.index])!r} and "
                            f"{str(f.path)!r}")
        seen.setdefault(f.shard.index, f.path)
    absent = [i for i in range(count) if i not in seen]
    if absent:
        problems.append(f"missing shard(s) {', '.join(f'{i}/{count}' for i in absent)}")
    return problems


def _check_rows(files: list[_ShardFile], skip: int) -> list[str]:
    """Every reason the rows are not exactly one per selected input."""
    problems = []
    owner: dict[int, Path] = {}
    for f in files:
        expected = set(f.shard.select(select_indices(f.selected * skip, skip, -1)))
        present: set[int] = set()
        duplicated, foreign = [], []
        for idx, _ in f.rows:
            if idx in present or idx in owner:
                duplicated.append(idx)
            elif idx not in expected:
                foreign.append(idx)
            present.add(idx)
            owner.setdefault(idx, f.path)
        missing = sorted(expected - present)
        if duplicated:
            problems.append(f"{str(f.path)!r} repeats rows already given: idx "
                            f"{_examples(duplicated)}")
        if foreign:
            problems.append(f"{str(f.path)!r} has rows that are not shard {f.shard}'s inputs: "
                            f"idx {_examples(foreign)}")
        if missing:
            problems.append(f"{str(f.path)!r} lacks {len(missing)} of shard {f.shard}'s "
                            f"{len(expected)} inputs (idx {_examples(missing)}); run the same "
                            f"command again to finish it, then merge")
    return problems


def merge_shards(shards: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 command: Sequence[str] | None = None) -> MergeSummary:
    """Merge the results files of all shards of one run into ``out``, rows sorted by idx.

    Guarantee: ``out`` is written only if the shards make up one complete run: the same
    configuration (apart from the shard entry), the same columns and selection, every shard
    0..N-1 exactly once, and exactly one row for each selected input, each in its own shard.
    Otherwise ValueError lists every problem found (FileNotFoundError for a shard file or run
    record that does not exist), and no file is touched. Each row is copied
    unchanged, so ``out`` equals the file one process would have written for the same
    configuration, except the ``seconds`` column.

    ``out``'s run record holds the common configuration (the one a single-process run has, so
    ``smoothcert certify --out OUT`` with the same flags finds nothing left to do) and each
    shard's record under ``merged_from``. An existing ``out`` is replaced only if its record
    has the same configuration (a merge of the same run, repeated).
    """
    paths = [Path(p) for p in shards]
    out = Path(out)
    if not paths:
        raise ValueError("no shard files given to merge")
    if any(p.resolve() == out.resolve() for p in paths):
        raise ValueError(f"the merged file {str(out)!r} must not be one of the shards")
    if run_json_path(out) == out:
        raise ValueError(f"output {str(out)!r} must not end in .json (that name is kept for "
                         f"the run record beside the results)")
    files = [_read_shard(p) for p in paths]
    problems = _check_shards(files)
    if not problems:
        skip = files[0].configuration.get("skip", 1)
        problems = _check_rows(files, _check_int("configuration skip", skip, 1))
    configuration = files[0].configuration
    if not problems and (out.exists() or run_json_path(out).exists()):
        if not run_json_path(out).exists():
            problems.append(f"{str(out)!r} exists without its run record "
                            f"{run_json_path(out).name}; choose another output file")
        else:
            diff = _differences(_read_record(out)["configuration"], configuration)
            if diff:
                problems.append(f"{str(out)!r} belongs to another run ({'; '.join(diff)}); "
                                f"choose another output file")
    if problems:
        raise ValueError("cannot merge the shards:\n  " + "\n  ".join(problems))

    rows = sorted((row for f in files for row in f.rows), key=lambda row: row[0])
    files.sort(key=lambda f: f.shard.index)
    record = {
        "configuration": configuration,
        "settings": {SELECTED_KEY: files[0].selected},
        "command": command_line(command),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        "resumed": [],
        "merged_from": [{"file": f.path.name, SHARD_KEY: f.shard.describe(), "rows": len(f.rows),
                         **{k: v for k, v in f.record.items() if k != "configuration"}}
                        for f in files],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(f"{line}\n" for line in [files[0].header, *(r for _, r in rows)]))
    write_text_atomic(run_json_path(out), json.dumps(record, indent=2) + "\n")
    log.info("merged %d rows from %d shards into %s", len(rows), len(files), out)
    return MergeSummary(path=out, shards=len(files), rows=len(rows))
