"""``smoothcert train``: a short run end to end, resume, and bad input."""

from __future__ import annotations

import pytest
import torch

from smoothcert.cli.main import main
from smoothcert.models.checkpoint import load_checkpoint

QUICK = ["--dataset", "digits", "--arch", "mlp", "--epochs", "1", "--max-train", "128",
         "--max-eval", "64"]


def test_train_writes_a_checkpoint_with_the_training_noise(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["train", *QUICK, "--noise", "uniform", "--sigma", "0.25", "--stability",
                 "--noise-copies", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"checkpoint: {out}" in captured.out
    assert "epoch 1/1" in captured.err and "noisy test acc" in captured.err
    checkpoint = load_checkpoint(out)
    assert checkpoint.train_noise["name"] == "uniform"
    assert checkpoint.train_noise["sigma"] == pytest.approx(0.25)
    assert checkpoint.config["stability"] and checkpoint.config["noise_copies"] == 2
    assert out.with_suffix(".metrics.csv").is_file() and out.with_suffix(".curves.png").is_file()


def test_scale_shape_flags_classes_and_clean_training(tmp_path):
    out = tmp_path / "s.pt"
    assert main(["train", *QUICK, "--noise", "exp_p", "--scale", "0.5", "--p", "3",
                 "--out", str(out)]) == 0
    noise = load_checkpoint(out).train_noise
    assert noise["name"] == "exp_p" and noise["p"] == 3
    assert noise["scale"] == pytest.approx(0.5)
    out = tmp_path / "c.pt"
    assert main(["train", *QUICK, "--sigma", "0", "--classes", "3,8", "--out", str(out)]) == 0
    checkpoint = load_checkpoint(out)
    assert checkpoint.train_noise is None and checkpoint.num_classes == 2
    assert checkpoint.config["dataset_options"] == {"classes": [3, 8]}


def test_resume_continues_and_a_finished_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "r.pt"
    args = ["train", *QUICK, "--noise", "gaussian", "--sigma", "0.5", "--out", str(out)]
    assert main(args) == 0
    before = load_checkpoint(out).model.state_dict()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # complete: nothing to do
    after = load_checkpoint(out).model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    args[args.index("--epochs") + 1] = "2"
    assert main([*args, "--resume"]) == 2
    assert "different configuration (epochs: 1" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--dataset", "digitz"], "invalid choice: 'digitz' (choose from"),
    (["--arch", "resnet21"], "invalid choice: 'resnet21' (choose from"),
    (["--noise", "gauss", "--sigma", "1"], "invalid choice: 'gauss' (choose from"),
])
def test_unknown_names_list_the_choices(flags, message, capsys):
    args = dict(zip(QUICK[::2], QUICK[1::2], strict=True))
    args.update(zip(flags[::2], flags[1::2], strict=True))
    with pytest.raises(SystemExit) as exc:
        main(["train", *[item for pair in args.items() for item in pair]])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", *QUICK, "--arch", "lenet", "--out", str(tmp_path / "x.pt")]) == 2
    assert "architecture 'lenet' does not fit dataset 'digits'" in capsys.readouterr().err
    base = tmp_path / "base.pt"
    assert main(["train", *QUICK, "--out", str(base)]) == 0
    assert main(["train", *QUICK, "--arch", "resnet20", "--init-from", str(base),
                 "--out", str(tmp_path / "y.pt")]) == 2
    assert "it has architecture 'mlp', not 'resnet20'" in capsys.readouterr().err
    assert main(["train", *QUICK, "--noise", "gaussian", "--sigma", "0.5", "--k", "2",
                 "--out", str(tmp_path / "z.pt")]) == 2
    assert "has no parameter(s) k" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()
