"""The README's main command, ``smoothcert demo``, at its smoke-test size."""

from __future__ import annotations

import csv
import io
import json
import math

import matplotlib.image
import numpy as np
import pytest
from scipy.stats import norm as normal

from smoothcert.analysis import read_results
from smoothcert.cli.main import main

D = 64  # digits: 1 x 8 x 8


def closed_form_radii(noise: str, sigma: float, p: np.ndarray) -> dict[str, np.ndarray]:
    """SPEC 3.1 closed forms at this sigma, with the lp conversion of SPEC 3.5 to the norm the
    family does not certify: the best over its direct norms, where an l1 radius becomes
    R / sqrt(d) in l2 and an l2 or linf radius carries over to a smaller-p norm unchanged."""
    if noise == "uniform":
        scale = sigma * math.sqrt(3)
        l1 = 2 * scale * (p - 0.5)
        linf = 2 * scale * (1 - (1.5 - p) ** (1 / D))
        return {"l1": l1, "l2": np.maximum(l1 / math.sqrt(D), linf)}
    if noise == "laplace":
        # the l2 radius also draws on Laplace's exact linf certificate (SPEC 3.2), which has no
        # closed form: only the l1 closed form is pinned here, l2 is bounded below by it
        l1 = -np.log(2 * (1 - p)) * sigma / math.sqrt(2)
        return {"l1": l1, "l2": l1 / math.sqrt(D)}
    l2 = sigma * normal.ppf(p)
    return {"l1": l2, "l2": l2}


def check_dssn_run(out):
    """The DSSN row: exact certificates from L = floor(2 sqrt(3) 0.5 16) = 27 votes on the
    grid of sixteenths, checked against bounds any vote vector with that top share obeys."""
    tsv = out / "certify" / "dssn-sigma0.5.tsv"
    res = read_results(tsv)
    length = math.floor(2 * math.sqrt(3) * 0.5 * 16)
    assert length == 27 and len(res) >= 10
    record = json.loads(tsv.with_suffix(".json").read_text())
    noise = record["configuration"]["noise"]
    assert noise["name"] == "dssn" and noise["quantization"] == 16
    assert "grid" in noise["threat_model"]
    assert (res.prediction != -1).all()  # an exact vote never abstains
    rows = list(csv.DictReader(io.StringIO(tsv.read_text()), delimiter="\t"))
    assert {int(row["samples"]) for row in rows} == {length}
    votes = np.rint(res.p_lower * length)
    np.testing.assert_allclose(votes / length, res.p_lower, rtol=0, atol=1e-12)
    steps = np.rint(res.radii("l1") * 16)
    np.testing.assert_allclose(steps / 16, res.radii("l1"), rtol=0, atol=1e-12)
    # c_A - m >= (everything else) + m for the certified m, at best all others at 0 votes
    assert (steps <= votes // 2).all()
    assert (steps >= np.floor((2 * votes - length - 1) / 2)).all()
    np.testing.assert_allclose(res.radii("l2"), res.radii("l1") / math.sqrt(D), rtol=1e-12)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_demo_writes_results_tables_and_figure(demo_run):
    out = demo_run
    for noise in ("uniform", "laplace", "gaussian"):
        tsv = out / "certify" / f"{noise}-sigma0.5.tsv"
        res = read_results(tsv)
        # --quick certifies one test image in 25 of digits' test split
        assert len(res) >= 10 and res.idx.tolist() == list(range(0, 25 * len(res), 25))
        assert {n.value for n in res.norms} == {"l1", "l2"}
        record = json.loads(tsv.with_suffix(".json").read_text())
        config = record["configuration"]
        assert config["convert"] is True
        assert config["noise"]["name"] == noise and config["noise"]["sigma"] == 0.5
        assert config["converted_norms"] == (["l1"] if noise == "gaussian" else ["l2"])
        # the radii are the closed forms (with conversion where it applies) at p_lower
        certified = res.prediction != -1
        assert certified.any()
        assert (res.p_lower[certified] > 0.5).all()
        expected = closed_form_radii(noise, 0.5, res.p_lower[certified])
        for norm in ("l1", "l2"):
            got = res.radii(norm)[certified]
            if noise == "laplace" and norm == "l2":
                assert (got >= expected[norm] * (1 - 1e-6)).all()
                # and never above the l1 radius, which contains every l2 ball of equal radius
                assert (got <= res.radii("l1")[certified]).all()
            else:
                np.testing.assert_allclose(got, expected[norm], rtol=1e-6)
            assert (res.radii(norm)[~certified] == 0).all()
        assert (out / "models" / f"{noise}-sigma0.5.pt").is_file()

    check_dssn_run(out)

    rows = list(csv.DictReader(io.StringIO((out / "envelope_l1.csv").read_text())))
    columns = ["uniform", "laplace", "gaussian (converted)", "dssn"]
    assert list(rows[0]) == ["radius", *columns, "envelope"]
    assert float(rows[0]["radius"]) == 0.0
    for row in rows:
        families = [float(row[k]) for k in columns]
        assert float(row["envelope"]) == max(families)
    # at radius 0 a family's envelope is its best clean certified accuracy: recount it by hand
    uniform = read_results(out / "certify" / "uniform-sigma0.5.tsv")
    assert float(rows[0]["uniform"]) == pytest.approx(np.mean(uniform.correct), abs=1e-15)

    summary = (out / "summary.md").read_text()
    assert "## l1" in summary and "## l2" in summary and "| envelope |" in summary
    png = out / "certified.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(png).shape[2] in (3, 4)


def test_demo_rerun_reuses_models_and_results(demo_run, capsys):
    before = (demo_run / "certify" / "laplace-sigma0.5.tsv").read_text()
    assert main(["demo", "--quick", "--out", str(demo_run)]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("(0 reused)") == 0 and captured.err.count("reused") == 4
    assert "| envelope |" in captured.out
    assert (demo_run / "certify" / "laplace-sigma0.5.tsv").read_text() == before
