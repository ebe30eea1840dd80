"""A new noise family with a new shape parameter is one file (tests/_toy_noise.py, outside the
package): registered at test time, it passes the noise contract, its radius equals the closed
form, and the command line picks it up (``--noise logistic --b 2``) for certify and train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def logistic():
    import _toy_noise  # registers "logistic" (importing it again is a no-op)

    return _toy_noise.Logistic


def test_contract_and_closed_form(logistic):
    from smoothcert.noises import get_noise
    from smoothcert.noises.checks import check_noise

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quad's warnings near p_lower = 1, where R -> inf
        check_noise(get_noise("logistic", dim=64, sigma=0.25, b=2), draws=2000)
    # b = 1: the logistic distribution of scale s / 2, Phi(t) = 2 t (1 - t), so the l1 radius is
    # R = (scale / 2) ln(p / (1 - p)) (integrate dt / Phi from 1 - p to 1/2)
    noise = get_noise("logistic", dim=64, scale=0.8)
    p = np.array([0.55, 0.7, 0.9, 0.99, 0.999])
    exact = 0.8 / 2 * np.log(p / (1 - p))
    got = noise.certified_radius(p, "l1")
    assert np.all(got <= exact) and np.allclose(got, exact, rtol=1e-7, atol=0)
    # sigma = scale * sqrt(psi_1(1) / 2) = scale * pi / sqrt(12)
    assert noise.sigma == pytest.approx(0.8 * np.pi / np.sqrt(12), rel=1e-12)


def test_certify_and_train_through_the_cli(logistic, tmp_path, capsys):
    from smoothcert.cli.main import main
    from smoothcert.models.checkpoint import load_checkpoint

    checkpoint = tmp_path / "m.pt"
    assert main(["train", "--dataset", "digits", "--arch", "mlp", "--epochs", "1",
                 "--max-train", "64", "--max-eval", "32", "--noise", "logistic", "--b", "2",
                 "--sigma", "0.25", "--out", str(checkpoint)]) == 0
    noise = load_checkpoint(checkpoint).train_noise
    assert noise["name"] == "logistic" and noise["b"] == 2
    out = tmp_path / "cert.tsv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["certify", "--checkpoint", str(checkpoint), "--noise", "logistic",
                     "--b", "2", "--sigma", "0.25", "--n0", "10", "--n", "100", "--alpha",
                     "0.01", "--max", "3", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["configuration"]["noise"]["b"] == 2
    assert record["configuration"]["norms"] == ["l1"]  # the family's direct norm by default
    assert "certified 3 examples" in capsys.readouterr().out


def test_noise_module_flag_loads_a_family_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    done = subprocess.run([sys.executable, "-m", "smoothcert.cli.main", "certify",
                           "--noise-module", "_toy_noise", "--help"],
                          capture_output=True, text=True, env=env, check=True)
    assert "logistic" in done.stdout and "--B" not in done.stdout and "--b B" in done.stdout
    done = subprocess.run([sys.executable, "-m", "smoothcert.cli.main", "certify",
                           "--noise-module", "no_such_module_x", "--help"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "no_such_module_x" in done.stderr
