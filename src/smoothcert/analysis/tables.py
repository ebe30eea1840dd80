"""Tables of certified accuracy: plain text, markdown, CSV and LaTeX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from smoothcert.analysis.accuracy import (
    AccuracyCurve,
    envelope,
    floor_decimal,
    floor_percent,
    fraction_down,
)
from smoothcert.norms import Norm

__all__ = ["TABLE_FORMATS", "format_accuracy_table"]

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
            row.append(floor_decimal(float(acr[i]), 3))
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
            row.append(repr(fraction_down(int(curve.certified[i]), int(curve.total[i]))))
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
