"""Certified accuracy, envelopes, ACR and tables on hand-made certification files.

Every expected value below is counted by hand from the rows written in the test.
"""

from __future__ import annotations

import csv
import io
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from smoothcert.analysis import (
    accuracy_curve,
    average_certified_radius,
    certified_accuracy,
    certified_counts,
    default_radii,
    envelope,
    floor_percent,
    format_accuracy_table,
    parse_radii,
    read_results,
)
from smoothcert.cli.analyze import default_labels
from smoothcert.cli.main import main
from smoothcert.norms import Norm

OUR_HEADER = ["idx", "label", "prediction", "p_lower", "radius_l1", "radius_l2", "radius_linf",
              "correct", "samples", "seconds"]


def write_ours(path: Path, rows: list[tuple], run: dict | None = None) -> Path:
    """rows: (label, prediction, p_lower, r1, r2, rinf); correct is derived from the row."""
    lines = ["\t".join(OUR_HEADER)]
    for i, (label, pred, p, r1, r2, rinf) in enumerate(rows):
        correct = int(pred == label and pred != -1)
        lines.append("\t".join(map(str, (i, label, pred, p, r1, r2, rinf, correct, 1000, 0.5))))
    path.write_text("\n".join(lines) + "\n")
    if run is not None:
        path.with_suffix(".json").write_text(json.dumps(run))
    return path


def write_cohen(path: Path, rows: list[tuple]) -> Path:
    """rows: (label, predict, radius)."""
    lines = ["idx\tlabel\tpredict\tradius\tcorrect\ttime"]
    for i, (label, pred, radius) in enumerate(rows):
        correct = int(pred == label)
        lines.append(f"{i}\t{label}\t{pred}\t{radius}\t{correct}\t0:00:01.234")
    path.write_text("\n".join(lines) + "\n")
    return path


# 8 rows: 5 correct (l1 radii 0.1, 0.5, 0.5, 1.0, 2.0), 2 wrong with large radii, 1 abstention.
ROWS_A = [
    (0, 0, 0.60, 0.1, 0.05, 0.001),
    (1, 1, 0.80, 0.5, 0.30, 0.002),
    (2, 2, 0.80, 0.5, 0.30, 0.002),
    (3, 3, 0.90, 1.0, 0.60, 0.004),
    (4, 4, 0.99, 2.0, 1.20, 0.008),
    (5, 6, 0.99, 3.0, 2.00, 0.010),  # wrong, large radius: never certified
    (6, 7, 0.95, 1.5, 0.90, 0.006),  # wrong
    (7, -1, 0.40, 0.0, 0.00, 0.000),  # abstained: counts as wrong
]


@pytest.fixture
def file_a(tmp_path):
    return write_ours(tmp_path / "a.tsv", ROWS_A,
                      run={"noise": {"name": "uniform", "sigma": 0.5}})


def test_certified_accuracy_counts_by_hand(file_a):
    res = read_results(file_a)
    assert len(res) == 8 and res.format == "smoothcert"
    assert set(res.norms) == {Norm.L1, Norm.L2, Norm.LINF}
    radii = [0.0, 0.1, 0.2, 0.5, 0.75, 1.0, 2.0, 2.5]
    assert certified_counts(res, radii, "l1").tolist() == [5, 5, 4, 4, 2, 2, 1, 0]
    acc = certified_accuracy(res, radii, Norm.L1)
    assert acc.dtype == np.float64
    np.testing.assert_allclose(acc, np.array([5, 5, 4, 4, 2, 2, 1, 0]) / 8, rtol=0, atol=1e-15)
    # other norms read from their own columns
    assert certified_counts(res, [0.3, 0.6], "l2").tolist() == [4, 2]
    assert certified_counts(res, [0.004], "linf").tolist() == [2]


