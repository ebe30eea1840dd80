"""Certification results as arrays: the rows of one results file, typed and checked.

Two formats are read (by ``smoothcert.runs.reading``, the one reader of results files), told
apart by their header:

- smoothcert's: ``idx, label, prediction, p_lower, radius_<norm>... , correct, samples, seconds``
  (one ``radius_<norm>`` column per certified norm), with the JSON record of the run beside it
  (``NAME.tsv`` -> ``NAME.json``);
- [CRK19]'s six columns: ``idx, label, predict, radius, correct, time``, where ``radius`` is an l2
  radius and ``predict == -1`` means abstain.

A point is *certified at radius r* in a norm if the prediction is correct (``correct == 1``, which
implies it did not abstain) and its radius in that norm is at least r.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from smoothcert.norms import Norm
from smoothcert.runs.reading import (
    COHEN_COLUMNS,
    ResultsTable,
    parse_table,
    read_run_record,
    read_table,
)

if TYPE_CHECKING:
    from smoothcert.noises.base import Noise

__all__ = [
    "ABSTAIN",
    "CertificationResults",
    "read_results",
    "read_all",
    "parse_results",
    "noise_family",
    "group_by_noise",
    "is_converted",
    "common_inputs",
]

#: the prediction of an abstention
ABSTAIN = -1

_OUR_REQUIRED = ("idx", "label", "prediction", "correct")


@dataclass(frozen=True)
class CertificationResults:
    """The rows of one certification file: integer columns plus one float64 radius per norm."""

    label: str
    idx: np.ndarray
    true_label: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    radius: dict[Norm, np.ndarray]
    p_lower: np.ndarray | None = None
    path: Path | None = None
    format: str = "smoothcert"
    #: the JSON description of the run, when one was found beside the file
    run: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.idx.shape[0])

    @property
    def norms(self) -> tuple[Norm, ...]:
        """The norms this file has radii for."""
        return tuple(self.radius)

    def radii(self, norm: Norm | str) -> np.ndarray:
        """The radius column for ``norm``; ValueError if the file has none."""
        key = Norm.parse(norm)
        if key not in self.radius:
            have = ", ".join(n.value for n in self.radius) or "none"
            raise ValueError(
                f"{self.label!r} has no {key.value} radii; it has radii for: {have}"
            )
        return self.radius[key]

    def certified_mask(self, norm: Norm | str, r: float) -> np.ndarray:
        """Boolean mask of the points certified at radius ``r`` in ``norm``."""
        return self.correct & (self.prediction != ABSTAIN) & (self.radii(norm) >= r)

    def subset(self, keep: np.ndarray) -> CertificationResults:
        """The rows where the boolean mask ``keep`` is true (same label, run record and path)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != self.idx.shape:
            raise ValueError(f"the mask has shape {keep.shape}; {self.label!r} has "
                             f"{len(self)} rows")
        return replace(self, idx=self.idx[keep], true_label=self.true_label[keep],
                       prediction=self.prediction[keep], correct=self.correct[keep],
                       radius={norm: r[keep] for norm, r in self.radius.items()},
                       p_lower=None if self.p_lower is None else self.p_lower[keep])


def common_inputs(results: Sequence[CertificationResults]) -> list[CertificationResults]:
    """Each of ``results`` restricted to the inputs (``idx``) that every one of them has, so
    that runs over different selections (e.g. an exact run on all 10,000 test images and a
    Monte Carlo run on every 10th) are compared on the same inputs. ValueError if no input is
    shared or a file lists an input twice."""
    shared: np.ndarray | None = None
    for res in results:
        if np.unique(res.idx).size != res.idx.size:
            raise ValueError(f"{res.label!r} lists some inputs more than once; merge or "
                             f"deduplicate it first")
        shared = res.idx if shared is None else np.intersect1d(shared, res.idx)
    if shared is None or shared.size == 0:
        raise ValueError("the files share no input (idx); nothing to compare")
    return [res.subset(np.isin(res.idx, shared)) for res in results]


def read_results(path: str | os.PathLike, label: str | None = None) -> CertificationResults:
    """Read one certification TSV (smoothcert's or [CRK19]'s format, told apart by the header).

    ``label`` names the run in tables and plots (default: the file name without its suffix). The
    run record beside the file (``smoothcert.runs.reading.run_json_path``) is attached when there
    is one. A last line without its newline is kept when it has every field (only its last field,
    a time, can have been cut short). Raises ValueError on a malformed file, naming the line and
    what was expected.
    """
    path = Path(path)
    table = read_table(path, partial="keep")
    results = _from_table(table, label=label or path.stem)
    run = read_run_record(path) or {}
    return CertificationResults(
        label=results.label, idx=results.idx, true_label=results.true_label,
        prediction=results.prediction, correct=results.correct, radius=results.radius,
        p_lower=results.p_lower, path=path, format=results.format, run=run,
    )


def read_all(paths: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
             ) -> list[CertificationResults]:
    """Read several certification files (see ``read_results``); ``labels`` name them in order
    (default: the file names without suffix)."""
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"got {len(labels)} labels for {len(paths)} files")
    return [read_results(path, label=None if labels is None else labels[i])
            for i, path in enumerate(paths)]


