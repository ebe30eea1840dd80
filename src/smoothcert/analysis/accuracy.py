"""Certified accuracy at radii, envelopes over runs, average certified radius, and tables.

Definitions (the protocol of [CRK19], followed by [YDH+20]):

- A test point is *certified at radius r* in a norm if the smoothed classifier's prediction is
  correct (``correct == 1``, which implies it did not abstain) and its certified radius in that
  norm is at least r. At r = 0 this is "correct and not abstained". Abstentions
  (``prediction == -1``) are never certified: they count as wrong, in the denominator.
- *Certified accuracy* at r = (points certified at r) / (all points in the file).
- The *envelope* of several runs (for instance one per training sigma) is, at each r, the largest
  certified accuracy among them: the headline curve of both [CRK19] and [YDH+20].
- The *average certified radius* (ACR) = mean over points of radius * correct.

Counts are kept as integers, so accuracies are exact fractions; every float or percentage this
module produces is rounded **down** (a reported certified accuracy may be loose, never too high).

Two file formats are read, recognised by their header:

- smoothcert's: ``idx, label, prediction, p_lower, radius_<norm>... , correct, samples, seconds``
  (one ``radius_<norm>`` column per certified norm), with the JSON record of the run beside it
  (``NAME.tsv`` -> ``NAME.json``);
- [CRK19]'s six columns: ``idx, label, predict, radius, correct, time``, where ``radius`` is an l2
  radius and ``predict == -1`` means abstain.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from smoothcert._values import parse_values
from smoothcert.norms import Norm

__all__ = [
    "CertificationResults",
    "AccuracyCurve",
    "read_results",
    "read_all",
    "certified_counts",
    "certified_accuracy",
    "accuracy_curve",
    "envelope",
    "average_certified_radius",
    "parse_radii",
    "default_radii",
    "floor_percent",
    "format_accuracy_table",
    "TABLE_FORMATS",
]

logger = logging.getLogger(__name__)

ABSTAIN = -1

#: the radius column of [CRK19]'s format is an l2 radius (Gaussian smoothing)
_COHEN_COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")
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


# ---------------------------------------------------------------------------------- reading
def read_results(path: str | os.PathLike, label: str | None = None) -> CertificationResults:
    """Read one certification TSV (smoothcert's or [CRK19]'s format, told apart by the header).

    ``label`` names the run in tables and plots (default: the file name without its suffix). A JSON
    description of the run is attached when found beside the file (see ``find_run_json``).
    Raises ValueError on a malformed file, naming the line and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"certification file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    results = parse_results(text, label=label or path.stem, source=str(path))
    run_json = find_run_json(path)
    run: dict[str, Any] = {}
    if run_json is not None:
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(run_json)!r} is not valid JSON ({exc})") from exc
        if not isinstance(run, dict):
            raise ValueError(
                f"{str(run_json)!r} must hold a JSON object, got {type(run).__name__}")
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
    """The name of the smoothing noise that produced ``results``, from its run record."""
    noise = results.run.get("configuration", {}).get("noise")
    if not isinstance(noise, dict) or not noise.get("name"):
        raise ValueError(
            f"{results.label!r} has no run record naming its noise (expected a JSON record "
            f"beside the file, as smoothcert certify writes), so it cannot be grouped by noise")
    return str(noise["name"])


def group_by_noise(results: Sequence[CertificationResults]
                   ) -> dict[str, list[CertificationResults]]:
    """The runs grouped by noise family, in order of first appearance."""
    groups: dict[str, list[CertificationResults]] = {}
    for r in results:
        groups.setdefault(noise_family(r), []).append(r)
    return groups


def find_run_json(path: Path) -> Path | None:
    """The JSON record of the run that wrote ``path``, ``<name>.json`` beside it
    (``certify.tsv`` -> ``certify.json``), or None if there is none."""
    candidate = path.with_suffix(".json")
    return candidate if candidate.is_file() and candidate != path else None