def test_radius_is_inclusive_and_zero_means_correct_not_abstained(tmp_path):
    rows = [(0, 0, 0.7, 0.5, 0.5, 0.5), (1, -1, 0.3, 0.0, 0.0, 0.0), (2, 2, 0.7, 0.5, 0.5, 0.5)]
    res = read_results(write_ours(tmp_path / "b.tsv", rows))
    # radius >= r, so r equal to the radius is certified; abstention never is, even at r = 0
    assert certified_counts(res, [0.0, 0.5, np.nextafter(0.5, 1)], "l1").tolist() == [2, 2, 0]


def test_average_certified_radius(file_a):
    res = read_results(file_a)
    assert average_certified_radius(res, "l1") == pytest.approx((0.1 + 0.5 + 0.5 + 1 + 2) / 8,
                                                                rel=1e-15)
    assert average_certified_radius(res, "l2") == pytest.approx((0.05 + 0.6 + 0.6 + 1.2) / 8,
                                                                rel=1e-15)


def test_run_json_is_attached(file_a):
    assert read_results(file_a).run["noise"]["name"] == "uniform"


def test_cohen_format_is_l2(tmp_path):
    path = write_cohen(tmp_path / "cohen.tsv",
                       [(3, 3, 0.8), (5, 5, 0.2), (1, -1, 0.0), (2, 4, 1.5), (9, 9, 0.0)])
    res = read_results(path)
    assert res.format == "cohen" and res.norms == (Norm.L2,)
    assert certified_counts(res, [0.0, 0.25, 0.5, 1.0], "l2").tolist() == [3, 1, 1, 0]
    assert average_certified_radius(res, "l2") == pytest.approx(1.0 / 5, rel=1e-15)
    with pytest.raises(ValueError, match="no l1 radii"):
        certified_counts(res, [0.5], "l1")


def test_envelope_takes_the_exact_maximum(tmp_path):
    # a: 3 rows, 1 certified at 0.5 (1/3); b: 7 rows, 2 certified at 0.5 (2/7 < 1/3)
    # at 0.0: a 2/3, b 5/7 (> 2/3); at 1.0: a 0/3, b 1/7
    a = read_results(write_ours(tmp_path / "a.tsv", [
        (0, 0, 0.8, 0.6, 0, 0), (1, 1, 0.6, 0.2, 0, 0), (2, -1, 0.4, 0, 0, 0)]))
    b = read_results(write_ours(tmp_path / "b.tsv", [
        (0, 0, 0.9, 1.0, 0, 0), (1, 1, 0.8, 0.5, 0, 0), (2, 2, 0.6, 0.1, 0, 0),
        (3, 3, 0.6, 0.1, 0, 0), (4, 4, 0.6, 0.1, 0, 0), (5, 6, 0.9, 3.0, 0, 0),
        (6, -1, 0.1, 0, 0, 0)]))
    radii = [0.0, 0.5, 1.0]
    env = envelope([accuracy_curve(a, radii, "l1"), accuracy_curve(b, radii, "l1")])
    assert env.fractions() == [Fraction(5, 7), Fraction(1, 3), Fraction(1, 7)]
    assert env.source == ("b", "a", "b")
    with pytest.raises(ValueError, match="other radii"):
        envelope([accuracy_curve(a, radii, "l1"), accuracy_curve(b, [0.0], "l1")])


@pytest.mark.parametrize("num,den,digits,expected", [
    (2, 3, 1, "66.6"),       # rounding to nearest would give 66.7
    (2, 3, 0, "66"),
    (9999, 10000, 1, "99.9"),  # not 100.0
    (1, 1, 1, "100.0"),
    (0, 7, 2, "0.00"),
    (1, 8, 2, "12.50"),
    (57, 100, 0, "57"),      # 0.57 * 100 is 56.99999... in floating point; exact here
])
def test_floor_percent_rounds_down_exactly(num, den, digits, expected):
    assert floor_percent(num, den, digits) == expected


