"""The smoothed-risk evaluator (majority vote, no abstention) and the resumable (alpha, beta) grid."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from scipy.special import ndtri
from scipy.stats import binom, binomtest

from smoothcert.cli.main import main
from smoothcert.noises import get_noise
from smoothcert.pal_sulam.risk import (
    CSV_HEADER,
    RiskEstimate,
    RiskGrid,
    RiskTable,
    best_alphas,
    grid_key,
    majority_vote,
    read_risk_table,
    run_risk_grid,
    savgol_window,
    smoothed_risk,
    vote_counts,
)


class Step(torch.nn.Module):
    """Class 1 iff the (single) input coordinate exceeds ``t``."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)[:, :1]
        return torch.cat([self.t - x, x - self.t], dim=1)


def tiny_mlp(dim: int = 5, classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(dim, 8), torch.nn.ReLU(), torch.nn.Linear(8, classes))


# ------------------------------------------------------------------------ evaluator
@pytest.mark.parametrize("label", [0, 1])
def test_error_rate_matches_the_binomial_majority_probability(label):
    # at x = 0 with N(0, 1) noise the base classifier says 1 with probability q = Phi(-t); with
    # n = 10 draws the vote is 1 iff more than 5 draws say 1 (a 5-5 tie goes to class 0)
    q, n, inputs = 0.45, 10, 3000
    model = Step(float(-ndtri(q)))
    dataset = [(torch.zeros(1), label)] * inputs
    noise = get_noise("gaussian", dim=1, sigma=1.0)
    est = smoothed_risk(model, dataset, noise=noise, n=n, num_classes=2, seed=1, batch_size=500)
    p_vote_one = binom.sf(5, n, q)
    p_error = p_vote_one if label == 0 else 1 - p_vote_one
    assert est.n == inputs
    assert abs(est.n_errors - inputs * p_error) < 4 * math.sqrt(inputs * p_error * (1 - p_error))


def test_ties_go_to_the_lowest_class():
    counts = np.array([[3, 3, 0], [0, 2, 2], [1, 0, 4], [5, 5, 5]])
    assert majority_vote(counts).tolist() == [0, 1, 2, 0]


def test_results_do_not_depend_on_batching():
    model = tiny_mlp()
    noise = get_noise("gaussian", dim=5, sigma=0.8)
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(3))
    idx = list(range(100, 109))
    big = vote_counts(model, x, idx, noise=noise, n=50, num_classes=3, seed=7, batch_size=4096)
    small = vote_counts(model, x, idx, noise=noise, n=50, num_classes=3, seed=7, batch_size=7)
    split = np.concatenate([
        vote_counts(model, x[:4], idx[:4], noise=noise, n=50, num_classes=3, seed=7),
        vote_counts(model, x[4:], idx[4:], noise=noise, n=50, num_classes=3, seed=7)])
    reordered = vote_counts(model, x.flip(0), idx[::-1], noise=noise, n=50, num_classes=3,
                            seed=7)[::-1]
    for other in (small, split, reordered):
        assert np.array_equal(big, other)
    assert big.sum(axis=1).tolist() == [50] * 9
    # another seed or another index gives other draws
    other_seed = vote_counts(model, x, idx, noise=noise, n=50, num_classes=3, seed=8)
    assert not np.array_equal(big, other_seed)
    dataset = [(x[k], 0) for k in range(9)]
    a = smoothed_risk(model, dataset, noise=noise, n=50, num_classes=3, seed=7, batch_size=50)
    b = smoothed_risk(model, dataset, noise=noise, n=50, num_classes=3, seed=7, batch_size=10**4)
    assert a == b


def test_beta_zero_is_the_base_classifier():
    model = tiny_mlp()
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(4))
    counts = vote_counts(model, x, range(6), noise=None, n=100, num_classes=3, seed=0)
    predictions = model(x).argmax(dim=1).numpy()
    assert np.array_equal(counts.argmax(axis=1), predictions)
    assert counts.max(axis=1).tolist() == [100] * 6
    dataset = [(x[k], int(predictions[k])) for k in range(6)]
    assert smoothed_risk(model, dataset, noise=None, n=100, num_classes=3, seed=0).n_errors == 0


