"""Reading results files: the one reader of the tab-separated results format, and the one rule
naming the run record beside a results file.

A results file (``smoothcert certify``/``predict``, a shard, a merged run, or a file in [CRK19]'s
six-column format ``idx label predict radius correct time``) is UTF-8 text: a header line whose
first column is ``idx``, then one row per input, each ending in a newline. Rows are written one at
a time and flushed, so a killed run may leave a last line without its newline (an interrupted
write); ``read_table`` reports it separately (``partial``) and each caller decides what to do with
it (the results writer drops and recomputes it, ``merge`` refuses it, the analysis keeps it when
it has every field). Blank lines are ignored.

The run record of ``NAME.tsv`` is ``NAME.json`` (``run_json_path``), a JSON object.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "COHEN_COLUMNS",
    "ResultsTable",
    "read_table",
    "parse_table",
    "run_json_path",
    "read_run_record",
]

logger = logging.getLogger(__name__)

#: the columns of [CRK19]'s results files (``code/certify.py`` of locuslab/smoothing)
COHEN_COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")

Partial = Literal["drop", "keep", "refuse"]


def run_json_path(path: str | os.PathLike) -> Path:
    """The run record beside a results file: ``results.tsv`` -> ``results.json`` (a name
    without a suffix gets ``.json`` appended). A results file must not itself end in ``.json``."""
    return Path(path).with_suffix(".json")


def read_run_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The run record of results file ``path`` (see ``run_json_path``), or None if there is
    none. ValueError if it is not valid JSON or not a JSON object."""
    meta = run_json_path(path)
    if meta == Path(path) or not meta.is_file():
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"run record {str(meta)!r} is not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"run record {str(meta)!r} must hold a JSON object, got "
                         f"{type(record).__name__}")
    return record


@dataclass(frozen=True)
class ResultsTable:
    """A results file as text: its header, its complete rows (exact text, no newline) and their
    indices, and the unterminated last line of an interrupted write (``partial``, "" if none).

    ``header`` is None when not even the header line is complete (an empty file, or a run killed
    while writing it). ``complete_bytes`` is the length of the file up to its last newline: the
    part a resumed run keeps.
    """

    source: str
    header: str | None
    rows: tuple[str, ...]
    idx: tuple[int, ...]
    partial: str
    complete_bytes: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The header's column names (empty when there is no header)."""
        return () if self.header is None else tuple(c.strip() for c in self.header.split("\t"))

    @property
    def format(self) -> str:
        """"cohen" for [CRK19]'s six columns, else "smoothcert"."""
        return "cohen" if self.columns == COHEN_COLUMNS else "smoothcert"

    def cells(self) -> list[list[str]]:
        """The rows split into their fields (each row has one field per column)."""
        return [row.split("\t") for row in self.rows]

    def column(self, name: str) -> list[str]:
        """The text of column ``name`` in every row; KeyError naming the columns if absent."""
        if name not in self.columns:
            raise KeyError(f"{self.source} has no column {name!r}; its columns are "
                           f"{', '.join(self.columns)}")
        position = self.columns.index(name)
        return [fields[position] for fields in self.cells()]


def read_table(path: str | os.PathLike, *, partial: Partial = "drop") -> ResultsTable:
    """Read results file ``path`` (see the module docstring).

    ``partial``: what to do with a last line without its newline: "drop" it (reported in
    ``ResultsTable.partial``), "keep" it as a row when it has every field (a row cut inside its
    last field, a time; otherwise dropped with a logged warning), or "refuse" the file
    (ValueError). Raises FileNotFoundError if ``path`` is not a file, ValueError naming the file
    and line for a file that is not a results file: not UTF-8 text (a checkpoint, an image), a
    header not starting with ``idx``, a row whose number of fields differs from the header's, or
    an ``idx`` that is not an integer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {str(path)!r} does not exist"
                                + (" (it is a folder)" if path.is_dir() else ""))
    return parse_table(path.read_bytes(), source=repr(str(path)), partial=partial)


def parse_table(data: bytes | str, *, source: str = "<text>", partial: Partial = "drop"
                ) -> ResultsTable:
    """``read_table`` on the content of a file (bytes, or text)."""
    if partial not in ("drop", "keep", "refuse"):
        raise ValueError(f"partial must be 'drop', 'keep' or 'refuse', got {partial!r}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not a results file: it is not UTF-8 text (a binary file "
                         f"such as a checkpoint?); give the .tsv written by smoothcert certify "
                         f"or predict") from None
    lines = text.split("\n")
    unterminated = lines.pop()  # "" when the text ends in a newline
    complete_bytes = len(raw) - len(unterminated.encode("utf-8"))
    if unterminated.strip() and partial == "refuse":
        raise ValueError(f"{source} ends in an incomplete line (the run was interrupted); run "
                         f"the same command again to resume it")
    numbered = [(n, line.rstrip("\r")) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        if unterminated.strip() and partial == "keep":
            logger.warning("%s: ignoring the incomplete line %r", source, unterminated[:80])
        return ResultsTable(source=source, header=None, rows=(), idx=(),
                            partial=unterminated, complete_bytes=0)
    (_, header), body = numbered[0], numbered[1:]
    columns = [c.strip() for c in header.split("\t")]
    if columns[0] != "idx":
        raise ValueError(f"{source} is not a results file: its header {header[:200]!r} does not "
                         f"start with the column idx")
    if unterminated.strip() and partial == "keep":
        if len(unterminated.split("\t")) == len(columns):
            body.append((len(lines) + 1, unterminated.rstrip("\r")))
            unterminated = ""
        else:
            logger.warning("%s: ignoring the incomplete last line %r", source, unterminated[:80])
    rows, idx = [], []
    for number, line in body:
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise ValueError(f"{source} line {number} has {len(fields)} fields, but its header "
                             f"has {len(columns)}; the file is damaged")
        try:
            idx.append(int(fields[0]))
        except ValueError:
            raise ValueError(f"{source} line {number}: idx {fields[0]!r} is not an "
                             f"integer") from None
        rows.append(line)
    return ResultsTable(source=source, header=header, rows=tuple(rows), idx=tuple(idx),
                        partial=unterminated, complete_bytes=complete_bytes)
