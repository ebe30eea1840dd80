"""Sweeps: TOML expansion, --dry-run command lines, skip-if-done, --only, running order."""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path

import pytest
import torch

from smoothcert.cli.main import build_parser, main
from smoothcert.models.checkpoint import save_checkpoint
from smoothcert.runs.sweep import load_sweep, parse_sweep, run_jobs, select_jobs

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

SMALL = """
[sweep]
out = "OUT"

[common]
dataset = "digits"

[train]
arch = "mlp"
epochs = 3

[certify]
norms = ["l1", "l2"]
convert = true
n0 = 16
n = 100
skip = 40

[[grid]]
noise = "uniform"
sigma = [0.25, 0.5]
train.stability = [false, true]

[[grid]]
noise = "gaussian"
sigma = 0.5
certify.sigma = [0.25, 0.5]
"""


@pytest.fixture
def small(tmp_path):
    out = tmp_path / "runs"
    path = tmp_path / "small.toml"
    path.write_text(SMALL.replace("OUT", out.as_posix()))
    return path, out


def dry_run(path: Path, capsys, *extra: str) -> list[str]:
    assert main(["sweep", str(path), "--dry-run", *extra]) == 0
    return capsys.readouterr().out.splitlines()


def test_dry_run_prints_the_exact_commands(small, capsys):
    path, out = small
    lines = dry_run(path, capsys)
    # 4 uniform points (2 sigma x 2 stability) and 1 Gaussian model certified at 2 sigmas:
    # 5 training jobs, 6 certification jobs, each training job before its certifications
    assert len(lines) == 11
    u = out / "uniform-sigma0.25"
    assert lines[0] == (f"smoothcert train --dataset digits --arch mlp --epochs 3 --noise uniform "
                        f"--sigma 0.25 --out {u}/checkpoint.pt --resume")
    assert lines[1] == (f"smoothcert certify --checkpoint {u}/checkpoint.pt --dataset digits "
                        f"--norms l1,l2 --convert --n0 16 --n 100 --skip 40 --noise uniform "
                        f"--sigma 0.25 --out {u}/certify.tsv")
    s = out / "uniform-sigma0.25-stability"
    assert lines[2] == (f"smoothcert train --dataset digits --arch mlp --epochs 3 --noise uniform "
                        f"--sigma 0.25 --stability --out {s}/checkpoint.pt --resume")
    g = out / "gaussian-sigma0.5"
    assert lines[8:] == [
        f"smoothcert train --dataset digits --arch mlp --epochs 3 --noise gaussian --sigma 0.5 "
        f"--out {g}/checkpoint.pt --resume",
        f"smoothcert certify --checkpoint {g}/checkpoint.pt --dataset digits --norms l1,l2 "
        f"--convert --n0 16 --n 100 --skip 40 --noise gaussian --sigma 0.25 "
        f"--out {g}/certify-sigma0.25.tsv",
        f"smoothcert certify --checkpoint {g}/checkpoint.pt --dataset digits --norms l1,l2 "
        f"--convert --n0 16 --n 100 --skip 40 --noise gaussian --sigma 0.5 "
        f"--out {g}/certify-sigma0.5.tsv",
    ]
    # every line is a command smoothcert's own parser accepts
    parser = build_parser()
    for line in lines:
        parser.parse_args(shlex.split(line)[1:])


def test_only_selects_jobs_and_their_training(small, capsys):
    path, out = small
    lines = dry_run(path, capsys, "--only", "gaussian-*/certify-sigma0.25")
    assert [shlex.split(line)[1] for line in lines] == ["train", "certify"]
    assert lines[1].endswith("certify-sigma0.25.tsv")
    lines = dry_run(path, capsys, "--only", "*-stability/*", "--only", "gaussian*/train")
    assert len(lines) == 5
    assert main(["sweep", str(path), "--dry-run", "--only", "nothing*"]) == 2


def fake_checkpoint(path: Path, *, epoch: int, epochs: int = 3, sigma: float = 0.25,
                    stability: bool = False) -> None:
    config = {"dataset": "digits", "arch": "mlp", "noise": "uniform", "train_sigma": sigma,
              "epochs": epochs, "stability": stability, "dataset_options": {}}
    save_checkpoint(path, model=torch.nn.Linear(64, 10), arch="mlp", dataset="digits",
                    num_classes=10, input_shape=(1, 8, 8), train_noise=None, config=config,
                    epoch=epoch)