def test_model_mode_is_restored_and_bad_predictions_refused():
    model = tiny_mlp()
    model.train()
    model[1].eval()  # a submodule in its own mode gets it back too
    x = torch.randn(2, 5)
    for noise in (None, get_noise("gaussian", dim=5, sigma=0.5)):
        vote_counts(model, x, [0, 1], noise=noise, n=3, num_classes=3, seed=0)
        assert model.training and model[0].training and not model[1].training
    always_two = Step(0.0)
    always_two.forward = lambda x: torch.tensor([[0.0, 0.0, 1.0]]).expand(x.shape[0], 3)
    with pytest.raises(ValueError, match="predicts class 2"):
        vote_counts(always_two, x, [0, 1], noise=None, n=3, num_classes=2, seed=0)


class _Fixed(torch.nn.Module):
    """A linear classifier on 5 inputs with weights drawn from a seeded generator."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.w


# Literal values computed with the evaluator as it was before its votes went through the
# certification's Monte Carlo engine (all n noisy copies of the inputs built at once, each input's
# noise one ``noise.sample_like`` call of a generator seeded by SeedSequence([seed, idx])). They
# pin the draws: the committed results/pal_sulam grids must stay reproducible.
PINNED_VOTES = {
    ("gaussian", 0.8): [[11, 17, 12], [12, 21, 7], [1, 39, 0], [5, 33, 2]],
    ("laplace", 0.8): [[3, 23, 14], [18, 17, 5], [3, 37, 0], [4, 33, 3]],
    ("uniform", 1.0): [[7, 17, 16], [16, 11, 13], [4, 36, 0], [5, 29, 6]],
}


@pytest.mark.parametrize("family", sorted(PINNED_VOTES))
def test_votes_are_those_of_earlier_releases(family):
    model = _Fixed()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    noise = get_noise(family[0], dim=5, sigma=family[1])
    counts = vote_counts(model, x, [0, 7, 100, 12345], noise=noise, n=40, num_classes=3,
                         seed=11, batch_size=16)
    assert counts.tolist() == PINNED_VOTES[family]
    if family[0] == "gaussian":
        dataset = [(x[i], i % 3) for i in range(4)]
        assert smoothed_risk(model, dataset, noise=noise, n=40, num_classes=3, seed=11,
                             indices=range(4)) == RiskEstimate(n_errors=3, n=4)


def test_votes_never_hold_more_than_a_batch_of_noisy_inputs():
    seen = []

    class Recording(_Fixed):
        def forward(self, x):
            seen.append(x.shape[0])
            return super().forward(x)

    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    vote_counts(Recording(), x, range(6), noise=get_noise("gaussian", dim=5, sigma=1.0),
                n=500, num_classes=3, seed=0, batch_size=64)
    assert max(seen) <= 64 and sum(seen) == 6 * 500


# ------------------------------------------------------------------------ statistics
@pytest.mark.parametrize("k,n", [(0, 20), (3, 20), (20, 20), (57, 10000), (1, 1)])
def test_risk_interval_is_the_two_sided_95_clopper_pearson(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert RiskEstimate(k, n).interval() == pytest.approx((ref.low, ref.high), abs=1e-12)
    table = RiskTable(alphas=np.array([0.0]), betas=np.array([0.0]), n_errors=np.array([[k]]),
                      n=np.array([[n]]))
    low, high = table.interval()
    assert (low[0, 0], high[0, 0]) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_savgol_window_adapts_to_short_grids():
    assert savgol_window(100) == 15
    assert savgol_window(15) == 15
    assert savgol_window(10) == 9
    assert savgol_window(5) == 5
    assert savgol_window(4) is None  # a window of 3 cannot fit a cubic
    assert savgol_window(2) is None


def _table(alphas, errors, n=10**6):
    n_errors = np.round(np.asarray(errors) * n).astype(np.int64)
    return RiskTable(alphas=np.asarray(alphas, dtype=float), betas=np.array([0.5]),
                     n_errors=n_errors[:, None], n=np.full((len(alphas), 1), n))


def test_best_alpha_raw_and_smoothed():
    # a cubic curve is reproduced exactly by an order-3 Savitzky-Golay filter, so the smoothed
    # argmin is the curve's own; the raw argmin is fooled by one low outlier
    alphas = np.round(np.arange(0.01, 1.0, 0.01), 2)
    errors = 0.01 + (alphas - 0.3) ** 2 * (1 + alphas)
    exact_argmin = alphas[np.argmin(errors)]
    (best,) = best_alphas(_table(alphas, errors))
    assert best.smoothed_alpha == pytest.approx(exact_argmin)
    assert best.raw_alpha == pytest.approx(exact_argmin)
    noisy = errors.copy()
    noisy[69] = 0.0  # outlier at alpha = 0.7
    (best,) = best_alphas(_table(alphas, noisy))
    assert best.raw_alpha == pytest.approx(0.7) and best.raw_error == 0.0
    assert best.smoothed_alpha == pytest.approx(exact_argmin, abs=0.02)


def test_clean_model_is_a_separate_candidate():
    alphas = np.round(np.arange(0.0, 1.0, 0.01), 2)
    errors = 0.01 + (alphas - 0.3) ** 2 * (1 + alphas)
    # the clean model collapses (a jump the filter must not smooth across) ...
    jump = errors.copy()
    jump[0] = 0.6
    (best,) = best_alphas(_table(alphas, jump))
    assert best.smoothed_alpha == pytest.approx(0.3)
    # ... or is the best of all, and then it is alpha*
    low = errors.copy()
    low[0] = 0.001
    (best,) = best_alphas(_table(alphas, low))
    assert best.smoothed_alpha == 0.0 and best.raw_alpha == 0.0


# ------------------------------------------------------------------------ the grid
CONFIG = {"dataset": "toy", "split": "test", "examples": 10, "n": 5, "noise": "gaussian",
          "seed": 0}


def test_grid_key_rounding():
    assert grid_key(0.1 + 0.2) == grid_key(0.3) == 0.3
    assert grid_key(0.30004) == 0.3 and grid_key(0.30006) == 0.3001
    assert str(grid_key(-0.0)) == "0.0"
    with pytest.raises(ValueError, match=">= 0"):
        grid_key(-0.1)


def test_grid_resumes_and_skips_done_cells(tmp_path):
    calls: list[tuple[float, float]] = []
    loads: list[float] = []

    def loader(alpha):
        def load():
            loads.append(alpha)
            return alpha
        return load

    def evaluate(alpha, beta):
        calls.append((alpha, beta))
        return RiskEstimate(n_errors=int(round(10 * alpha + beta * 10)) % 10, n=10)

    grid = RiskGrid(tmp_path, CONFIG)
    models = {0.0: loader(0.0), 0.1 + 0.2: loader(0.3)}
    assert run_risk_grid(grid, {0.0: models[0.0]}, [0.0, 0.5], evaluate) == 2
    assert calls == [(0.0, 0.0), (0.0, 0.5)]
    # a new process: the finished cells are read back and skipped; 0.1 + 0.2 is the key 0.3
    grid2 = RiskGrid(tmp_path, CONFIG)
    assert grid2.has(0.0, 0.5) and grid2.has(0, 0.1 * 5)
    assert grid2.missing([0.1 + 0.2, 0.0], [0.5, 0.0, 0.2 + 0.3]) == [(0.3, 0.0), (0.3, 0.5)]
    calls.clear()
    assert run_risk_grid(grid2, models, [0.0, 0.5, 0.2 + 0.3], evaluate) == 2
    assert calls == [(0.3, 0.0), (0.3, 0.5)]
    assert loads == [0.0, 0.3]  # alpha 0 was not loaded again
    assert run_risk_grid(RiskGrid(tmp_path, CONFIG), models, [0.0, 0.5], evaluate) == 0
    with open(tmp_path / "risk.csv") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_HEADER
    assert [(r[0], r[1]) for r in rows[1:]] == [("0.0", "0.0"), ("0.0", "0.5"), ("0.3", "0.0"),
                                               ("0.3", "0.5")]
    table = read_risk_table(tmp_path)
    assert table.alphas.tolist() == [0.0, 0.3] and table.betas.tolist() == [0.0, 0.5]
    assert table.n_errors[1, 1] == 8 and table.error[1, 1] == 0.8


def test_grid_refuses_other_configurations_and_duplicates(tmp_path):
    grid = RiskGrid(tmp_path, CONFIG)
    grid.record(0.1, 0.2, RiskEstimate(1, 10))
    with pytest.raises(ValueError, match="already"):
        grid.record(0.1, 0.1 + 0.1, RiskEstimate(1, 10))
    with pytest.raises(ValueError, match="differs in n: n=5"):
        RiskGrid(tmp_path, {**CONFIG, "n": 100})
    grid.bind_checkpoint(0.1, "a.pt")
    with pytest.raises(ValueError, match="a.pt"):
        RiskGrid(tmp_path, CONFIG).bind_checkpoint(0.1, "b.pt")
    with pytest.raises(ValueError, match="share an alpha"):
        run_risk_grid(grid, {0.3: lambda: None, 0.1 + 0.2: lambda: None}, [0.0],
                      lambda m, b: RiskEstimate(0, 1))
    assert json.loads((tmp_path / "run.json").read_text())["checkpoints"] == {
        "0.1": {"id": "a.pt", "path": None}}


def test_checkpoint_binding_follows_the_content_not_the_path(tmp_path):
    grid = RiskGrid(tmp_path, CONFIG)
    grid.bind_checkpoint(0.5, "sha256:aa", "runs/m.pt")
    RiskGrid(tmp_path, CONFIG).bind_checkpoint(0.5, "sha256:aa", "moved/m.pt")  # same model
    assert json.loads((tmp_path / "run.json").read_text())["checkpoints"] == {
        "0.5": {"id": "sha256:aa", "path": "moved/m.pt"}}
    with pytest.raises(ValueError, match="sha256:aa.*not 'sha256:bb'"):
        RiskGrid(tmp_path, CONFIG).bind_checkpoint(0.5, "sha256:bb", "moved/m.pt")


def test_partial_last_line_is_redone(tmp_path):
    grid = RiskGrid(tmp_path, CONFIG)
    grid.record(0.0, 0.0, RiskEstimate(2, 10))
    with open(tmp_path / "risk.csv", "a") as fh:
        fh.write("0.0,0.5,3")  # killed while writing
    grid2 = RiskGrid(tmp_path, CONFIG)
    assert grid2.has(0.0, 0.0) and not grid2.has(0.0, 0.5)


# ------------------------------------------------------------------------ report
def _fake_grid(tmp_path):
    grid = RiskGrid(tmp_path, CONFIG)
    rng = np.random.default_rng(0)
    for alpha in np.round(np.arange(0, 0.5, 0.05), 2):
        for beta in (0.0, 0.25):
            p = 0.02 + (alpha - beta) ** 2
            grid.record(alpha, beta, RiskEstimate(int(rng.binomial(1000, p)), 1000))
    return grid


def test_figures_and_report_only_cli(tmp_path, capsys):
    _fake_grid(tmp_path)
    assert main(["risk", "--out", str(tmp_path), "--report-only", "--formats", "png"]) == 0
    for name in ("risk_summary.csv", "alpha_star.csv", "risk_curves.png", "risk_heatmap.png"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "risk_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20
    first = rows[0]
    ref = binomtest(int(first["n_errors"]), int(first["n"])).proportion_ci(method="exact")
    assert float(first["ci_low"]) == pytest.approx(ref.low)
    with open(tmp_path / "alpha_star.csv") as fh:
        stars = list(csv.DictReader(fh))
    assert [float(s["beta"]) for s in stars] == [0.0, 0.25]
    assert float(stars[1]["smoothed_alpha"]) == pytest.approx(0.25, abs=0.051)


def test_risk_cli_needs_checkpoints(tmp_path, capsys):
    pytest.importorskip("smoothcert.data")
    assert main(["risk", "--out", str(tmp_path), "--dataset", "mnist"]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_risk_cli_end_to_end_on_digits(tmp_path, capsys):
    from smoothcert.data import get_dataset
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import load_checkpoint, save_checkpoint

    paths = []
    for k, sigma in enumerate((None, 0.25)):
        torch.manual_seed(k)
        model = get_model("mlp", dataset="digits")
        noise = None if sigma is None else get_noise("gaussian", dim=64, sigma=sigma).describe()
        paths.append(save_checkpoint(tmp_path / f"m{k}.pt", model=model, arch="mlp",
                                     dataset="digits", num_classes=10, input_shape=(1, 8, 8),
                                     train_noise=noise, config={}, epoch=1))
    out = tmp_path / "grid"
    argv = ["risk", "--checkpoints", str(tmp_path / "m*.pt"), "--betas", "0,0.5", "--n", "8",
            "--dataset", "digits", "--max-examples", "20", "--device", "cpu", "--formats", "png",
            "--out", str(out)]
    assert main(argv) == 0
    table = read_risk_table(out)
    assert table.alphas.tolist() == [0.0, 0.25] and table.betas.tolist() == [0.0, 0.5]
    # the cell (alpha = 0.25, beta = 0.5) equals a direct evaluation with the same seed
    ckpt = load_checkpoint(paths[1])
    direct = smoothed_risk(ckpt.model, get_dataset("digits", split="test"),
                           noise=get_noise("gaussian", dim=64, sigma=0.5), n=8, num_classes=10,
                           seed=0, indices=range(20))
    assert (table.n_errors[1, 1], table.n[1, 1]) == (direct.n_errors, 20)
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("0 new cells")
    assert main([*argv[:-2], "--n", "16", "--out", str(out)]) == 2
    assert "another configuration" in capsys.readouterr().err


def test_risk_cli_channels_last_gives_the_same_votes(tmp_path, capsys):
    from conftest import shared_data
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    root = shared_data("mnist")
    torch.manual_seed(0)
    model = get_model("lenet", dataset="mnist")
    save_checkpoint(tmp_path / "m.pt", model=model, arch="lenet", dataset="mnist", num_classes=10,
                    input_shape=(1, 28, 28), train_noise=None, config={}, epoch=1)
    tables = []
    for k, extra in enumerate(([], ["--channels-last"])):
        out = tmp_path / f"grid{k}"
        argv = ["risk", "--checkpoints", str(tmp_path / "m.pt"), "--betas", "0,0.5", "--n", "6",
                "--dataset", "mnist", "--root", str(root), "--max-examples", "40",
                "--formats", "png", "--out", str(out), *extra]
        assert main(argv) == 0
        tables.append(read_risk_table(out))
    assert tables[0].n_errors.tolist() == tables[1].n_errors.tolist()
    assert tables[0].n.tolist() == [[40, 40]]
    # the progress bar goes to stderr, never to stdout
    captured = capsys.readouterr()
    assert "risk cells" in captured.err and "risk cells" not in captured.out


def test_risk_cli_binary_classes(tmp_path, capsys):
    from conftest import shared_data
    from smoothcert.data import get_dataset
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    root = shared_data("mnist")
    torch.manual_seed(1)
    model = get_model("lenet", dataset="mnist", num_classes=2)
    save_checkpoint(tmp_path / "b.pt", model=model, arch="lenet", dataset="mnist", num_classes=2,
                    input_shape=(1, 28, 28), train_noise=None, config={}, epoch=1)
    argv = ["risk", "--checkpoints", str(tmp_path / "b.pt"), "--betas", "0", "--n", "1",
            "--dataset", "mnist", "--root", str(root), "--max-examples", "50", "--formats", "png",
            "--no-progress", "--out"]
    # a two-class model on the ten-class test set is refused, naming both class counts
    assert main([*argv, str(tmp_path / "g10")]) == 2
    assert "10 classes vs 2" in capsys.readouterr().err
    assert main([*argv, str(tmp_path / "g2"), "--classes", "4,9"]) == 0
    # beta = 0: the error is the base model's error on the first 50 fours and nines
    data = get_dataset("mnist", split="test", root=root, classes=[4, 9])
    x = torch.stack([data[i][0] for i in range(50)])
    y = torch.tensor([data[i][1] for i in range(50)])
    assert set(y.tolist()) == {0, 1}
    with torch.no_grad():
        wrong = int((model.eval()(x).argmax(1) != y).sum())
    assert read_risk_table(tmp_path / "g2").n_errors.tolist() == [[wrong]]
