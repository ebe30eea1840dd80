"""Every bad argument is refused with a one-line message and exit status 2 before any file is
created or changed, and the corrected command then runs; no-op runs leave files alone; sweeps
are checked job by job as the real run would; progress lines when stderr is not a terminal."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch

from smoothcert.cli.main import main


@pytest.fixture
def checkpoint(tmp_path_factory):
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    return save_checkpoint(folder / "digits.pt", model=get_model("mlp", dataset="digits"),
                           arch="mlp", dataset="digits", num_classes=10, input_shape=(1, 8, 8),
                           train_noise=None, config={}, epoch=1)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _certify(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return ["certify", "--checkpoint", str(checkpoint), "--noise", "gaussian", "--sigma",
            "0.25", "--n0", "10", "--n", "50", "--alpha", "0.01", "--max", "2",
            "--out", str(out), *extra]


def _replace(argv: list[str], flag: str, value: str) -> list[str]:
    argv = list(argv)
    if flag not in argv:
        return argv + [flag, value]
    i = argv.index(flag)
    return argv[:i + 1] + [value] + argv[i + 2:]


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--seed", "-1", "--seed must be an integer >= 0, got -1"),
    ("--max", "0", "--max must be -1 (all examples) or an integer >= 1, got 0"),
    ("--n0", "1000", "--n0 1000 is larger than --n 50"),
    ("--n", "0", "--n must be >= 1"),
    ("--alpha", "1.5", "alpha must lie strictly between 0 and 1"),
    ("--sigma", "-0.5", "--sigma must be a finite number > 0, got -0.5"),
    ("--noise", "unifrom", "invalid choice: 'unifrom' (choose from"),
    ("--n", "lots", "invalid int value: 'lots'"),
])
def test_bad_values_touch_no_file_and_the_corrected_rerun_runs(
        tmp_path, checkpoint, capsys, flag, value, message):
    out = tmp_path / "run" / "cert.tsv"
    good = _certify(checkpoint, out)
    before = _snapshot(tmp_path)
    try:
        code = main(_replace(good, flag, value))
    except SystemExit as exc:  # argparse's own refusals (a type or a choice)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _snapshot(tmp_path) == before
    assert main(good) == 0  # never refused for the error's debris
    assert out.is_file()


def test_checkpoint_errors_are_one_line(tmp_path, checkpoint, capsys):
    out = tmp_path / "cert.tsv"
    assert main(_replace(_certify(checkpoint, out), "--checkpoint", str(tmp_path))) == 2
    assert "is a directory; give a checkpoint file" in capsys.readouterr().err
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    assert main(_replace(_certify(checkpoint, out), "--checkpoint", str(truncated))) == 2
    err = capsys.readouterr().err
    assert "cannot be read: it is damaged" in err and len(err) < 300
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_noop_run_leaves_files_alone_and_files_are_0644(tmp_path, checkpoint, capsys):
    out = tmp_path / "cert.tsv"
    old = os.umask(0o022)
    try:
        assert main(_certify(checkpoint, out)) == 0
    finally:
        os.umask(old)
    before = _snapshot(tmp_path)
    assert {mode & 0o777 for _, mode in before.values()} == {0o644}
    assert main(_replace(_certify(checkpoint, out), "--max", "0")) == 2  # used to append
    assert "--max must be -1" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_default_norms_are_the_noise_s_direct_norms(tmp_path, checkpoint):
    out = tmp_path / "u.tsv"
    argv = _replace(_certify(checkpoint, out), "--noise", "uniform")
    assert main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    # the uniform cube certifies l1 and l-inf directly ([YDH+20]); l2 would need --convert
    assert record["configuration"]["norms"] == ["l1", "linf"]
    assert record["settings"]["batch_size"] >= 1
    assert "allocator" in record["settings"]


def test_deterministic_noise_takes_no_sample_counts(tmp_path, checkpoint, capsys):
    from smoothcert.noises import list_noises, noise_class

    names = [n for n in list_noises() if noise_class(n).deterministic]
    if not names:
        pytest.skip("no deterministic noise family is registered")
    argv = _replace(_certify(checkpoint, tmp_path / "d.tsv"), "--noise", names[0])
    assert main(argv) == 2
    assert "is deterministic" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    if "dssn" in names:  # the digits are on a grid of 16 levels, not dssn's default 255
        argv = [a for a in argv if a not in ("--n0", "10", "--n", "50", "--alpha", "0.01")]
        argv = _replace(argv, "--noise", "dssn")
        assert main([*argv, "--quantization", "255"]) == 2
        assert "quantization" in capsys.readouterr().err
        assert not any(tmp_path.iterdir())
        assert main(argv) == 0  # without --quantization: the dataset's grid
        record = json.loads((tmp_path / "d.json").read_text())
        assert record["configuration"]["noise"]["quantization"] == 16


def _sweep(tmp_path: Path, grid: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(f"""
[sweep]
out = "{tmp_path / 'runs'}"
[common]
dataset = "digits"
[train]
arch = "mlp"
epochs = 1
[certify]
n0 = 10
n = 100
[[grid]]
{grid}
""")
    return path


@pytest.mark.parametrize(("grid", "message"), [
    ('noise = "unifrom"\nsigma = 0.5', "invalid choice: 'unifrom'"),
    ('noise = "uniform"\nsigma = 0.5\ncertify.n = "lots"', "invalid int value: 'lots'"),
    ('noise = "uniform"\nsigma = -0.5', "sigma must be a finite number > 0"),
    ('noise = "uniform"\nsigma = 0.5\ntrain.epoch = 1', "unknown option 'epoch' for train; "
                                                        "did you mean epochs"),
    ('noise = "uniform"\nsigma = 0.5\ncertify.norms = "l3"', "unknown norm(s) 'l3'"),
])
def test_sweep_dry_run_checks_every_job(tmp_path, capsys, grid, message):
    path = _sweep(tmp_path, grid)
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_sweep_dry_run_of_a_valid_sweep(tmp_path, capsys):
    path = _sweep(tmp_path, 'noise = "uniform"\nsigma = [0.25, 0.5]')
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_risk_names_and_their_old_spellings():
    from smoothcert.cli.main import build_parser

    parser = build_parser("risk")
    new = parser.parse_args(["risk", "--out", "o", "--data-dir", "d", "--max", "5",
                             "--smooth-sigmas", "0,0.5"])
    old = parser.parse_args(["risk", "--out", "o", "--root", "d", "--max-examples", "5",
                             "--betas", "0,0.5"])
    for args in (new, old):
        assert (args.root, args.max_examples, args.betas) == ("d", 5, "0,0.5")
    assert "--root" not in parser._subparsers._group_actions[0].choices["risk"].format_help()


def test_progress_lines_when_not_a_terminal():
    from smoothcert.cli._progress import ProgressReporter

    stream = io.StringIO()
    report = ProgressReporter("certify", "input", stream=stream, every=0.0)
    assert not report.bar  # a StringIO is not a terminal
    report(2, 10)
    report(6, 10)
    report(10, 10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "certify: 2/10 inputs (20.0%)"
    assert lines[1].startswith("certify: 6/10 inputs (60.0%), ") and "left" in lines[1]
    assert lines[-1].startswith("certify: 10/10 inputs (100.0%)")
    stream = io.StringIO()
    batches = list(ProgressReporter("train", "batch", stream=stream, every=0.0).wrap(
        range(5), 5, "epoch 1"))
    assert batches == list(range(5))
    assert stream.getvalue().splitlines()[0].startswith("epoch 1: 1/5 batches (20.0%)")