def noise_family(results: CertificationResults) -> str:
    """The smoothing noise that produced ``results``, from its run record: its name, followed by
    its shape parameters when they are not the family's defaults (``"exp2 k=1 j=0"``, ``"exp2
    k=2 j=522"``; ``"exp2"`` with the defaults), so that two shapes of one family are two families.
    Only the name when the record's parameters do not describe a registered noise."""
    noise = results.run.get("configuration", {}).get("noise")
    if not isinstance(noise, dict) or not noise.get("name"):
        raise ValueError(
            f"{results.label!r} has no run record naming its noise (expected a JSON record "
            f"beside the file, as smoothcert certify writes), so it cannot be grouped by noise")
    name = str(noise["name"])
    recorded = _recorded_noise(noise)
    if recorded is None:
        return name
    try:
        default = type(recorded).create(dim=recorded.dim, sigma=recorded.sigma).shape_params
    except (TypeError, ValueError):
        return name
    if recorded.shape_params == default:
        return name
    return " ".join([name, *(f"{k}={v:g}" for k, v in recorded.shape_params.items())])


def group_by_noise(results: Sequence[CertificationResults]
                   ) -> dict[str, list[CertificationResults]]:
    """The runs grouped by noise family, in order of first appearance."""
    groups: dict[str, list[CertificationResults]] = {}
    for r in results:
        groups.setdefault(noise_family(r), []).append(r)
    return groups


def is_converted(results: CertificationResults, norm: Norm | str) -> bool:
    """Whether the radii of ``results`` in ``norm`` come from the lp conversion (valid, loose):
    the noise of its run record does not certify ``norm`` directly. False when there is no run
    record naming a known noise (e.g. [CRK19]'s files: l2 radii of Gaussian noise, direct)."""
    noise = results.run.get("configuration", {}).get("noise")
    recorded = _recorded_noise(noise) if isinstance(noise, dict) else None
    return recorded is not None and not recorded.certifies(norm)


def _recorded_noise(noise: dict[str, Any]) -> Noise | None:
    """The noise a run record's ``noise`` entry describes (its ``scale`` is derived, so left
    out), or None when it names no registered noise or its parameters are not valid for it."""
    from smoothcert.noises import get_noise

    if not isinstance(noise.get("name"), str):
        return None
    params = {k: v for k, v in noise.items() if k not in ("name", "scale")}
    try:
        return get_noise(noise["name"], **params)
    except (TypeError, ValueError):
        return None


def parse_results(text: str, *, label: str, source: str = "<text>") -> CertificationResults:
    """Parse the text of a certification TSV (see ``read_results``)."""
    return _from_table(parse_table(text, source=source, partial="keep"), label=label)


def _from_table(table: ResultsTable, *, label: str) -> CertificationResults:
    source = table.source
    if table.header is None:
        raise ValueError(f"{source}: empty file; expected a header line and one row per input")
    header = list(table.columns)
    if table.format == "cohen":
        columns = {"idx": "idx", "label": "label", "prediction": "predict",
                   "correct": "correct"}
        radius_columns = {Norm.L2: "radius"}
    elif all(name in header for name in _OUR_REQUIRED):
        columns = {name: name for name in _OUR_REQUIRED}
        radius_columns = {}
        for name in header:
            if name.startswith("radius_"):
                radius_columns[Norm.parse(name[len("radius_"):])] = name
        if not radius_columns:
            raise ValueError(f"{source}: the header has no radius_<norm> column: {header}")
    else:
        raise ValueError(
            f"{source}: unrecognised header {header}; expected smoothcert's "
            f"(idx, label, prediction, p_lower, radius_<norm>..., correct, ...) or "
            f"[CRK19]'s ({', '.join(COHEN_COLUMNS)})"
        )
    position = {name: i for i, name in enumerate(header)}
    rows = table.cells()

    def ints(name: str) -> np.ndarray:
        col = position[name]
        try:
            return np.array([int(row[col]) for row in rows], dtype=np.int64)
        except ValueError as exc:
            raise ValueError(f"{source}: column {name!r} must hold integers ({exc})") from None

    def floats(name: str) -> np.ndarray:
        col = position[name]
        try:
            values = np.array([float(row[col]) for row in rows], dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"{source}: column {name!r} must hold numbers ({exc})") from None
        bad = np.isnan(values) | (values < 0)
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise ValueError(
                f"{source}, row {line - 1}: {name} must be a number >= 0, got {values[bad][0]!r}"
            )
        return values

    idx = np.array(table.idx, dtype=np.int64)
    true_label = ints(columns["label"])
    prediction = ints(columns["prediction"])
    correct_raw = ints(columns["correct"])
    if not np.isin(correct_raw, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(correct_raw, (0, 1)))[0])
        raise ValueError(f"{source}, row {row + 1} (idx {idx[row]}): correct must be 0 or 1")
    correct = correct_raw.astype(bool)
    # `correct` must agree with the prediction: a file where it does not is corrupt, and
    # trusting either column alone could overstate the certified accuracy.
    inconsistent = correct != ((prediction == true_label) & (prediction != ABSTAIN))
    if inconsistent.any():
        row = int(np.flatnonzero(inconsistent)[0])
        raise ValueError(
            f"{source}, row {row + 1} (idx {idx[row]}): correct={int(correct[row])} "
            f"contradicts label={true_label[row]} and prediction={prediction[row]}"
        )
    values, counts = np.unique(idx, return_counts=True)
    if (counts > 1).any():
        raise ValueError(
            f"{source}: input idx {int(values[counts > 1][0])} appears more than once"
        )
    radius = {norm: floats(col) for norm, col in radius_columns.items()}
    p_lower = (floats("p_lower") if "p_lower" in position and table.format == "smoothcert"
               else None)
    return CertificationResults(label=label, idx=idx, true_label=true_label,
                                prediction=prediction, correct=correct, radius=radius,
                                p_lower=p_lower, format=table.format)
