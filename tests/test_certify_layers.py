"""The layers of ``smoothcert.certify``: the one abstain rule, the Monte Carlo engine's pieces
(eval mode, seeded streams), the facade's dispatch by kind of smoothing, and the runner's
progress callback. Expected values come from scipy and numpy directly, not from the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from _toy_models import Linear
from smoothcert.certify import classifier as classifier_module
from smoothcert.certify.certificate import (
    ABSTAIN,
    Certificate,
    certificates_from_counts,
    certified_fields,
    check_sampling_arguments,
)
from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.dataset import certify_dataset, input_generator, predict_dataset
from smoothcert.certify.sampling import eval_mode
from smoothcert.certify.split_sample import chunk_generator
from smoothcert.noises import get_noise
from smoothcert.noises.gaussian import Gaussian
from smoothcert.norms import Norm
from smoothcert.pal_sulam.risk import input_seed

SRC = Path(__file__).resolve().parents[1] / "src" / "smoothcert"


# ---------------------------------------------------------------------------------- abstain rule
def test_abstain_rule_at_and_around_one_half():
    noise = get_noise("gaussian", dim=4, sigma=0.5)
    p = np.array([0.5, np.nextafter(0.5, 1.0), 0.9, 0.2])
    fields = certified_fields(noise, [1, 2, 0, 1], p, [Norm.L2])
    assert [f["prediction"] for f in fields] == [ABSTAIN, 2, 0, ABSTAIN]
    assert [f["p_lower"] for f in fields] == p.tolist()  # reported when abstaining too
    assert fields[0]["radius"] == {Norm.L2: 0.0} and fields[3]["radius"] == {Norm.L2: 0.0}
    # the Gaussian l2 radius sigma * Phi^-1(p) ([CRK19])
    assert fields[2]["radius"][Norm.L2] == pytest.approx(0.5 * norm.ppf(0.9), rel=1e-12)
    assert 0.0 < fields[1]["radius"][Norm.L2] < 1e-12


def test_certificates_from_counts_use_the_clopper_pearson_bound_of_the_selected_class():
    noise = get_noise("gaussian", dim=4, sigma=1.0)
    counts = np.array([[3, 95, 2], [50, 40, 10], [0, 0, 100]], dtype=np.int64)
    top = [1, 0, 0]  # the third selects a class that never comes out: abstain
    certs = certificates_from_counts(noise, top, counts, 100, 0.01, [Norm.L2], samples=110)
    for cert, k, row in zip(certs, [95, 50, 0], counts, strict=True):
        want = beta_dist.ppf(0.01, k, 100 - k + 1) if k else 0.0
        assert isinstance(cert, Certificate) and cert.samples == 110
        assert cert.p_lower == pytest.approx(want, rel=1e-10, abs=1e-300)
        np.testing.assert_array_equal(cert.counts, row)
    assert certs[0].prediction == 1 and certs[1].prediction == ABSTAIN
    assert certs[2].prediction == ABSTAIN and certs[2].radius == {Norm.L2: 0.0}
    two = certificates_from_counts(noise, [1], counts[:1], 100, 0.01, [Norm.L2],
                                   bound="two-sided", samples=110)
    assert two[0].p_lower == pytest.approx(beta_dist.ppf(0.005, 95, 6), rel=1e-10)


# ---------------------------------------------------------------------------------- engine
def test_eval_mode_restores_each_submodules_own_mode_even_on_errors():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(), torch.nn.ReLU())
    model.train()
    model[1].eval()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == [True, True, False, True]


def _seed_sequence_generator(*key: int) -> torch.Generator:
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


@pytest.mark.parametrize("key", [(0, 0), (3, 17), (2**31, 12345)])
def test_seeded_streams_are_those_of_numpy_seed_sequence(key):
    """Committed results depend on these seeds: they must stay SeedSequence(key)'s first
    64-bit word, for the dataset runner, the split-sample chunks and the risk evaluator."""
    want = torch.rand(5, generator=_seed_sequence_generator(*key))
    assert torch.equal(torch.rand(5, generator=input_generator(*key)), want)
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)
    assert input_seed(*key) == int(state[0])
    chunk = (*key, 1, 4)
    assert torch.equal(torch.rand(5, generator=chunk_generator(*chunk)),
                       torch.rand(5, generator=_seed_sequence_generator(*chunk)))


@pytest.mark.parametrize("call", [lambda: input_generator(-1, 0), lambda: input_seed(0, 1.5),
                                  lambda: chunk_generator(0, 0, 0, True)])
def test_seed_keys_are_checked(call):
    with pytest.raises(ValueError, match=r"must be an integer >= 0, got"):
        call()


# ---------------------------------------------------------------------------------- dispatch
class _Deterministic(Gaussian):
    """A stand-in for a deterministic smoothing (only the flag matters for the dispatch)."""

    name = "stand-in"
    deterministic = True


@pytest.fixture
def fake_deterministic(monkeypatch):
    """Stand-ins for ``smoothcert.certify.deterministic``'s entry points, recording the calls."""
    calls = []

    def certify_deterministic(smoothed, xs, norms, *, convert=False):
        calls.append(("certify", xs.shape[0], list(norms), convert))
        return [Certificate(prediction=0, p_lower=1.0, radius={Norm.L2: 1.0}, samples=3,
                            counts=np.zeros(2, dtype=np.int64))] * xs.shape[0]

    def predict_deterministic(smoothed, xs):
        calls.append(("predict", xs.shape[0]))
        return ["prediction"] * xs.shape[0]

    monkeypatch.setattr(classifier_module, "certify_deterministic", certify_deterministic)
    monkeypatch.setattr(classifier_module, "predict_deterministic", predict_deterministic)
    return calls


