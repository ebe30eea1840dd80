"""[CRK19]'s results format: ``certify --format cohen`` and ``analyze --export cohen``, read the
way Cohen et al.'s ``code/analyze.py`` reads them.

Their reader is ``pandas.read_csv(path, delimiter="\\t")`` then
``(df["correct"] & (df["radius"] >= r)).mean()``. pandas is not a dependency, so ``cohen_accuracy``
below does the same with csv.DictReader: the six header names, tab-separated, ``correct`` read as
an integer and ``radius`` as a float, every row counted in the denominator.
"""

from __future__ import annotations

import csv
import datetime
import json
import re

import pytest

from smoothcert.cli.main import main
from smoothcert.runs.cohen import COHEN_COLUMNS
from test_certify_cli import _certify, _certify_command, _rows, checkpoint  # noqa: F401


def cohen_accuracy(path, radii):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        assert tuple(reader.fieldnames) == COHEN_COLUMNS
        rows = list(reader)
    return [sum(int(r["correct"]) & int(float(r["radius"]) >= radius) for r in rows) / len(rows)
            for radius in radii]


def _timedelta(text: str) -> float:
    """Seconds of str(datetime.timedelta(...)), as Cohen's certify.py writes the time."""
    match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d{6})?)", text)
    assert match, text
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def test_certify_writes_cohens_six_columns(tmp_path):
    ours, cohen = tmp_path / "ours.tsv", tmp_path / "cohen.tsv"
    _certify(ours)
    _certify(cohen, results_format="cohen")
    lines = cohen.read_text().splitlines()
    assert lines[0] == "idx\tlabel\tpredict\tradius\tcorrect\ttime"
    _, mine = _rows(ours)
    _, theirs = _rows(cohen)
    assert len(theirs) == len(mine) == 12
    for a, b in zip(mine, theirs, strict=True):
        assert (b["idx"], b["label"], b["predict"], b["correct"]) == (
            a["idx"], a["label"], a["prediction"], a["correct"])
        assert b["radius"] == a["radius_l2"]  # in full: never rounded up
        assert int(b["correct"]) == int(int(b["predict"]) == int(b["label"]))
        assert _timedelta(b["time"]) >= 0
        assert str(datetime.timedelta(seconds=_timedelta(b["time"]))) == b["time"]
    radii = [0.0, 0.1, 0.2, 0.3]
    counted = [sum(int(r["correct"]) and float(r["radius_l2"]) >= x for r in mine) / 12
               for x in radii]
    assert cohen_accuracy(cohen, radii) == counted
    assert counted[0] > 0
    # a resumed Cohen-format run finds everything done, and the format is part of the run
    assert _certify(cohen, results_format="cohen").written == 0
    assert json.loads(cohen.with_suffix(".json").read_text())["configuration"]["format"] == "cohen"
    with pytest.raises(ValueError, match="belongs to another run"):
        _certify(cohen)


def test_cohen_format_takes_one_norm(tmp_path, checkpoint, capsys):  # noqa: F811
    with pytest.raises(ValueError, match="one radius column"):
        _certify(tmp_path / "x.tsv", results_format="cohen", norms=("l2", "l1"), convert=True)
    out = tmp_path / "c.tsv"
    assert main(_certify_command(checkpoint, out, "--norms", "l2,l1", "--convert",
                                 "--format", "cohen")) == 2
    assert "--format cohen writes one radius column" in capsys.readouterr().err
    assert not out.exists()
    assert main(_certify_command(checkpoint, out, "--norms", "l1", "--convert",
                                 "--format", "cohen")) == 0
    assert out.read_text().splitlines()[0].split("\t") == list(COHEN_COLUMNS)


def test_analyze_exports_cohens_format(tmp_path, capsys):
    ours = tmp_path / "ours.tsv"
    _certify(ours, norms=("l2", "l1"), convert=True)
    out = tmp_path / "cohen.tsv"
    assert main(["analyze", str(ours), "--export", "cohen", "--norm", "l1",
                 "--out", str(out)]) == 0
    _, mine = _rows(ours)
    _, theirs = _rows(out)
    assert [r["radius"] for r in theirs] == [r["radius_l1"] for r in mine]
    radii = [0.0, 0.5, 1.0]
    assert cohen_accuracy(out, radii) == [
        sum(int(r["correct"]) and float(r["radius_l1"]) >= x for r in mine) / len(mine)
        for x in radii]
    # the export reads back through smoothcert's own reader (as l2 radii: Cohen's convention)
    assert main(["analyze", str(out), "--radii", "0"]) == 0
    assert main(["analyze", str(ours), "--export", "cohen", "--norm", "linf"]) == 2
    assert "has no linf radii to export; it has radii for: l2, l1" in capsys.readouterr().err
    # a direct certification in Cohen's format and the export of smoothcert's are the same
    direct = tmp_path / "direct.tsv"
    _certify(direct, results_format="cohen")
    capsys.readouterr()
    assert main(["analyze", str(ours), "--export", "cohen", "--norm", "l2"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:5] for line in exported] == [
        line.split("\t")[:5] for line in direct.read_text().splitlines()]
