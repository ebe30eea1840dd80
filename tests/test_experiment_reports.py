"""The report logic of the experiment scripts (experiments/ is not a package: loaded by path)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


per_image = load("experiments/pal_sulam/mnist_per_image.py")


def wrong_on(first: int, last: int, n: int = 2000) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[first:last] = True
    return out


def test_comparisons_are_fixed_by_the_grid():
    assert per_image.comparisons([0.3, 0.4, 0.5, 0.6], 0.5) == [
        (0.3, 0.5), (0.3, 0.6), (0.4, 0.5), (0.4, 0.6), (0.6, 0.5)]
    # no alpha = beta evaluated: only below against at-or-above
    assert per_image.comparisons([0.2, 0.7], 0.5) == [(0.2, 0.7)]


def test_report_verdicts_by_hand(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    # beta = 0.5: alpha 0.3 wrong on 20 images, 0.4 on 60, 0.5 on 100, 0.6 on 90, nested, so
    # every discordant image goes one way; 0.6 against 0.5 is 0 : 10, p = 2 / 2^10
    for alpha, k in ((0.3, 20), (0.4, 60), (0.5, 100), (0.6, 90)):
        np.save(per_image.cell_path(tmp_path, alpha, 0.5), wrong_on(0, k))
    # beta = 0.7: alpha = beta errs on 10 images, 0.5 on 100 (nested): the refuting direction
    np.save(per_image.cell_path(tmp_path, 0.5, 0.7), wrong_on(0, 100))
    np.save(per_image.cell_path(tmp_path, 0.7, 0.7), wrong_on(0, 10))
    # beta = 0.9: 5 : 5 discordant, p = 1
    np.save(per_image.cell_path(tmp_path, 0.6, 0.9), wrong_on(0, 5))
    np.save(per_image.cell_path(tmp_path, 0.9, 0.9), wrong_on(5, 10))
    np.save(per_image.cell_path(tmp_path, 0.9, 0.9).with_suffix(".draws.npy"),
            np.full(2000, 51))
    per_image.report(tmp_path)
    with open(tmp_path / "tests.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 + 1 + 1
    seventy = next(line for line in (tmp_path / "tests.md").read_text().splitlines()
                   if line.startswith("| 0.7 |"))
    assert seventy.endswith("| no: 0.7 | no: α = β errs less than every other |")
    row = next(r for r in rows if (r["alpha_a"], r["alpha_b"]) == ("0.6", "0.5"))
    assert (int(row["wrong_only_a"]), int(row["wrong_only_b"])) == (0, 10)
    assert float(row["p_mcnemar"]) == pytest.approx(2 / 2**10, rel=1e-9)
    # Holm within beta = 0.5 (five p-values): 0.6 vs 0.5 has the largest, so it stays as it is;
    # the next, 0 : 30 (p = 2 / 2^30), is doubled
    assert float(row["p_holm"]) == pytest.approx(2 / 2**10, rel=1e-9)
    row = next(r for r in rows if (r["alpha_a"], r["alpha_b"]) == ("0.4", "0.6"))
    assert float(row["p_holm"]) == pytest.approx(2 * 2 / 2**30, rel=1e-9)
    row = next(r for r in rows if r["beta"] == "0.9")
    assert float(row["p_mcnemar"]) == float(row["p_holm"]) == 1.0
    table = (tmp_path / "tests.md").read_text().splitlines()
    half = next(line for line in table if line.startswith("| 0.5 |"))
    assert "| 0.3 | 1.00 [" in half and "| 5.00 [" in half
    assert "yes: 0.3, 0.4 |" in half
    assert "0.3 (0 : 80" in half and "0.4 (0 : 40" in half and "0.6 (0 : 10" in half
    # 0.3 against alpha = beta: 20 against 100 of 2,000 wrong, -4.00 points, with the paired
    # interval strictly below zero and containing the difference
    assert "0.3 (0 : 80, -4.00 [-" in half
    row = next(r for r in rows if (r["alpha_a"], r["alpha_b"]) == ("0.3", "0.5"))
    low, high = float(row["diff_low95"]), float(row["diff_high95"])
    assert float(row["difference"]) == pytest.approx(-0.04, abs=1e-15)
    assert low < -0.04 < high < 0
    ninety = next(line for line in table if line.startswith("| 0.9 |"))
    # undecided: the best other alpha (0.6, 5 errors like alpha = beta) against alpha = beta,
    # 5 : 5 images, a difference of 0 with a paired interval on both sides of it
    assert "| undecided | undecided (0.6 (5 : 5, +0.00 [-" in ninety, ninety
    low, high = (float(x) for x in ninety.split("[")[-1].split("]")[0].split(","))
    assert -1 < low < 0 < high < 1 and "points, Holm p = 1)) |" in ninety
    grid = (tmp_path / "risk.md").read_text().splitlines()
    assert grid[0] == "| β \\ α | 0.3 | 0.4 | 0.5 | 0.6 | 0.7 | 0.9 |"
    assert grid[2] == "| 0.5 | **1.00** | 3.00 | 5.00 | 4.50 |  |  |"
    assert grid[3] == "| 0.7 |  |  | 5.00 |  | **0.50** |  |"
    assert grid[4] == "| 0.9 |  |  |  | **0.25** |  | **0.25** |"
    with open(tmp_path / "risk.csv") as f:
        risk = {(r["alpha"], r["beta"]): r for r in csv.DictReader(f)}
    assert risk[("0.9", "0.9")]["passes_per_image"] == "51.0"
    assert risk[("0.3", "0.5")]["n_errors"] == "20" and risk[("0.3", "0.5")]["n"] == "2000"


def test_amend_adds_the_difference_columns_from_the_counts(tmp_path):
    cells = tmp_path / "cells"
    cells.mkdir()
    np.save(per_image.cell_path(tmp_path, 0.3, 0.5), wrong_on(0, 20))
    np.save(per_image.cell_path(tmp_path, 0.5, 0.5), wrong_on(10, 100))
    per_image.report(tmp_path)
    with open(tmp_path / "tests.csv") as f:
        full = list(csv.DictReader(f))
    old = tmp_path / "old.csv"
    keep = [k for k in full[0] if k not in ("difference", "diff_low95", "diff_high95")]
    with open(old, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keep)
        writer.writeheader()
        writer.writerows([{k: r[k] for k in keep} for r in full])
    verdicts = (tmp_path / "tests.md").read_text()
    assert "0.3 (10 : 80, -3.50 [" in verdicts
    (tmp_path / "tests.md").unlink()
    assert per_image.main(["--amend", str(old)]) == 0
    with open(old) as f:
        amended = list(csv.DictReader(f))
    assert amended == full
    assert (tmp_path / "tests.md").read_text() == verdicts   # from tests.csv and risk.csv alone
    assert float(amended[0]["difference"]) == pytest.approx((20 - 90) / 2000, abs=1e-15)