def test_float_accuracies_never_exceed_the_exact_fraction(tmp_path):
    for total in (3, 7, 10, 49, 97, 100, 1017):
        rows = [(i, i if i < total - 1 else -1, 0.9, float(i), 0, 0) for i in range(total)]
        res = read_results(write_ours(tmp_path / f"f{total}.tsv", rows))
        radii = np.arange(total, dtype=np.float64)
        counts = certified_counts(res, radii, "l1")
        assert counts.tolist() == [max(total - 1 - k, 0) for k in range(total)]
        for value, count in zip(certified_accuracy(res, radii, "l1"), counts, strict=True):
            exact = Fraction(int(count), total)
            assert Fraction(float(value)) <= exact
            assert Fraction(math.nextafter(float(value), math.inf)) > exact


def test_tables_round_down_and_contain_envelope(file_a, tmp_path):
    other = read_results(write_ours(tmp_path / "b.tsv", [(0, 0, 0.9, 3.0, 0, 0),
                                                          (1, 1, 0.9, 0.2, 0, 0),
                                                          (2, 5, 0.9, 0.2, 0, 0)]))
    curves = [accuracy_curve(read_results(file_a), [0.0, 0.5, 2.5], "l1"),
              accuracy_curve(other, [0.0, 0.5, 2.5], "l1")]
    text = format_accuracy_table(curves, fmt="markdown", acr=[0.5125, 3.2 / 3])
    lines = text.strip().splitlines()
    assert lines[0] == "| run | l1 r=0 | l1 r=0.5 | l1 r=2.5 | ACR |"
    # a: 5/8, 4/8, 0/8; b: 2/3, 1/3, 1/3; envelope: 2/3, 1/2, 1/3 (all rounded down)
    assert lines[2] == "| a | 62.5 | 50.0 | 0.0 | 0.512 |"
    assert lines[3] == "| b | 66.6 | 33.3 | 33.3 | 1.066 |"
    assert lines[4] == "| envelope | 66.6 | 50.0 | 33.3 |  |"
    plain = format_accuracy_table(curves, fmt="table", digits=0)
    assert plain.splitlines()[-1].split() == ["envelope", "66", "50", "33"]
    latex = format_accuracy_table(curves, fmt="latex")
    assert r"\begin{tabular}{lrrr}" in latex and r"envelope & 66.6 & 50.0 & 33.3 \\" in latex


def test_csv_layout(file_a, tmp_path):
    cohen = write_cohen(tmp_path / "base_line.tsv", [(0, 0, 0.3), (1, 1, 0.1), (2, 3, 0.9)])
    out = tmp_path / "table.csv"
    code = main(["analyze", str(file_a), str(cohen), "--norm", "l2", "--radii", "0,0.25,0.5",
                 "--format", "csv", "--labels", "mine,cohen", "--out", str(out)])
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(table[0]) == ["radius", "mine", "cohen", "envelope"]
    assert [float(row["radius"]) for row in table] == [0.0, 0.25, 0.5]
    # mine (l2): correct radii 0.05, 0.3, 0.3, 0.6, 1.2 of 8 rows; cohen: 0.3, 0.1 of 3
    assert [float(row["mine"]) for row in table] == pytest.approx([5 / 8, 4 / 8, 2 / 8])
    assert [float(row["cohen"]) for row in table] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert [float(row["envelope"]) for row in table] == pytest.approx([2 / 3, 4 / 8, 2 / 8])


