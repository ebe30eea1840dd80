"""Every committed result under results/ still reads, and re-analyses to the committed tables
byte for byte (the commands are those of results/README.md and results/pal_sulam/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smoothcert.analysis import read_results
from smoothcert.cli.main import main
from smoothcert.runs.reading import read_run_record, read_table

RESULTS = Path(__file__).resolve().parents[1] / "results"

pytestmark = pytest.mark.skipif(not RESULTS.is_dir(), reason="no results/ folder here")

#: (folder, radii) of the Yang et al. tables (results/README.md, "Commands")
YANG = [("mnist", "0:1.5:0.25"), ("cifar10", "0:1:0.125")]


def _analyze(folder: Path, *args: str) -> int:
    files = sorted(str(p) for p in folder.glob("*/certify.tsv"))
    assert files, folder
    return main(["analyze", *files, *args])


@pytest.mark.parametrize("dataset,radii", YANG)
@pytest.mark.parametrize("name,extra", [("l1_by_noise.md", ["--by-noise", "--format", "markdown"]),
                                        ("l1_by_noise.csv", ["--by-noise", "--format", "csv"]),
                                        ("l1_runs.md", ["--format", "markdown"])])
def test_yang2020_tables_reproduce_byte_for_byte(tmp_path, monkeypatch, dataset, radii, name,
                                                 extra):
    # run from results/yang2020 as the README does, so the labels are the same
    monkeypatch.chdir(RESULTS / "yang2020")
    out = tmp_path / name
    assert _analyze(Path(dataset), "--norm", "l1", "--radii", radii, *extra,
                    "--out", str(out)) == 0
    assert out.read_bytes() == (RESULTS / "yang2020" / dataset / name).read_bytes()


def test_pal_sulam_certified_table_reproduces(monkeypatch, capsys):
    readme = (RESULTS / "pal_sulam" / "README.md").read_text(encoding="utf-8").splitlines()
    start = readme.index("| run | l2 r=0 | l2 r=0.25 | l2 r=0.5 | l2 r=0.75 | l2 r=1 | "
                         "l2 r=1.25 | l2 r=1.5 | ACR |")
    end = readme.index("", start)
    monkeypatch.chdir(RESULTS.parent)
    files = sorted(str(p.relative_to(RESULTS.parent))
                   for p in (RESULTS / "pal_sulam" / "mnist_certify").glob("*.tsv"))
    assert main(["analyze", *files, "--norm", "l2", "--radii", "0:1.5:0.25", "--no-envelope",
                 "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines() == readme[start:end]


def test_every_committed_results_file_reads():
    tsvs = sorted(RESULTS.rglob("*.tsv"))
    assert len(tsvs) >= 19
    for path in tsvs:
        table = read_table(path)
        assert table.header is not None and table.partial == "" and table.rows, path
        results = read_results(path)
        assert len(results) == len(table.rows)
        assert read_run_record(path)["configuration"]["task"] == "certify", path


#: the splitting-noise comparison's runs on the shared images, in the order of its report script
#: (experiments/lf21/mnist_full_report.sh)
LF21 = RESULTS / "lf21" / "mnist_full"
LF21_SHARED = [f"{noise}-{sigma}.tsv" for sigma in ("0.25", "0.5", "1.0")
               for noise in ("uniform", "ssn", "dssn")]


@pytest.mark.skipif(not (LF21 / "l1_shared.md").is_file(), reason="no lf21 report committed")
@pytest.mark.parametrize("name,extra", [("l1_shared.md", ["--no-envelope"]),
                                        ("l1_by_noise_shared.md", ["--by-noise"])])
def test_lf21_tables_reproduce_byte_for_byte(tmp_path, monkeypatch, name, extra):
    monkeypatch.chdir(LF21)
    out = tmp_path / name
    assert main(["analyze", *LF21_SHARED, "--common", "--norm", "l1", "--radii", "0:2:0.25",
                 *extra, "--out", str(out)]) == 0
    assert out.read_bytes() == (LF21 / name).read_bytes()


#: (table, norm, radii, order, pairs, files) of experiments/yang2020/mnist_l1.sh and mnist_linf.sh,
#: run from the repository root
_L1 = ([f"results/lf21/mnist_full/uniform-{s}.tsv" for s in ("0.25", "0.5", "1.0")]
       + ["results/yang2020/mnist_l1/laplace-0.25.tsv",
          "results/yang2020/mnist_l1_sigma05/laplace-0.5.tsv",
          "results/yang2020/mnist_l1/laplace-1.0.tsv",
          "results/yang2020/mnist_l1/gaussian-0.25.tsv",
          "results/yang2020/mnist_l1_sigma05/gaussian-0.5.tsv",
          "results/yang2020/mnist_l1/gaussian-1.0.tsv",
          "results/yang2020/mnist_l1/laplace-0.5-far.tsv",
          "results/yang2020/mnist_l1/gaussian-0.5-far.tsv",
          "results/yang2020/mnist_l1/laplace-0.25-far.tsv",
          "results/yang2020/mnist_l1/gaussian-0.25-far.tsv"])
_LINF = [f"results/yang2020/mnist_linf_sigma05/{f}-0.5.tsv"
         for f in ("gaussian", "laplace", "uniform", "exp_inf")]
_LINF025 = [f"results/yang2020/mnist_linf_sigma025/{f}-0.25.tsv"
            for f in ("gaussian", "laplace", "uniform", "exp_inf")]
_L2 = [f"results/yang2020/mnist_l2/{f}-{s}.tsv" for s in ("0.5", "0.25")
       for f in ("gaussian", "exp2k1", "exp2k2j522", "pow2", "uniform_ball")]
_L2_ORDER = "gaussian,exp2 k=1 j=0,exp2 k=2 j=522,pow2,uniform_ball"
PAIRED = [
    ("yang2020/mnist_l2/beats_gaussian.md", "l2", "0.25,0.5,0.75,1", _L2_ORDER,
     "exp2 k=1 j=0>gaussian,exp2 k=2 j=522>gaussian,pow2>gaussian,uniform_ball>gaussian", _L2),
    ("yang2020/mnist_l2/gaussian_beats.md", "l2", "0.25,0.5,0.75,1", _L2_ORDER,
     "gaussian>exp2 k=1 j=0,gaussian>exp2 k=2 j=522,gaussian>pow2,gaussian>uniform_ball", _L2),
    ("yang2020/mnist_l1/l1.md", "l1", "0.25,0.5,0.75,1,1.25,1.5", "uniform,laplace,gaussian", "",
     _L1),
    ("yang2020/mnist_l1/l1_reverse.md", "l1", "0.25,0.5,0.75,1,1.25,1.5",
     "uniform,laplace,gaussian", "laplace>uniform,gaussian>laplace", _L1),
    ("yang2020/mnist_linf_sigma05/beats_gaussian.md", "linf",
     "0.001,0.002,0.0039,0.0078,0.0157,0.0314", "gaussian,laplace,uniform,exp_inf",
     "laplace>gaussian,uniform>gaussian,exp_inf>gaussian", _LINF),
    ("yang2020/mnist_linf_sigma05/gaussian_beats.md", "linf",
     "0.001,0.002,0.0039,0.0078,0.0157,0.0314", "gaussian,laplace,uniform,exp_inf",
     "gaussian>laplace,gaussian>uniform,gaussian>exp_inf", _LINF),
    ("yang2020/mnist_linf_sigma025/beats_gaussian.md", "linf",
     "0.0005,0.001,0.002,0.0039,0.0078,0.0157", "gaussian,laplace,uniform,exp_inf",
     "laplace>gaussian,uniform>gaussian,exp_inf>gaussian", _LINF025),
    ("yang2020/mnist_linf_sigma025/gaussian_beats.md", "linf",
     "0.0005,0.001,0.002,0.0039,0.0078,0.0157", "gaussian,laplace,uniform,exp_inf",
     "gaussian>laplace,gaussian>uniform,gaussian>exp_inf", _LINF025),
]


@pytest.mark.parametrize("table,norm,radii,order,pairs,files", PAIRED,
                         ids=[p[0] for p in PAIRED])
def test_paired_tables_reproduce_byte_for_byte(tmp_path, monkeypatch, capsys, table, norm,
                                               radii, order, pairs, files):
    from test_experiment_reports import load

    root = RESULTS.parent
    if not all((root / f).is_file() for f in files):
        pytest.skip("the certification files of this table are not all here")
    paired = load("experiments/yang2020/paired.py")
    monkeypatch.chdir(root)   # the labels are the file names; the run from the root as scripted
    args = [*files, "--norm", norm, "--radii", radii, "--order", order,
            "--out", str(tmp_path / "t")]
    if pairs:
        args += ["--pairs", pairs]
    assert paired.main(args) == 0
    assert capsys.readouterr().out == (RESULTS / table).read_text()
