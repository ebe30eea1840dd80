"""Result files: one tab-separated row per input, streamed, with a JSON record of the run beside it.

A results file ``NAME.tsv`` has a header line and one row per input, each flushed as soon as it is
written, so a killed run loses at most the row it was writing. Beside it, ``NAME.json`` holds
the run's configuration (everything that determines the results), the noise, the versions of the
libraries, the seed and the command line.

Resuming: opening an existing results file with the same configuration continues it. Rows already
written are kept and their indices reported in ``completed``, so the caller skips them; a last line
without its newline (a crash mid-write) is dropped and recomputed. The run record gets a
``resumed`` entry, and the partial line is dropped, only when the resumed run writes a row: a rerun
of a finished run leaves both files byte-identical. An existing file whose run.json
records another configuration, or that has no run.json, is refused with an error before any file
is touched.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from smoothcert._version import __version__
from smoothcert.runs.atomic import write_text_atomic
from smoothcert.runs.cohen import COHEN_COLUMNS, cohen_fields
from smoothcert.runs.reading import read_run_record, read_table, run_json_path

__all__ = [
    "ResultsWriter",
    "certify_columns",
    "PREDICT_COLUMNS",
    "run_json_path",
    "library_versions",
]

#: columns of a ``smoothcert predict`` results file
PREDICT_COLUMNS = ("idx", "label", "prediction", "p_value", "correct", "samples", "seconds")


def certify_columns(norms: Sequence[str]) -> tuple[str, ...]:
    """Columns of a ``smoothcert certify`` results file with one radius column per norm."""
    return ("idx", "label", "prediction", "p_lower", *(f"radius_{norm}" for norm in norms),
            "correct", "samples", "seconds")


def command_line(argv: Sequence[str] | None = None) -> list[str]:
    """The command line to record in a run record: ``argv`` (default ``sys.argv``) with the
    program reduced to its name, so that records do not carry the paths of the machine that
    ran them (``/opt/env/bin/smoothcert certify ...`` becomes ``smoothcert certify ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        argv[0] = os.path.basename(str(argv[0])) or str(argv[0])
    return argv


def library_versions() -> dict[str, str]:
    """Versions of smoothcert and of the libraries whose numerics the results depend on."""
    import numpy
    import scipy
    import torch

    return {"smoothcert": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "python": platform.python_version()}


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        # repr is the shortest string that reads back to the same float: radii are never
        # rounded up on their way to the file
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _json_ready(value: Any) -> Any:
    """``value`` as it reads back from JSON, so that configurations compare equal."""
    return json.loads(json.dumps(value))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{key}: {old.get(key)!r} there, {new.get(key)!r} now"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


class ResultsWriter:
    """Streams rows to a results file and keeps its run record (see the module docstring).

    ``configuration`` holds everything that determines the results (the noise, the seed, the
    protocol's parameters, the model's identity; a resumed run must match it exactly);
    ``settings`` what does not (batch size, device, paths); ``command`` the command line
    (``sys.argv`` by default; the program is recorded by its name only, see
    ``command_line``). ``completed`` is the set of indices already in the file.

    Rows are given with ``columns``; with ``cohen_norm`` (a norm among the radius columns) the
    file is written in [CRK19]'s six-column format instead, with the radius in that norm
    (``smoothcert.runs.cohen``).
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str],
                 configuration: Mapping[str, Any], settings: Mapping[str, Any] | None = None,
                 command: Sequence[str] | None = None, *, cohen_norm: str | None = None
                 ) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        if len(set(self.columns)) != len(self.columns) or not self.columns \
                or self.columns[0] != "idx":
            raise ValueError(f"columns must be distinct and start with 'idx', got {columns!r}")
        self.cohen_norm = cohen_norm
        if cohen_norm is not None and f"radius_{cohen_norm}" not in self.columns:
            raise ValueError(f"[CRK19]'s format needs the radius column radius_{cohen_norm}; "
                             f"the columns are {', '.join(self.columns)}")
        #: the columns of the file: ``columns``, or [CRK19]'s six with ``cohen_norm``
        self.file_columns = self.columns if cohen_norm is None else COHEN_COLUMNS
        configuration = _json_ready(dict(configuration))
        meta_path = run_json_path(self.path)
        if self.path.is_dir():
            raise ValueError(f"output {str(self.path)!r} is a directory; give a file name")
        if meta_path == self.path:
            raise ValueError(f"output {str(self.path)!r} must not end in .json (that name is "
                             f"kept for the run record beside the results)")

        # every check comes before the first write, so a refused run changes no file
        record = read_run_record(self.path)
        if record is not None and record.get("configuration") != configuration:
            diff = _differences(record.get("configuration") or {}, configuration)
            raise ValueError(
                f"{str(self.path)!r} belongs to another run ({'; '.join(diff)}); choose "
                f"another output file, or delete it and {meta_path.name} to start over")
        existing = read_table(self.path) if self.path.exists() else None
        if existing is not None and existing.header is not None \
                and existing.columns != self.file_columns:
            raise ValueError(
                f"results file {str(self.path)!r} has columns {', '.join(existing.columns)}, "
                f"but this run writes {', '.join(self.file_columns)}; choose another output "
                f"file")
        if record is None and existing is not None and existing.complete_bytes > 0:
            raise ValueError(
                f"{str(self.path)!r} exists without its run record {meta_path.name}, so it "
                f"cannot be resumed safely; choose another output file")

        self.completed = frozenset(existing.idx) if existing else frozenset()
        session = {"settings": _json_ready(dict(settings or {})),
                   "command": command_line(command),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "versions": library_versions()}
        if record is None:
            record = {"configuration": configuration, **session, "resumed": []}
        else:
            record.setdefault("resumed", []).append(
                {**session, "completed_before": len(self.completed)})
        self._meta_path, self._record, self._existing = meta_path, record, existing
        self._file: IO[str] | None = None
        # a resumed file with its header is left untouched until a row is written: a rerun of a
        # finished run changes neither file (no resume entry without anything resumed)
        if len(record["resumed"]) == 0 or existing is None or existing.header is None:
            self._open()

    def _open(self) -> None:
        """Write the run record, drop a partial last line, open the file for appending and
        write the header of an empty file."""
        existing = self._existing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(self._meta_path, self._record)
        if existing is not None and self.path.exists() \
                and existing.complete_bytes < self.path.stat().st_size:
            # drop the partial last line of an interrupted write (or an unfinished header)
            with open(self.path, "r+b") as fh:
                fh.truncate(existing.complete_bytes)
        self._file = open(self.path, "a", encoding="utf-8", newline="")
        if self._file.tell() == 0:
            self._line(self.file_columns)

    def _line(self, fields: Sequence[str]) -> None:
        assert self._file is not None
        self._file.write("\t".join(fields) + "\n")
        self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (a mapping with a value for every column) and flush it."""
        missing = [c for c in self.columns if c not in row]
        extra = [c for c in row if c not in self.columns]
        if missing or extra:
            raise ValueError(f"row does not match the columns: missing {missing}, "
                             f"unexpected {extra}")
        if self._file is None:
            self._open()
        if self.cohen_norm is not None:
            self._line(cohen_fields(row, self.cohen_norm))
        else:
            self._line([_format(row[c]) for c in self.columns])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