def test_cli_table_to_stdout(file_a, capsys):
    assert main(["analyze", str(file_a), "--norm", "l1", "--radii", "0:1:0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "l1", "r=0", "l1", "r=0.5", "l1", "r=1", "ACR"]
    assert lines[2].split() == ["a", "62.5", "50.0", "25.0", "0.512"]


def test_cli_needs_norm_when_ambiguous(file_a, capsys):
    assert main(["analyze", str(file_a)]) == 2
    assert "--norm" in capsys.readouterr().err


def test_parse_radii():
    assert parse_radii("0:4:0.5").tolist() == [0.5 * k for k in range(9)]
    assert parse_radii("0, 0.25,0.5").tolist() == [0.0, 0.25, 0.5]
    assert parse_radii("0,2/255").tolist() == [0.0, 2 / 255]
    assert parse_radii("0,0.25,...,1").tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_radii("0:2").tolist() == [0.0, 1.0, 2.0]  # start:stop, step 1
    assert parse_radii("0:0.3:0.1").tolist() == [0.0, 0.1, 0.2, 0.3]  # the end is not lost
    assert default_radii("l2").tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for bad in ("", "a,b", "1:0:0.5", "0:1:0", "0:1:2:3", "0,1,...", "-1,2"):
        with pytest.raises(ValueError):
            parse_radii(bad)


@pytest.mark.parametrize("text,match", [
    ("idx\tfoo\n0\t1\n", "unrecognised header"),
    ("idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\n0\t1\t1\t0.9\t0.5\n", "5 fields"),
    ("idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\n0\t1\t2\t0.9\t0.5\t1\n", "contradicts"),
    ("idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\n0\t1\t-1\t0.4\t0\t1\n", "contradicts"),
    ("idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\n0\t1\t1\t0.9\tnan\t1\n", "radius_l1"),
    ("idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\n"
     "0\t1\t1\t0.9\t0.2\t1\n0\t1\t1\t0.9\t0.2\t1\n", "more than once"),
])
def test_malformed_files_are_rejected(tmp_path, text, match):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_results(path)


def test_default_labels_tell_equal_stems_apart(tmp_path):
    paths = [tmp_path / "x" / "certify.tsv", tmp_path / "y" / "certify.tsv"]
    assert default_labels(paths) == ["x/certify", "y/certify"]
    assert default_labels([tmp_path / "a.tsv", tmp_path / "b.tsv"]) == ["a", "b"]


def test_an_interrupted_last_line_is_dropped_a_complete_one_kept(tmp_path, caplog):
    header = "idx\tlabel\tprediction\tp_lower\tradius_l1\tcorrect\tsamples\tseconds\n"
    rows = "0\t1\t1\t0.9\t0.5\t1\t100\t0.1\n1\t2\t2\t0.9\t0.7\t1\t100\t0.1\n"
    path = tmp_path / "cut.tsv"
    path.write_text(header + rows + "2\t3\t3\t0.9\t0.")          # cut inside radius_l1
    assert read_results(path).idx.tolist() == [0, 1]
    assert "incomplete last line" in caplog.text
    path.write_text(header + rows + "2\t3\t3\t0.9\t0.8\t1\t100\t0.")  # all fields, no newline
    res = read_results(path)
    assert res.idx.tolist() == [0, 1, 2]
    assert certified_counts(res, [0.75], "l1").tolist() == [1]


def test_by_noise_gives_one_envelope_per_family(tmp_path):
    def record(name, sigma):
        return {"configuration": {"noise": {"name": name, "sigma": sigma}}}

    # uniform at two sigmas: correct l1 radii (0.2, 0.6) and (0.4, 0.4) of 2 rows each;
    # laplace: correct radius 1.0 of 2 rows.
    u1 = write_ours(tmp_path / "u1.tsv", [(0, 0, 0.9, 0.2, 0, 0), (1, 1, 0.9, 0.6, 0, 0)],
                    run=record("uniform", 0.25))
    u2 = write_ours(tmp_path / "u2.tsv", [(0, 0, 0.9, 0.4, 0, 0), (1, 1, 0.9, 0.4, 0, 0)],
                    run=record("uniform", 0.5))
    lp = write_ours(tmp_path / "l.tsv", [(0, 0, 0.9, 1.0, 0, 0), (1, 2, 0.9, 1.0, 0, 0)],
                    run=record("laplace", 0.5))
    out = tmp_path / "families.csv"
    assert main(["analyze", str(u1), str(lp), str(u2), "--by-noise", "--norm", "l1",
                 "--radii", "0.3,0.5,0.8", "--format", "csv", "--out", str(out)]) == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(table[0]) == ["radius", "uniform", "laplace", "envelope"]
    # uniform envelope: max(1/2, 2/2) at 0.3, max(1/2, 0) at 0.5, 0 at 0.8
    assert [float(row["uniform"]) for row in table] == pytest.approx([1.0, 0.5, 0.0])
    assert [float(row["laplace"]) for row in table] == pytest.approx([0.5, 0.5, 0.5])
    assert [float(row["envelope"]) for row in table] == pytest.approx([1.0, 0.5, 0.5])


def test_noise_family_names_the_shape_when_it_is_not_the_default(tmp_path):
    from smoothcert.analysis.results import group_by_noise, noise_family

    def run(path, **noise):
        record = {"configuration": {"noise": {"dim": 784, "sigma": 0.5, "scale": 1.0, **noise}}}
        return read_results(write_ours(tmp_path / path, [(0, 0, 0.9, 0.5, 0, 0)], run=record))

    k1 = run("a.tsv", name="exp2", k=1.0, j=0.0)
    k2j = run("b.tsv", name="exp2", k=2.0, j=522.0)
    plain = run("c.tsv", name="exp2", k=2.0, j=0.0)   # exp2's defaults
    pow2 = run("d.tsv", name="pow2", k=2.0, a=794.0)   # a = d + 10 is the default at d = 784
    gauss = run("e.tsv", name="gaussian")
    assert [noise_family(r) for r in (k1, k2j, plain, pow2, gauss)] == [
        "exp2 k=1 j=0", "exp2 k=2 j=522", "exp2", "pow2", "gaussian"]
    assert list(group_by_noise([k1, plain, k1])) == ["exp2 k=1 j=0", "exp2"]
    # a record without dim or sigma still groups by its name
    bare = read_results(write_ours(tmp_path / "f.tsv", [(0, 0, 0.9, 0.5, 0, 0)],
                                   run={"configuration": {"noise": {"name": "exp2", "k": 1}}}))
    assert noise_family(bare) == "exp2"


def test_by_noise_needs_run_records(tmp_path, capsys):
    cohen = write_cohen(tmp_path / "cohen.tsv", [(0, 0, 0.3)])
    assert main(["analyze", str(cohen), "--by-noise", "--radii", "0"]) == 2
    assert "run record" in capsys.readouterr().err


def test_parse_values_is_exact_and_names_the_option():
    from smoothcert._values import parse_values

    betas = parse_values("0,0.1,...,0.9", "--betas")
    assert betas == [k / 10 for k in range(10)] and betas[3] == 0.3
    assert parse_values("0:20") == [float(k) for k in range(21)]
    assert parse_values("8, 11,14") == [8.0, 11.0, 14.0]
    with pytest.raises(ValueError, match=r"'x' in --alphas 'x,1' is not a number"):
        parse_values("x,1", "--alphas")
    with pytest.raises(ValueError, match=r"--betas must not be empty"):
        parse_values(" ", "--betas")
    with pytest.raises(ValueError, match=r"first,second,...,last"):
        parse_values("0,...,1", "--betas")


# ---------------------------------------------------------------------------------- messages
def test_a_bad_norm_or_radii_names_the_value_and_the_choices(file_a, capsys):
    with pytest.raises(SystemExit):
        main(["analyze", str(file_a), "--norm", "l3"])
    err = capsys.readouterr().err
    assert "unknown norm 'l3'; choose from 'l1', 'l2', 'linf'" in err
    assert "invalid parse value" not in err
    with pytest.raises(SystemExit):
        main(["analyze", str(file_a), "--norm", "l1", "--radii", "0:x"])
    assert "'x' in radii '0:x' is not a number" in capsys.readouterr().err


def test_a_binary_file_is_a_clear_error(tmp_path, capsys):
    import torch

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.randn(64)}}, path)
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.pt' is not a results file: it is not UTF-8 text" in err
    assert "UnicodeDecodeError" not in err and len(err.strip().splitlines()) == 1


