"""Certification runs: result files, run records, per-input seeding, resume, refusals, and the
``smoothcert certify`` / ``smoothcert predict`` commands."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from scipy.stats import norm

from _toy_models import Interrupting, Linear
from smoothcert.certify.classifier import ABSTAIN, SmoothedClassifier
from smoothcert.certify.dataset import (
    certify_dataset,
    input_generator,
    predict_dataset,
    select_indices,
)
from smoothcert.noises import get_noise
from smoothcert.norms import Norm
from smoothcert.runs.results import run_json_path

SIGMA = 0.25
PROTOCOL = {"n0": 10, "n": 200, "alpha": 0.01}


def _dataset(size: int = 12) -> list[tuple[torch.Tensor, int]]:
    gen = torch.Generator().manual_seed(1)
    model = Linear()
    items = []
    for _ in range(size):
        x = torch.rand(1, 4, 4, generator=gen)
        # mostly the model's own label, so most inputs are certified; some are not
        label = int(model(x[None]).argmax()) if torch.rand(1, generator=gen) < 0.8 else 0
        items.append((x, label))
    return items


def _smoothed(model: torch.nn.Module | None = None, batch_size: int = 1000
              ) -> SmoothedClassifier:
    return SmoothedClassifier(model or Linear(), get_noise("gaussian", dim=16, sigma=SIGMA), 3,
                              batch_size=batch_size)


def _rows(path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        return list(reader.fieldnames), list(reader)


def _without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def _certify(out, *, model=None, batch_size=1000, **kwargs):
    args = {**PROTOCOL, "norms": ("l2",), "seed": 0, "command": ["test"], **kwargs}
    return certify_dataset(_smoothed(model, batch_size), _dataset(), out, **args)


# ---------------------------------------------------------------------------------- files
def test_certify_file_contents(tmp_path):
    out = tmp_path / "cert.tsv"
    summary = _certify(out, norms=("l2", "linf"), convert=True, seed=3)
    columns, rows = _rows(out)
    assert columns == ["idx", "label", "prediction", "p_lower", "radius_l2", "radius_linf",
                       "correct", "samples", "seconds"]
    assert [int(r["idx"]) for r in rows] == list(range(12))
    assert summary.written == 12 and summary.resumed == 0
    data = _dataset()
    for row in rows:
        prediction, p_lower = int(row["prediction"]), float(row["p_lower"])
        assert int(row["label"]) == data[int(row["idx"])][1]
        assert int(row["correct"]) == int(prediction == int(row["label"]))
        assert int(row["samples"]) == PROTOCOL["n0"] + PROTOCOL["n"]
        assert float(row["seconds"]) >= 0
        want = SIGMA * norm.ppf(p_lower) if prediction != ABSTAIN else 0.0
        assert float(row["radius_l2"]) == pytest.approx(want, rel=1e-12, abs=0)
        assert float(row["radius_linf"]) == pytest.approx(want / 4.0, rel=1e-12, abs=0)
    assert {int(r["prediction"]) for r in rows} - {ABSTAIN} and summary.correct > 6

    # each row is the certificate of input idx under the generator of (seed, idx)
    idx = 5
    cert = _smoothed().certify(data[idx][0], PROTOCOL["n0"], PROTOCOL["n"], PROTOCOL["alpha"],
                               generator=input_generator(3, idx))
    assert float(rows[idx]["p_lower"]) == cert.p_lower

    record = json.loads(run_json_path(out).read_text())
    assert run_json_path(out) == tmp_path / "cert.json"
    config = record["configuration"]
    assert config["noise"] == {"name": "gaussian", "dim": 16, "sigma": SIGMA, "scale": SIGMA}
    assert (config["n0"], config["n"], config["alpha"]) == (10, 200, 0.01)
    assert config["norms"] == ["l2", "linf"] and config["convert"] is True
    assert config["seed"] == 3 and config["bound"] == "one-sided" and config["task"] == "certify"
    assert set(record["versions"]) >= {"smoothcert", "torch", "numpy", "scipy"}
    assert record["versions"]["torch"] == torch.__version__
    assert record["command"] == ["test"] and record["resumed"] == []
    assert record["settings"]["batch_size"] == 1000


def test_predict_file_contents(tmp_path):
    out = tmp_path / "pred.tsv"
    predict_dataset(_smoothed(), _dataset(), out, n=300, alpha=0.01, seed=0, command=["t"])
    columns, rows = _rows(out)
    assert columns == ["idx", "label", "prediction", "p_value", "correct", "samples", "seconds"]
    assert len(rows) == 12
    for row in rows:
        p_value, prediction = float(row["p_value"]), int(row["prediction"])
        assert (prediction == ABSTAIN) == (p_value > 0.01)
        assert int(row["samples"]) == 300
    assert json.loads(run_json_path(out).read_text())["configuration"]["task"] == "predict"


def test_rows_depend_only_on_seed_and_idx(tmp_path):
    every = tmp_path / "every.tsv"
    _certify(every)
    # other indices around them and another batch size (3 inputs per batch instead of 5)
    second = tmp_path / "second.tsv"
    _certify(second, skip=2, batch_size=600)
    _, all_rows = _rows(every)
    _, some_rows = _rows(second)
    assert [int(r["idx"]) for r in some_rows] == list(range(0, 12, 2))
    assert _without_seconds(some_rows) == _without_seconds(all_rows[::2])
    # and another seed changes them
    other = tmp_path / "other.tsv"
    _certify(other, seed=1)
    assert _without_seconds(_rows(other)[1]) != _without_seconds(all_rows)


# ---------------------------------------------------------------------------------- resume
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = tmp_path / "full.tsv"
    _certify(full, batch_size=600)
    out = tmp_path / "resumed.tsv"
    # 3 inputs per batch, 2 forward calls (selection, estimation) per group of 3: the 5th call
    # is the third group's estimation, so 6 rows are written
    with pytest.raises(KeyboardInterrupt):
        _certify(out, model=Interrupting(Linear(), at_call=6), batch_size=600)
    assert len(_rows(out)[1]) == 6
    # a crash in the middle of writing a row leaves a partial line behind
    with open(out, "ab") as fh:
        fh.write(b"6\t1\t1\t0.93")
    summary = _certify(out, batch_size=600)
    assert (summary.resumed, summary.written) == (6, 6)
    assert _without_seconds(_rows(out)[1]) == _without_seconds(_rows(full)[1])
    assert out.read_bytes().endswith(b"\n")
    record = json.loads(run_json_path(out).read_text())
    assert len(record["resumed"]) == 1 and record["resumed"][0]["completed_before"] == 6

    # a finished run resumed again writes nothing and changes no row
    before = out.read_bytes()
    assert _certify(out, batch_size=600).written == 0
    assert out.read_bytes() == before

    # a larger --max extends a run (max_examples is not part of the configuration)
    short = tmp_path / "short.tsv"
    _certify(short, max_examples=4)
    assert _certify(short).written == 8
    assert _without_seconds(_rows(short)[1]) == _without_seconds(_rows(full)[1])


@pytest.mark.parametrize("change", [{"seed": 1}, {"alpha": 0.05}, {"n": 300},
                                    {"norms": ("l2", "l1"), "convert": True},
                                    {"bound": "two-sided"}, {"skip": 2}])
def test_refuses_output_of_another_configuration(tmp_path, change):
    out = tmp_path / "cert.tsv"
    _certify(out, max_examples=3)
    meta = run_json_path(out)
    before = (out.read_bytes(), meta.read_bytes(), out.stat().st_mtime_ns, meta.stat().st_mtime_ns)
    with pytest.raises(ValueError, match="belongs to another run"):
        _certify(out, **change)
    after = (out.read_bytes(), meta.read_bytes(), out.stat().st_mtime_ns, meta.stat().st_mtime_ns)
    assert after == before


def test_refuses_results_without_run_record_or_damaged(tmp_path):
    out = tmp_path / "cert.tsv"
    _certify(out, max_examples=3)
    run_json_path(out).unlink()
    before = out.read_bytes()
    with pytest.raises(ValueError, match="without its run record"):
        _certify(out)
    assert out.read_bytes() == before

    damaged = tmp_path / "damaged.tsv"
    _certify(damaged, max_examples=3)
    with open(damaged, "ab") as fh:
        fh.write(b"3\t1\n")
    with pytest.raises(ValueError, match="line 5 has 2 fields"):
        _certify(damaged)


def test_refuses_bad_protocol_before_touching_files(tmp_path):
    out = tmp_path / "cert.tsv"
    for change, match in [({"n0": 0}, "n0"), ({"n": 0}, "n"), ({"alpha": 1.5}, "alpha"),
                          ({"norms": ("l1",)}, "convert"), ({"skip": 0}, "skip"),
                          ({"max_examples": -2}, "max_examples")]:
        with pytest.raises(ValueError, match=match):
            _certify(out, **change)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------- helpers
def test_select_indices_follows_skip_and_max():
    assert select_indices(10, 3) == [0, 3, 6, 9]
    assert select_indices(10, 3, 2) == [0, 3]
    assert select_indices(10, 1, 0) == []
    assert select_indices(5, 1, 100) == [0, 1, 2, 3, 4]


def test_input_generator_is_a_function_of_seed_and_idx():
    draw = [torch.rand(3, generator=input_generator(s, i)) for s, i in
            [(0, 0), (0, 0), (0, 1), (1, 0)]]
    assert torch.equal(draw[0], draw[1])
    assert not torch.equal(draw[0], draw[2]) and not torch.equal(draw[0], draw[3])
    state = np.random.SeedSequence([0, 1]).generate_state(1, dtype=np.uint64)
    want = torch.rand(3, generator=torch.Generator().manual_seed(int(state[0])))
    assert torch.equal(draw[2], want)
    with pytest.raises(ValueError, match="idx"):
        input_generator(0, -1)


# ---------------------------------------------------------------------------------- the commands
@pytest.fixture
def checkpoint(tmp_path):
    models = pytest.importorskip("smoothcert.models")
    pytest.importorskip("smoothcert.data")
    from smoothcert.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models.get_model("mlp", dataset="digits")
    return save_checkpoint(tmp_path / "digits.pt", model=model, arch="mlp", dataset="digits",
                           num_classes=10, input_shape=(1, 8, 8), train_noise=None, config={},
                           epoch=1)


def _main(*argv: str) -> int:
    from smoothcert.cli.main import main

    return main(list(argv))


def _certify_command(checkpoint, out, *extra: str) -> list[str]:
    return ["certify", "--checkpoint", str(checkpoint), "--dataset", "digits", "--noise",
            "gaussian", "--sigma", "0.25", "--n0", "10", "--n", "100", "--alpha", "0.01",
            "--skip", "3", "--max", "5", "--out", str(out), *extra]


def test_cli_certify_and_predict(tmp_path, checkpoint, capsys):
    out = tmp_path / "cert.tsv"
    assert _main(*_certify_command(checkpoint, out, "--norms", "l2,l1", "--convert")) == 0
    columns, rows = _rows(out)
    assert columns[4:6] == ["radius_l2", "radius_l1"]
    assert [int(r["idx"]) for r in rows] == [0, 3, 6, 9, 12]
    config = json.loads(run_json_path(out).read_text())["configuration"]
    assert config["dataset"] == "digits" and config["arch"] == "mlp"
    assert len(config["checkpoint_sha256"]) == 64 and config["norms"] == ["l2", "l1"]
    assert "certified 5 examples" in capsys.readouterr().out
    # the same command again finds everything done
    before = out.read_bytes()
    assert _main(*_certify_command(checkpoint, out, "--norms", "l2,l1", "--convert")) == 0
    assert out.read_bytes() == before

    pred = tmp_path / "pred.tsv"
    assert _main("predict", "--checkpoint", str(checkpoint), "--noise", "gaussian", "--scale",
                 "0.25", "--n", "100", "--max", "4", "--out", str(pred)) == 0
    assert [int(r["idx"]) for r in _rows(pred)[1]] == [0, 1, 2, 3]


def test_cli_rerun_of_a_finished_run_changes_no_file(tmp_path, checkpoint):
    out = tmp_path / "cert.tsv"
    assert _main(*_certify_command(checkpoint, out)) == 0
    files = (out, run_json_path(out))
    # an mtime long past, so that a rewrite within the clock's resolution is still seen
    for path in files:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = [(path.read_bytes(), path.stat().st_mtime_ns) for path in files]
    assert _main(*_certify_command(checkpoint, out)) == 0
    assert [(path.read_bytes(), path.stat().st_mtime_ns) for path in files] == before
    assert json.loads(run_json_path(out).read_text())["resumed"] == []
    # a rerun that does write rows records its session
    assert _main(*_certify_command(checkpoint, out, "--max", "6")) == 0
    assert [int(r["idx"]) for r in _rows(out)[1]] == [0, 3, 6, 9, 12, 15]
    resumed = json.loads(run_json_path(out).read_text())["resumed"]
    assert len(resumed) == 1 and resumed[0]["completed_before"] == 5


@pytest.mark.parametrize("change,message", [
    ({"--checkpoint": "missing.pt"}, "does not exist"),
    ({"--n0": "0"}, "n0 must be >= 1"),
    ({"--n": "0"}, "n must be >= 1"),
    ({"--alpha": "1.5"}, "alpha must lie strictly between 0 and 1"),
    ({"--classes": "0,1"}, "does not match the checkpoint"),
    ({"--norms": "linf"}, "does not certify linf directly"),
])
def test_cli_errors(tmp_path, checkpoint, capsys, change, message):
    argv = _certify_command(checkpoint, tmp_path / "cert.tsv")
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value if flag != "--checkpoint" \
                else str(tmp_path / value)
        else:
            argv += [flag, value]
    assert _main(*argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cert.tsv").exists()


def test_cli_refuses_mismatched_output(tmp_path, checkpoint, capsys):
    out = tmp_path / "cert.tsv"
    assert _main(*_certify_command(checkpoint, out)) == 0
    before = out.read_bytes(), run_json_path(out).read_bytes()
    assert _main(*_certify_command(checkpoint, out, "--seed", "7")) == 2
    assert "belongs to another run" in capsys.readouterr().err
    assert (out.read_bytes(), run_json_path(out).read_bytes()) == before


def test_norm_columns_follow_the_request_order():
    smoothed = _smoothed()
    assert smoothed.check_norms(["l1", "L2", "l1"], convert=True) == [Norm.L1, Norm.L2]


def test_noise_flags_with_prefix_and_shape_parameters():
    import argparse

    from smoothcert.cli._noise_args import add_noise_arguments, noise_from_args

    parser = argparse.ArgumentParser()
    add_noise_arguments(parser)
    add_noise_arguments(parser, prefix="train-", required=False)
    args = parser.parse_args(["--noise", "gaussian", "--scale", "0.5"])
    noise = noise_from_args(args, dim=10)
    assert (noise.name, noise.dim, noise.sigma) == ("gaussian", 10, 0.5)
    assert noise_from_args(args, dim=10, prefix="train-") is None
    args = parser.parse_args(["--noise", "gaussian", "--sigma", "1", "--train-noise",
                              "gaussian", "--train-sigma", "0.25"])
    assert noise_from_args(args, dim=3, prefix="train-").sigma == 0.25
    # a shape flag the family does not have is refused by the family, naming it
    args = parser.parse_args(["--noise", "gaussian", "--sigma", "1", "--k", "2"])
    with pytest.raises(ValueError, match="no parameter"):
        noise_from_args(args, dim=3)
    args = parser.parse_args(["--noise", "gaussian", "--sigma", "1", "--train-sigma", "1"])
    with pytest.raises(ValueError, match="without --train-noise"):
        noise_from_args(args, dim=3, prefix="train-")
    with pytest.raises(SystemExit):
        parser.parse_args(["--noise", "gaussian", "--sigma", "1", "--scale", "1"])


def test_run_records_name_the_program_without_its_path():
    from smoothcert.runs.results import command_line

    assert command_line(["/opt/env/bin/smoothcert", "certify", "--out", "r/a.tsv"]) == [
        "smoothcert", "certify", "--out", "r/a.tsv"]
    assert command_line([]) == []