def fake_results(path: Path, indices, *, n: int = 100, record: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["idx\tlabel\tprediction\tp_lower\tradius_l1\tradius_l2\tcorrect\tsamples\tseconds"]
    lines += [f"{i}\t1\t1\t0.9\t0.5\t0.1\t1\t116\t0.01" for i in indices]
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").unlink(missing_ok=True)
    if record:
        configuration = {"task": "certify", "noise": {"name": "uniform", "sigma": 0.25},
                         "n0": 16, "n": n, "alpha": 0.001, "norms": ["l1", "l2"],
                         "convert": True, "skip": 40, "seed": 0, "dataset": "digits",
                         "split": "test", "classes": None}
        path.with_suffix(".json").write_text(json.dumps({"configuration": configuration}))


def test_complete_jobs_are_skipped(small, capsys):
    from smoothcert.data import get_dataset

    path, out = small
    folder = out / "uniform-sigma0.25"
    # digits' test split, every 40th image: the rows a complete run has
    wanted = list(range(0, len(get_dataset("digits", split="test")), 40))
    assert len(wanted) >= 5

    def listed() -> list[str]:
        return [line.split(" --out ")[1] for line in dry_run(path, capsys)]

    ckpt, tsv = f"{folder}/checkpoint.pt --resume", f"{folder}/certify.tsv"
    assert ckpt in listed() and tsv in listed()

    fake_checkpoint(folder / "checkpoint.pt", epoch=2)           # 2 of 3 epochs: resume it
    assert ckpt in listed()
    fake_checkpoint(folder / "checkpoint.pt", epoch=3)           # all epochs
    assert ckpt not in listed() and tsv in listed()
    fake_checkpoint(folder / "checkpoint.pt", epoch=3, sigma=0.5)  # another training noise
    assert ckpt in listed()
    fake_checkpoint(folder / "checkpoint.pt", epoch=3)

    fake_results(folder / "certify.tsv", wanted[:-1])            # one row missing
    assert tsv in listed()
    fake_results(folder / "certify.tsv", wanted, record=False)   # no run record
    assert tsv in listed()
    fake_results(folder / "certify.tsv", wanted, n=1000)         # written with another n
    assert tsv in listed()
    fake_results(folder / "certify.tsv", wanted)                 # complete
    assert tsv not in listed() and ckpt not in listed()
    # --all lists complete jobs too; other points are unaffected
    assert len(dry_run(path, capsys, "--all")) == 11
    assert len(dry_run(path, capsys)) == 9


def test_run_jobs_order_skip_and_failure(small):
    path, out = small
    sweep = load_sweep(path)
    fake_checkpoint(out / "uniform-sigma0.25" / "checkpoint.pt", epoch=3)
    ran: list[list[str]] = []

    def runner(command: list[str]) -> int:
        ran.append(command)
        # the training job of the second point fails
        return 1 if command[1] == "train" and "uniform-sigma0.25-stability" in command[-2] else 0

    status = run_jobs(sweep.jobs, program=["prog"], runner=runner, keep_going=True)
    assert status["uniform-sigma0.25/train"] == "skipped"
    assert status["uniform-sigma0.25/certify"] == "done"
    assert status["uniform-sigma0.25-stability/train"] == "failed"
    assert status["uniform-sigma0.25-stability/certify"] == "blocked"
    assert status["gaussian-sigma0.5/certify-sigma0.5"] == "done"
    assert all(command[0] == "prog" for command in ran) and len(ran) == 9
    # without keep_going the sweep stops at the first failure
    ran.clear()
    status = run_jobs(sweep.jobs, program=["prog"], runner=runner)
    assert list(status.values()) == ["skipped", "done", "failed"]


def test_names_and_templates():
    data = {"sweep": {"out": "o", "name": "{noise}_{sigma}_{train.seed}"},
            "train": {"arch": "mlp", "epochs": 1},
            "grid": [{"noise": "laplace", "sigma": [1.0, 2.5], "train": {"seed": [0, 1]}}]}
    names = [job.name for job in parse_sweep(data).jobs]
    assert names == ["laplace_1.0_0/train", "laplace_1.0_0/certify",
                     "laplace_1.0_1/train", "laplace_1.0_1/certify",
                     "laplace_2.5_0/train", "laplace_2.5_0/certify",
                     "laplace_2.5_1/train", "laplace_2.5_1/certify"]
    data["sweep"]["name"] = "{noise}"  # drops sigma and seed: different jobs, one name
    with pytest.raises(ValueError, match="both named"):
        parse_sweep(data)
    data["sweep"]["name"] = "{nonesuch}"
    with pytest.raises(ValueError, match="cannot be filled"):
        parse_sweep(data)


def test_certify_only_sweep_needs_a_checkpoint():
    with pytest.raises(ValueError, match="checkpoint"):
        parse_sweep({"sweep": {"out": "o"}, "certify": {"n": 10}})
    sweep = parse_sweep({"sweep": {"out": "o"}, "certify": {"checkpoint": "m.pt"},
                         "grid": [{"certify": {"sigma": [0.25, 0.5]}}]})
    assert [job.kind for job in sweep.jobs] == ["certify", "certify"]
    assert sweep.jobs[0].args[:3] == ("certify", "--checkpoint", "m.pt")
    assert select_jobs(sweep.jobs, ["*0.5"])[0].output == Path("o/default/certify-sigma0.5.tsv")


@pytest.mark.parametrize("data,match", [
    ({"sweep": {"out": "o"}, "trian": {}}, "unknown section"),
    ({"sweep": {}}, "needs out"),
    ({"sweep": {"out": "o", "nmae": "x"}}, "unknown key"),
    ({"sweep": {"out": "o"}, "train": {}, "grid": [{"sigma": []}]}, "empty list"),
    ({"sweep": {"out": "o"}, "train": {}, "grid": [{"sigma": {"a": {"b": 1}}}]},
     "option values"),
    ({"sweep": {"out": "o"}, "train": {}, "grid": [{"sigma": {}}]}, "non-empty table"),
    ({"sweep": {"out": "o"}, "train": {}, "certify": {"radii": [{"l1": 1}]}}, "option values"),
])
def test_bad_sweeps_are_rejected(data, match):
    with pytest.raises(ValueError, match=match):
        parse_sweep(data)


def certify_only_sweep(tmp_path: Path, certify: str) -> Path:
    """A sweep file of certification jobs only, outputs under tmp_path."""
    path = tmp_path / "sweep.toml"
    path.write_text(f'[sweep]\nout = "{tmp_path.as_posix()}"\n[certify]{certify}')
    return path


def test_a_table_gives_a_repeatable_option_once_per_entry(tmp_path, capsys):
    path = certify_only_sweep(tmp_path, """
checkpoint = "m.pt"
dataset = "digits"
noise = "gaussian"
sigma = 0.5
norms = ["l1", "linf"]
convert = true
mode = "adaptive"
radii = {l1 = [0.5, 1], linf = 0.001}
[[grid]]
certify.sigma = [0.25]
[[grid]]
certify.radii = [{l1 = 0.25}, {l1 = 2, linf = [0.002, 0.004]}]
""")
    lines = dry_run(path, capsys)
    goals = [[v for k, v in itertools.pairwise(shlex.split(line)) if k == "--radii"]
             for line in lines]
    assert goals == [["l1=0.5,1", "linf=0.001"], ["l1=0.25"], ["l1=2", "linf=0.002,0.004"]]
    # the names tell the goals apart; certify's own parser takes every line
    assert [shlex.split(line)[-1].rsplit("/", 1)[-1] for line in lines] == [
        "certify-sigma0.25.tsv", "certify-radii_l1=0.25.tsv",
        "certify-radii_l1=2_linf=0.002+0.004.tsv"]
    parser = build_parser()
    for line in lines:
        assert parser.parse_args(shlex.split(line)[1:]).radii


def test_a_table_for_a_single_valued_option_is_refused(tmp_path, capsys):
    path = certify_only_sweep(tmp_path, """
checkpoint = "m.pt"
n = {l1 = 100}
""")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "'n' of certify takes one value" in err and "radii" in err
    assert sorted(tmp_path.iterdir()) == [path]  # nothing written


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[sweep\nout = 1")
    with pytest.raises(ValueError, match="bad.toml"):
        load_sweep(path)


@pytest.mark.parametrize("name", sorted(p.name for p in EXPERIMENTS.glob("*.toml")))
def test_experiment_files_expand_to_valid_commands(name):
    sweep = load_sweep(EXPERIMENTS / name)
    parser = build_parser()
    for job in sweep.jobs:
        args = parser.parse_args(list(job.args))
        assert args.command == job.kind
    trains = [job for job in sweep.jobs if job.kind == "train"]
    certs = [job for job in sweep.jobs if job.kind == "certify"]
    assert len(trains) == len(certs)
    if name == "yang2020_cifar10_l1.toml":
        # SPEC 5: 15 uniform sigmas, 6 each for Laplace and Gaussian; with and without stability
        assert len(trains) == 2 * (15 + 6 + 6)
        assert all("--n" in c.args and c.args[c.args.index("--n") + 1] == "100000"
                   for c in certs)
    if name == "yang2020_imagenet_l1.toml":
        assert len(trains) == 2 * (14 + 5 + 5)


def test_experiments_readme_lists_every_file():
    readme = (EXPERIMENTS / "README.md").read_text()
    for path in EXPERIMENTS.glob("*.toml"):
        assert f"`{path.name}`" in readme