def test_out_needs_its_folder_and_its_suffix_picks_the_format(file_a, tmp_path, capsys):
    missing = tmp_path / "nonexistent" / "dir" / "x.md"
    assert main(["analyze", str(file_a), "--norm", "l1", "--out", str(missing)]) == 2
    assert "folder of --out" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists()
    expected = {".md": "| run | l1 r=0 |", ".csv": "radius,a,envelope", ".tex": r"\begin{tabular}",
                ".txt": "run       l1 r=0  l1 r=0.5"}
    for suffix, start in expected.items():
        out = tmp_path / f"t{suffix}"
        assert main(["analyze", str(file_a), "--norm", "l1", "--out", str(out)]) == 0
        assert out.read_text().startswith(start), suffix
    # --format wins over the suffix; an unknown suffix needs --format
    out = tmp_path / "t2.md"
    assert main(["analyze", str(file_a), "--norm", "l1", "--format", "csv", "--out",
                 str(out)]) == 0
    assert out.read_text().startswith("radius,")
    assert main(["analyze", str(file_a), "--norm", "l1", "--out", str(tmp_path / "t.x")]) == 2
    assert "cannot tell the table format from the suffix '.x'" in capsys.readouterr().err
    assert not (tmp_path / "t.x").exists()


def _write_rows(path: Path, rows: list[tuple]) -> Path:
    """rows: (idx, label, prediction, l1 radius); l2 and linf radii are 0."""
    lines = ["\t".join(OUR_HEADER)]
    for idx, label, pred, r1 in rows:
        correct = int(pred == label and pred != -1)
        lines.append("\t".join(map(str, (idx, label, pred, 0.9, r1, 0, 0, correct, 441, 0.5))))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_common_restricts_every_file_to_the_shared_inputs(tmp_path, capsys):
    from smoothcert.analysis import common_inputs

    # ten inputs, all certified at l1 radius 1 except idx 3 and 5 (wrong): 8/10 = 80 %
    full = _write_rows(tmp_path / "full.tsv",
                       [(i, 1, 2 if i in (3, 5) else 1, 1.0) for i in range(10)])
    # every 5th input, listed out of order: idx 0 and 5 certified at 1, idx 9 at 0.2 only
    sub = _write_rows(tmp_path / "sub.tsv", [(9, 4, 4, 0.2), (0, 7, 7, 1.0), (5, 3, 3, 1.0)])
    a, b = common_inputs([read_results(full), read_results(sub)])
    assert sorted(a.idx.tolist()) == sorted(b.idx.tolist()) == [0, 5, 9]
    # on {0, 5, 9}: full has 0 and 9 right (2/3 at both radii), sub 3/3 at 0 and 2/3 at 0.5
    assert main(["analyze", str(full), str(sub), "--norm", "l1", "--radii", "0,0.5",
                 "--no-envelope", "--format", "csv", "--common"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    got = [(float(r["radius"]), float(r["full"]), float(r["sub"])) for r in rows]
    third = pytest.approx(2 / 3)
    assert got == [(0.0, third, 1.0), (0.5, third, third)]
    assert main(["analyze", str(full), "--norm", "l1", "--radii", "0", "--format", "csv"]) == 0
    assert float(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))[0]["full"]) == pytest.approx(0.8)
    png = tmp_path / "common.png"
    assert main(["plot", "certified", str(full), str(sub), "--norm", "l1", "--common",
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 0
    # nothing shared, or an input listed twice: a clear error
    other = _write_rows(tmp_path / "other.tsv", [(11, 1, 1, 1.0)])
    with pytest.raises(ValueError, match="share no input"):
        common_inputs([read_results(full), read_results(other)])
    twice = _write_rows(tmp_path / "twice.tsv", [(0, 1, 1, 1.0), (0, 1, 1, 1.0)])
    with pytest.raises(ValueError, match="more than once"):
        common_inputs([read_results(twice), read_results(full)])