def parse_results(text: str, *, label: str, source: str = "<text>") -> CertificationResults:
    """Parse the text of a certification TSV (see ``read_results``)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    unterminated = lines.pop() if lines else ""
    lines = [line for line in lines if line.strip()]
    if unterminated.strip():
        # A last line without its newline may be a row whose write was interrupted. If it has
        # every field, only its last one (a time, never used here) can be cut short: keep it.
        if lines and len(unterminated.split("\t")) == len(lines[0].split("\t")):
            lines.append(unterminated)
        else:
            logger.warning("%s: ignoring the incomplete last line %r", source,
                           unterminated[:80])
    if not lines:
        raise ValueError(f"{source}: empty file; expected a header line and one row per input")
    header = [h.strip() for h in lines[0].split("\t")]
    if tuple(header) == _COHEN_COLUMNS:
        columns = {"idx": "idx", "label": "label", "prediction": "predict",
                   "correct": "correct"}
        radius_columns = {Norm.L2: "radius"}
        fmt = "cohen"
    elif all(name in header for name in _OUR_REQUIRED):
        columns = {name: name for name in _OUR_REQUIRED}
        radius_columns = {}
        for name in header:
            if name.startswith("radius_"):
                radius_columns[Norm.parse(name[len("radius_"):])] = name
        if not radius_columns:
            raise ValueError(f"{source}: the header has no radius_<norm> column: {header}")
        fmt = "smoothcert"
    else:
        raise ValueError(
            f"{source}: unrecognised header {header}; expected smoothcert's "
            f"(idx, label, prediction, p_lower, radius_<norm>..., correct, ...) or "
            f"[CRK19]'s ({', '.join(_COHEN_COLUMNS)})"
        )
    position = {name: i for i, name in enumerate(header)}
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise ValueError(
                f"{source}, line {number}: {len(cells)} fields, but the header has {len(header)}"
            )
        rows.append(cells)

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
                f"{source}, line {line}: {name} must be a number >= 0, got {values[bad][0]!r}"
            )
        return values

    idx = ints(columns["idx"])
    true_label = ints(columns["label"])
    prediction = ints(columns["prediction"])
    correct_raw = ints(columns["correct"])
    if not np.isin(correct_raw, (0, 1)).all():
        line = int(np.flatnonzero(~np.isin(correct_raw, (0, 1)))[0]) + 2
        raise ValueError(f"{source}, line {line}: correct must be 0 or 1")
    correct = correct_raw.astype(bool)
    # `correct` must agree with the prediction: a file where it does not is corrupt, and
    # trusting either column alone could overstate the certified accuracy.
    inconsistent = correct != ((prediction == true_label) & (prediction != ABSTAIN))
    if inconsistent.any():
        line = int(np.flatnonzero(inconsistent)[0]) + 2
        raise ValueError(
            f"{source}, line {line}: correct={int(correct[line - 2])} contradicts "
            f"label={true_label[line - 2]} and prediction={prediction[line - 2]}"
        )
    duplicates = np.unique(idx, return_counts=True)
    if (duplicates[1] > 1).any():
        raise ValueError(
            f"{source}: input idx {int(duplicates[0][duplicates[1] > 1][0])} appears more than once"
        )
    radius = {norm: floats(col) for norm, col in radius_columns.items()}
    p_lower = floats("p_lower") if "p_lower" in position and fmt == "smoothcert" else None
    return CertificationResults(label=label, idx=idx, true_label=true_label,
                                prediction=prediction, correct=correct, radius=radius,
                                p_lower=p_lower, format=fmt)


# ---------------------------------------------------------------------------------- measures
def certified_counts(results: CertificationResults, radii: Iterable[float],
                     norm: Norm | str) -> np.ndarray:
    """Number of points certified at each radius in ``radii`` (int64, one per radius)."""
    values = _radius_array(radii)
    ok = results.correct & (results.prediction != ABSTAIN)
    certified = np.sort(results.radii(norm)[ok])
    # number of certified radii >= r, for every r at once
    return (certified.shape[0] - np.searchsorted(certified, values, side="left")).astype(np.int64)


def certified_accuracy(results: CertificationResults, radii: Iterable[float],
                       norm: Norm | str) -> np.ndarray:
    """Certified accuracy at each radius (float64, each value rounded down from the exact
    fraction certified / total)."""
    counts = certified_counts(results, radii, norm)
    return np.array([_fraction_down(int(c), len(results)) for c in counts], dtype=np.float64)


def average_certified_radius(results: CertificationResults, norm: Norm | str) -> float:
    """ACR: the mean over all points of radius * correct (abstentions contribute 0)."""
    if len(results) == 0:
        raise ValueError(f"{results.label!r} has no rows; the ACR is undefined")
    ok = results.correct & (results.prediction != ABSTAIN)
    return float(np.sum(np.where(ok, results.radii(norm), 0.0)) / len(results))


@dataclass(frozen=True)
class AccuracyCurve:
    """Certified accuracy of one run (or an envelope) at a list of radii, as exact counts.

    ``certified[i] / total[i]`` is the accuracy at ``radii[i]``; for an envelope, ``source[i]``
    names the run attaining it.
    """

    label: str
    norm: Norm
    radii: np.ndarray
    certified: np.ndarray
    total: np.ndarray
    source: tuple[str, ...] = ()

    def fractions(self) -> list[Fraction]:
        """The exact accuracies."""
        return [Fraction(int(c), int(t)) for c, t in zip(self.certified, self.total, strict=True)]

    @property
    def accuracy(self) -> np.ndarray:
        """The accuracies as float64, each rounded down."""
        return np.array([_fraction_down(int(c), int(t))
                         for c, t in zip(self.certified, self.total, strict=True)],
                        dtype=np.float64)


def accuracy_curve(results: CertificationResults, radii: Iterable[float],
                   norm: Norm | str) -> AccuracyCurve:
    """The certified accuracy of ``results`` at ``radii`` in ``norm``."""
    values = _radius_array(radii)
    if len(results) == 0:
        raise ValueError(f"{results.label!r} has no rows; its certified accuracy is undefined")
    counts = certified_counts(results, values, norm)
    return AccuracyCurve(label=results.label, norm=Norm.parse(norm), radii=values,
                         certified=counts, total=np.full(values.shape, len(results), np.int64))


def envelope(curves: Sequence[AccuracyCurve], label: str = "envelope") -> AccuracyCurve:
    """At each radius, the largest certified accuracy among ``curves`` (compared exactly).

    All curves must use the same norm and radii. Ties go to the first curve.
    """
    if not curves:
        raise ValueError("envelope needs at least one curve")
    first = curves[0]
    for curve in curves[1:]:
        if curve.norm is not first.norm:
            raise ValueError(
                f"cannot take the envelope of {first.norm.value} and {curve.norm.value} curves"
            )
        if curve.radii.shape != first.radii.shape or not np.array_equal(curve.radii, first.radii):
            raise ValueError(f"curve {curve.label!r} uses other radii than {first.label!r}")
    certified, total, source = [], [], []
    for i in range(first.radii.shape[0]):
        best = max(range(len(curves)),
                   key=lambda k: (Fraction(int(curves[k].certified[i]), int(curves[k].total[i])),
                                  -k))
        certified.append(int(curves[best].certified[i]))
        total.append(int(curves[best].total[i]))
        source.append(curves[best].label)
    return AccuracyCurve(label=label, norm=first.norm, radii=first.radii.copy(),
                         certified=np.array(certified, dtype=np.int64),
                         total=np.array(total, dtype=np.int64), source=tuple(source))


# ---------------------------------------------------------------------------------- radii
#: radii of the papers' tables: [YDH+20] Table 1 (l1), [CRK19] (l2), multiples of 1/255 (linf)
_DEFAULT_RADII: dict[Norm, tuple[float, ...]] = {
    Norm.L1: tuple(0.5 * k for k in range(9)),
    Norm.L2: tuple(0.25 * k for k in range(5)),
    Norm.LINF: (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255),
}


def default_radii(norm: Norm | str) -> np.ndarray:
    """The radii reported by the papers for ``norm``."""
    return np.array(_DEFAULT_RADII[Norm.parse(norm)], dtype=np.float64)


def parse_radii(text: str) -> np.ndarray:
    """Radii from ``"0,0.25,0.5"`` (a list), ``"0:4:0.5"`` (start:stop:step, stop included) or
    ``"0,0.25,...,1"`` (a progression); values may be fractions such as ``2/255``. The ranges are
    computed in exact decimal arithmetic (``smoothcert._values.parse_values``).
    """
    return _radius_array(parse_values(text, "radii"))


def _radius_array(radii: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(radii), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("radii must be a non-empty list of numbers")
    if np.isnan(values).any() or (values < 0).any():
        raise ValueError(f"radii must be numbers >= 0, got {values.tolist()}")
    return values


# ---------------------------------------------------------------------------------- rounding
def _fraction_down(numerator: int, denominator: int) -> float:
    """numerator / denominator as the largest float64 not above the exact fraction."""
    value = numerator / denominator
    if Fraction(value) > Fraction(numerator, denominator):
        value = math.nextafter(value, -math.inf)
    return value


def floor_percent(numerator: int, denominator: int, digits: int = 1) -> str:
    """``100 * numerator / denominator`` with ``digits`` decimals, rounded down exactly."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    scaled = (numerator * 100 * 10**digits) // denominator
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}" if digits else str(whole)


