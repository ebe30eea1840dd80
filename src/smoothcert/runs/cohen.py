"""[CRK19]'s results format: six tab-separated columns ``idx label predict radius correct time``.

Cohen et al.'s ``code/certify.py`` (locuslab/smoothing) writes one line per input,
``"{}\\t{}\\t{}\\t{:.3}\\t{}\\t{}".format(i, label, prediction, radius, correct, time_elapsed)``
with ``time_elapsed = str(datetime.timedelta(seconds=...))`` (e.g. ``0:00:01.234000``),
``predict`` -1 for an abstention and ``correct = int(prediction == label)``; their
``analyze.py`` reads it with ``pandas.read_csv(path, delimiter="\\t")`` and counts
``df["correct"] & (df["radius"] >= r)``.

One difference, for soundness: ``{:.3}`` rounds the radius to 3 significant digits, to the
nearest, so it may report more than was certified; here the radius is written in full (the
shortest text that reads back to the same float64), never rounded up. Such files read in
Cohen's ``analyze.py`` unchanged. ``radius`` is the radius in one norm, the one the run certified
(Cohen's are l2 radii of Gaussian smoothing).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from smoothcert.runs.reading import COHEN_COLUMNS, ResultsTable

__all__ = ["COHEN_COLUMNS", "cohen_fields", "table_to_cohen"]


def _number(value: Any) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    return repr(value) if math.isfinite(value) else str(value)


def _time(seconds: Any) -> str:
    return str(datetime.timedelta(seconds=float(seconds)))


def cohen_fields(row: Mapping[str, Any], norm: str) -> list[str]:
    """The six fields of [CRK19]'s line for one row of a smoothcert certify results file (values
    as written, or as read back as text), with the radius in ``norm`` ("l1", "l2", "linf")."""
    return [str(row["idx"]), str(row["label"]), str(row["prediction"]),
            _number(row[f"radius_{norm}"]), str(int(row["correct"])), _time(row["seconds"])]


def table_to_cohen(table: ResultsTable, norm: str) -> str:
    """A smoothcert certify results file (read by ``smoothcert.runs.reading.read_table``) in
    [CRK19]'s format, with its radii in ``norm``; ValueError naming the norms the file has if it
    has none in ``norm`` (or no radius at all, as a predict file)."""
    columns = table.columns
    have = [c[len("radius_"):] for c in columns if c.startswith("radius_")]
    if table.format == "cohen":
        if norm != "l2":
            raise ValueError(f"{table.source} is already in [CRK19]'s format, with l2 radii; "
                             f"it has no {norm} radii")
        return "\n".join(["\t".join(COHEN_COLUMNS), *table.rows]) + "\n"
    if f"radius_{norm}" not in columns:
        raise ValueError(f"{table.source} has no {norm} radii to export; it has radii for: "
                         f"{', '.join(have) or 'none (not a certify results file)'}")
    lines = ["\t".join(COHEN_COLUMNS)]
    for cells in table.cells():
        lines.append("\t".join(cohen_fields(dict(zip(columns, cells, strict=True)), norm)))
    return "\n".join(lines) + "\n"