def test_deterministic_noise_dispatches_and_refuses_sampling_arguments(fake_deterministic):
    smoothed = SmoothedClassifier(Linear(), _Deterministic(dim=16, sigma=0.5), 3)
    x = torch.zeros(1, 4, 4)
    assert smoothed.certify(x, norms=["l2"], convert=True).p_lower == 1.0
    assert smoothed.predict_batch(torch.zeros(2, 1, 4, 4)) == ["prediction"] * 2
    assert fake_deterministic == [("certify", 1, ["l2"], True), ("predict", 2)]
    for kwargs in ({"n0": 10}, {"n": 100}, {"alpha": 0.01}, {"mode": "adaptive"},
                   {"radii": [0.5]}):
        name = next(iter(kwargs))
        with pytest.raises(ValueError,
                           match=re.escape(f"must not be given (got {name}={kwargs[name]!r})")):
            smoothed.certify(x, **kwargs)
    with pytest.raises(ValueError, match="deterministic.*alpha"):
        smoothed.predict(x, alpha=0.01)


def test_random_noise_needs_the_monte_carlo_arguments():
    smoothed = SmoothedClassifier(Linear(), get_noise("gaussian", dim=16, sigma=0.5), 3)
    x = torch.zeros(1, 4, 4)
    with pytest.raises(ValueError, match="needs n0, alpha"):
        smoothed.certify(x, n=100)
    with pytest.raises(ValueError, match="needs n"):
        smoothed.predict(x, alpha=0.01)
    with pytest.raises(ValueError, match="needs alpha"):
        check_sampling_arguments(smoothed.noise, "certify", n0=1, n=2, alpha=None)
    # the positional style still works, and classify is public (with its old private name)
    gen = torch.Generator().manual_seed(0)
    assert smoothed.certify(x, 10, 100, 0.01, ["l2"], generator=gen).samples == 110
    assert smoothed.classify(torch.zeros(2, 1, 4, 4)).tolist() == [0, 0]
    assert SmoothedClassifier._classify is SmoothedClassifier.classify


# ---------------------------------------------------------------------------------- progress
def _dataset(size: int) -> list[tuple[torch.Tensor, int]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.rand(1, 4, 4, generator=gen), k % 3) for k in range(size)]


def test_the_runner_reports_progress_through_the_callback(tmp_path):
    smoothed = SmoothedClassifier(Linear(), get_noise("gaussian", dim=16, sigma=0.25), 3,
                                  batch_size=400)  # two inputs per group at n = 200
    calls: list[tuple[int, int]] = []
    out = tmp_path / "c.tsv"
    args = {"n0": 10, "n": 200, "alpha": 0.01, "command": ["t"]}
    certify_dataset(smoothed, _dataset(5), out, max_examples=3,
                    progress=lambda done, total: calls.append((done, total)), **args)
    assert calls == [(0, 3), (2, 3), (3, 3)]
    calls.clear()  # a resumed run starts where the file stopped
    certify_dataset(smoothed, _dataset(5), out, progress=lambda d, t: calls.append((d, t)),
                    **args)
    assert calls == [(3, 5), (5, 5)]
    with pytest.raises(TypeError, match="no progress bar"):
        predict_dataset(smoothed, _dataset(2), tmp_path / "p.tsv", n=10, alpha=0.01,
                        progress=True)
    assert not (tmp_path / "p.tsv").exists()


def test_the_command_line_bar_follows_the_callback(capsys):
    from smoothcert.cli._progress import progress_bar

    assert progress_bar("certify", show=False) is None
    bar = progress_bar("certify", show=True)
    for done in (1, 4, 6):
        bar(done, 6)
    err = capsys.readouterr().err
    assert "certify" in err and "6/6" in err


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_progress_bars_in_the_library_and_no_figures_in_certification_and_risk():
    """tqdm only under cli/ (the library reports progress, the command line draws it);
    no matplotlib in certify/ or the risk evaluator (their figures are in plots/)."""
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] != "cli":
            assert "tqdm" not in _imports(path), path
    for path in [*(SRC / "certify").rglob("*.py"), *(SRC / "pal_sulam" / "risk").rglob("*.py")]:
        assert "matplotlib" not in _imports(path), path


def test_the_runner_certifies_with_a_deterministic_smoothing(tmp_path):
    noise = get_noise("dssn", dim=16, sigma=0.3)
    smoothed = SmoothedClassifier(Linear(), noise, 3, batch_size=600)
    gen = torch.Generator().manual_seed(0)
    data = [(torch.round(torch.rand(1, 4, 4, generator=gen) * 255) / 255, k % 3)
            for k in range(3)]
    out = tmp_path / "d.tsv"
    with pytest.raises(ValueError, match="must not be given"):
        certify_dataset(smoothed, data, out, n0=10, norms=["l1"], command=["t"])
    assert not out.exists()
    certify_dataset(smoothed, data, out, norms=["l1"], command=["t"])
    rows = out.read_text().splitlines()[1:]
    for (x, _), row in zip(data, rows, strict=True):
        cert = smoothed.certify(x, norms=["l1"])
        fields = row.split("\t")
        assert (int(fields[2]), float(fields[3]), float(fields[4]), int(fields[6])) == (
            cert.prediction, cert.p_lower, cert.radius[Norm.L1], noise.num_transforms)