def _floor_decimal(value: float, digits: int) -> str:
    """A non-negative float with ``digits`` decimals, rounded down exactly."""
    exact = Fraction(value)
    scaled = math.floor(exact * 10**digits)
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}" if digits else str(whole)


# ---------------------------------------------------------------------------------- tables
TABLE_FORMATS = ("table", "markdown", "csv", "latex")


def _radius_name(r: float) -> str:
    return format(float(r), "g")


def format_accuracy_table(curves: Sequence[AccuracyCurve], *, fmt: str = "table",
                          acr: Sequence[float] | None = None, include_envelope: bool = True,
                          digits: int = 1) -> str:
    """Render certified accuracies of ``curves`` (same norm and radii) as text.

    - ``table`` / ``markdown`` / ``latex``: one row per run (and the envelope), one column per
      radius, percentages rounded down to ``digits`` decimals, and an ACR column when ``acr``
      (one value per curve, rounded down to 3 decimals) is given.
    - ``csv``: one row per radius; a ``radius`` column, one column per run (its label) and an
      ``envelope`` column; accuracies as fractions in [0, 1] (float64, rounded down).
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(TABLE_FORMATS)}")
    if not curves:
        raise ValueError("no curves to tabulate")
    if acr is not None and len(acr) != len(curves):
        raise ValueError(f"got {len(acr)} ACR values for {len(curves)} curves")
    env = envelope(curves) if include_envelope else None
    norm = curves[0].norm
    if fmt == "csv":
        return _csv_table(curves, env)
    header = ["run", *[f"{norm.value} r={_radius_name(r)}" for r in curves[0].radii]]
    if acr is not None:
        header.append("ACR")
    body = []
    for i, curve in enumerate(curves):
        row = [curve.label, *[floor_percent(int(c), int(t), digits)
                              for c, t in zip(curve.certified, curve.total, strict=True)]]
        if acr is not None:
            row.append(_floor_decimal(float(acr[i]), 3))
        body.append(row)
    if env is not None:
        row = [env.label, *[floor_percent(int(c), int(t), digits)
                            for c, t in zip(env.certified, env.total, strict=True)]]
        if acr is not None:
            row.append("")
        body.append(row)
    if fmt == "markdown":
        return _markdown(header, body)
    if fmt == "latex":
        return _latex(header, body, norm, rule_before_last=env is not None)
    return _plain(header, body)


def _csv_table(curves: Sequence[AccuracyCurve], env: AccuracyCurve | None) -> str:
    names = [c.label for c in curves]
    if len(set(names)) != len(names) or (env is not None and env.label in names):
        raise ValueError(f"run labels must be distinct and not {'envelope'!r}, got {names}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["radius", *names, *([env.label] if env is not None else [])])
    for i, r in enumerate(curves[0].radii):
        row: list[Any] = [repr(float(r))]
        for curve in [*curves, *([env] if env is not None else [])]:
            row.append(repr(_fraction_down(int(curve.certified[i]), int(curve.total[i]))))
        writer.writerow(row)
    return buffer.getvalue()


def _plain(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(row[j]) for row in [header, *body]) for j in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), *[c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *[line(r) for r in body]]) + "\n"


def _markdown(header: list[str], body: list[list[str]]) -> str:
    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    rule = "|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|"
    return "\n".join([line(header), rule, *[line(r) for r in body]]) + "\n"


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
                       ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, repl)
    return text


def _latex(header: list[str], body: list[list[str]], norm: Norm, *,
           rule_before_last: bool) -> str:
    columns = "l" + "r" * (len(header) - 1)
    radii = [h.split("r=", 1)[1] if "r=" in h else h for h in header[1:]]
    head = [rf"{norm.value} radius", *radii]
    lines = [rf"\begin{{tabular}}{{{columns}}}", r"\hline",
             " & ".join(_latex_escape(h) for h in head) + r" \\", r"\hline"]
    for i, row in enumerate(body):
        if rule_before_last and i == len(body) - 1:
            lines.append(r"\hline")
        lines.append(" & ".join(_latex_escape(c) for c in row) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
