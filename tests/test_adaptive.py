"""Adaptive certification: the union-bound inequality, soundness under repetition on classifiers
with known p_A (and a naive variant that the same check catches), agreement with fixed-n
certification, the edge cases p_A ~ 1/2 and p_A = 1, and the goals' arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.stats import beta as beta_dist
from scipy.stats import binom, norm

from smoothcert.certify.adaptive import (
    CERTIFIED,
    FUTILE,
    UNCERTIFIED,
    AdaptiveRule,
    StagePlan,
    Tolerance,
    certify_adaptive,
    parse_tolerance,
    required_p_lower,
    stage_plan,
)
from smoothcert.certify.classifier import ABSTAIN, SmoothedClassifier
from smoothcert.noises import get_noise
from smoothcert.norms import Norm


class HalfSpace(torch.nn.Module):
    """f(x) = 1 if x_0 < b else 0, on inputs of any dimension. Under Gaussian noise of std sigma,
    p_1(x) = Phi((b - x_0) / sigma); the smoothed classifier is the same half-space, so its true
    l2 robust radius at x is |b - x_0| = sigma * Phi^-1(p_1)."""

    def __init__(self, b: float) -> None:
        super().__init__()
        self.b = b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.b - x.reshape(x.shape[0], -1)[:, 0]
        return torch.stack([-s, s], dim=1)


def binomial_slack(rate: float, reps: int) -> float:
    """Four binomial standard deviations of an empirical rate over ``reps`` repetitions."""
    return 4.0 * math.sqrt(rate * (1.0 - rate) / reps)


def gaussian_noise(sigma: float = 1.0, dim: int = 2):
    return get_noise("gaussian", dim=dim, sigma=sigma)


# ---------------------------------------------------------------------------- the plan
@pytest.mark.parametrize("n,alpha,first,growth,share", [
    (100_000, 0.001, 100, 2.0, 0.5),
    (100_000, 0.001, 200, 2.0, 0.5),
    (10_000, 0.1, 50, 1.5, 0.3),
    (1_000, 0.2, 7, 3.0, 0.9),
    (12_345, 1e-7, 100, 2.0, 0.5),
    (1_000, 0.3, 10, 1.1, 0.1),
])
def test_stage_alphas_sum_to_at_most_alpha_exactly(n, alpha, first, growth, share):
    plan = stage_plan(n, alpha, first=first, growth=growth, final_share=share)
    total = sum((Fraction(a) for a in plan.alphas), Fraction(0))
    assert total <= Fraction(alpha)
    # nothing is wasted beyond float rounding
    assert float(total) == pytest.approx(alpha, rel=1e-12)
    assert plan.alphas[-1] == pytest.approx(share * alpha, rel=1e-12)
    assert plan.sizes[0] == first and plan.sizes[-1] == n
    assert all(b > a for a, b in zip(plan.sizes, plan.sizes[1:], strict=False))
    assert all(b <= math.ceil(a * growth) for a, b in zip(plan.sizes, plan.sizes[1:],
                                                           strict=False))
    assert plan.futility[-1] == 0.0
    assert sum(plan.futility) == pytest.approx(0.005, rel=1e-12)


def test_default_plan_doubles_from_100():
    plan = stage_plan(100_000, 0.001)
    assert plan.sizes == (100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 100_000)


def test_single_stage_plan_is_fixed_n():
    plan = stage_plan(500, 0.01, first=500)
    assert plan.sizes == (500,) and plan.alphas == (0.01,)


def test_plan_refuses_overspending_alpha():
    with pytest.raises(ValueError, match="sum"):
        StagePlan(sizes=(10, 20), alphas=(0.06, 0.05), futility=(0.0, 0.0), alpha=0.1)
    with pytest.raises(ValueError, match="increasing"):
        StagePlan(sizes=(20, 20), alphas=(0.01, 0.01), futility=(0.0, 0.0), alpha=0.1)
    with pytest.raises(ValueError, match="growth"):
        stage_plan(1000, 0.01, growth=1.0)


# ---------------------------------------------------------------------------- p*(r)
def test_required_p_lower_inverts_the_gaussian_radius():
    noise = gaussian_noise(sigma=0.5, dim=784)
    radii = np.array([0.1, 0.25, 0.5, 0.75, 1.0, 1.5])
    p_star = required_p_lower(noise, "l2", radii)
    np.testing.assert_allclose(p_star, norm.cdf(radii / 0.5), rtol=0, atol=1e-14)
    # the smallest float that certifies r: it does, and the float below does not
    assert (noise.certified_radius(p_star, "l2") >= radii).all()
    below = np.nextafter(p_star, 0.0)
    assert (noise.certified_radius(below, "l2") < radii).all()


def test_required_p_lower_inverts_the_laplace_radius():
    noise = get_noise("laplace", dim=10, sigma=1.0)
    lam = 1.0 / math.sqrt(2.0)
    radii = np.array([0.2, 1.0, 3.0])
    # R = -lam ln(2(1 - p))  <=>  p = 1 - exp(-r / lam) / 2
    expected = 1.0 - np.exp(-radii / lam) / 2.0
    np.testing.assert_allclose(required_p_lower(noise, "l1", radii), expected, atol=1e-14)


def test_required_p_lower_of_an_unreachable_radius_is_infinite():
    # the uniform l1 radius at sigma = 1 is at most 2 * sqrt(3) * 1/2 = sqrt(3)
    noise = get_noise("uniform", dim=4, sigma=1.0)
    assert required_p_lower(noise, "l1", 2.0) == math.inf
    assert required_p_lower(noise, "l1", 1.0) == pytest.approx(0.5 + 1.0 / (2 * math.sqrt(3)),
                                                               abs=1e-14)
    with pytest.raises(ValueError, match="> 0"):
        required_p_lower(noise, "l1", 0.0)


# ---------------------------------------------------------------------------- goals
def test_parse_tolerance():
    assert parse_tolerance("1%") == Tolerance(0.01, relative=True)
    assert parse_tolerance("0.05") == Tolerance(0.05)
    assert parse_tolerance(0.1) == Tolerance(0.1)
    with pytest.raises(ValueError, match="1%"):
        parse_tolerance("one percent")
    with pytest.raises(ValueError, match="100%"):
        parse_tolerance("150%")
    with pytest.raises(TypeError):
        parse_tolerance(True)


def test_tolerance_met():
    best = np.array([2.0, 2.0, 0.0])
    current = np.array([1.95, 1.985, 0.0])
    np.testing.assert_array_equal(Tolerance(0.01, relative=True).met(current, best),
                                  [False, True, True])
    np.testing.assert_array_equal(Tolerance(0.06).met(current, best), [True, True, True])
    np.testing.assert_array_equal(Tolerance(0.04).met(current, best), [False, True, True])


def test_best_p_lower_matches_scipy():
    noise = gaussian_noise()
    plan = stage_plan(10_000, 0.01, first=100, futility=0.01)
    rule = AdaptiveRule(noise, ["l2"], plan, radii=[0.5])
    n_a = np.array([60, 90, 100])
    beta = plan.futility[0]
    # one-sided upper Clopper-Pearson bound: the p with P[Binomial(100, p) <= n_a] = beta
    upper = np.where(n_a < 100, beta_dist.ppf(1 - beta, n_a + 1, 100 - n_a), 1.0)
    count = np.ceil(upper * 10_000)
    expected = beta_dist.ppf(plan.alphas[-1], count, 10_000 - count + 1)
    np.testing.assert_allclose(rule.best_p_lower(0, n_a), expected, rtol=1e-10)


def test_a_goal_is_required():
    with pytest.raises(ValueError, match="goal"):
        AdaptiveRule(gaussian_noise(), ["l2"], stage_plan(1000, 0.01))
    with pytest.raises(ValueError, match="not among"):
        AdaptiveRule(gaussian_noise(), ["l2"], stage_plan(1000, 0.01), radii={"l1": [0.5]})


# ---------------------------------------------------------------------------- soundness
def _count_level_wrong_rate(rule: AdaptiveRule, p_a: float, reps: int, seed: int) -> float:
    """Fraction of repetitions whose p_lower exceeds p_A (the only way a certificate can be
    wrong), with the estimation counts drawn as binomials of the true p_A."""
    rng = np.random.default_rng(seed)
    outcome = rule.run(reps, lambda active, m: rng.binomial(m, p_a, size=active.size))
    return float(np.mean(outcome.p_lower > p_a))


@pytest.mark.parametrize("p_a", [0.62, 0.8, 0.93, 0.99])
def test_count_level_soundness_and_the_check_has_power(p_a):
    """With alpha = 0.2, the adaptive procedure is wrong at most 20% of the time (plus binomial
    slack); the same procedure with every stage at the full alpha (no union bound) is caught
    being wrong far more often, so the check can fail."""
    alpha, reps = 0.2, 4000
    noise = gaussian_noise()
    sizes = (20, 40, 80, 160, 320, 640, 1280)
    # radii just above what p_A certifies: the procedure keeps sampling, and every stage's
    # bound is a chance to overshoot p_A
    radii = [norm.ppf(p_a) * 1.001, norm.ppf(p_a) * 1.05]
    plan = stage_plan(sizes[-1], alpha, first=sizes[0])
    assert plan.sizes == sizes
    sound = AdaptiveRule(noise, ["l2"], plan, radii=radii)
    rate = _count_level_wrong_rate(sound, p_a, reps, seed=1)
    assert rate <= alpha + binomial_slack(alpha, reps)

    naive_plan = StagePlan(sizes=sizes, alphas=(alpha,) * len(sizes),
                           futility=(0.0,) * len(sizes), alpha=alpha * len(sizes))
    naive = AdaptiveRule(noise, ["l2"], naive_plan, radii=radii)
    naive_rate = _count_level_wrong_rate(naive, p_a, reps, seed=1)
    assert naive_rate > alpha + binomial_slack(alpha, reps)


def test_soundness_under_repetition_with_a_real_classifier():
    """A half-space under Gaussian noise (true radius known in closed form), certified again and
    again with fresh noise: wrong certificates (radius above the true radius) stay within
    alpha plus slack, with a radii goal and with a tolerance goal."""
    torch.manual_seed(0)
    sigma, p_a, alpha, reps = 0.5, 0.9, 0.2, 600
    true_radius = sigma * norm.ppf(p_a)
    b = true_radius  # x = 0 lies at distance b from the boundary x_0 = b
    smoothed = SmoothedClassifier(HalfSpace(b), gaussian_noise(sigma, dim=2), num_classes=2,
                                  batch_size=4000)
    xs = torch.zeros(reps, 2, 1, dtype=torch.float64)
    plan = stage_plan(2000, alpha, first=25)
    for goal in ({"radii": [true_radius * 1.01]}, {"tolerance": "1%"}):
        gens = [torch.Generator().manual_seed(1000 * i + 7) for i in range(reps)]
        certs = certify_adaptive(smoothed, xs, 20, 2000, alpha, ["l2"], generators=gens,
                                 plan=plan, **goal)
        wrong = np.mean([c.prediction == 1 and c.radius[Norm.L2] > true_radius + 1e-12
                         for c in certs])
        assert wrong <= alpha + binomial_slack(alpha, reps), goal
        # the procedure did sample adaptively and did certify something
        assert np.mean([c.prediction == 1 for c in certs]) > 0.9
        assert len({c.samples for c in certs}) > 1


def test_laplace_soundness_is_family_independent():
    """Laplace noise, l1: a threshold classifier in 1-D has p_A = 1 - exp(-t / lam) / 2 and
    true radius t; the count-level wrong rate stays within alpha."""
    noise = get_noise("laplace", dim=1, sigma=1.0)
    lam = noise.scale
    t = 0.8
    p_a = 1.0 - math.exp(-t / lam) / 2.0
    alpha, reps = 0.2, 4000
    rule = AdaptiveRule(noise, ["l1"], stage_plan(1280, alpha, first=20), radii=[t * 1.02])
    rng = np.random.default_rng(3)
    outcome = rule.run(reps, lambda active, m: rng.binomial(m, p_a, size=active.size))
    radius = rule.radius(outcome.p_lower)[Norm.L1]
    assert np.mean(radius > t + 1e-12) <= alpha + binomial_slack(alpha, reps)


# ---------------------------------------------------------------------------- vs fixed n
def test_one_stage_equals_fixed_n_certify():
    """With one stage (first >= n) the procedure is fixed-n CERTIFY, sample for sample."""
    sigma = 0.5
    smoothed = SmoothedClassifier(HalfSpace(0.3), gaussian_noise(sigma, dim=2), num_classes=2)
    x = torch.tensor([[0.1], [0.0]], dtype=torch.float64)
    plan = stage_plan(3000, 0.01, first=3000)
    adaptive = certify_adaptive(smoothed, x.unsqueeze(0), 100, 3000, 0.01, ["l2"],
                                radii=[0.2], generators=[torch.Generator().manual_seed(5)],
                                plan=plan)[0]
    fixed = smoothed.certify(x, 100, 3000, 0.01, ["l2"],
                             generator=torch.Generator().manual_seed(5))
    assert adaptive.samples == fixed.samples == 3100
    np.testing.assert_array_equal(adaptive.counts, fixed.counts)
    assert adaptive.p_lower == fixed.p_lower
    assert adaptive.radius == fixed.radius


@pytest.mark.parametrize("margin,expected", [(1.5, (CERTIFIED, CERTIFIED, CERTIFIED)),
                                             (0.55, (CERTIFIED, FUTILE, FUTILE)),
                                             (0.05, (FUTILE, FUTILE, FUTILE))])
def test_same_decisions_as_fixed_n_far_from_the_thresholds(margin, expected):
    """Inputs whose true radius (margin) is far from the requested radii get the same
    decisions as fixed-n certification, with far fewer samples."""
    sigma, n, alpha = 0.5, 20_000, 0.001
    radii = (0.25, 0.75, 1.0)
    smoothed = SmoothedClassifier(HalfSpace(margin), gaussian_noise(sigma, dim=2),
                                  num_classes=2, batch_size=20_000)
    xs = torch.zeros(3, 2, 1)
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    certs = certify_adaptive(smoothed, xs, 100, n, alpha, ["l2"], radii=radii, generators=gens)
    fixed = smoothed.certify_batch(xs, 100, n, alpha, ["l2"],
                                   generators=[torch.Generator().manual_seed(50 + i)
                                               for i in range(3)])
    for cert, ref in zip(certs, fixed, strict=True):
        assert tuple(cert.decisions[Norm.L2][r] for r in radii) == expected
        assert tuple(ref.radius[Norm.L2] >= r for r in radii) == \
            tuple(d == CERTIFIED for d in expected)
        assert cert.samples <= 100 + 3200


# ---------------------------------------------------------------------------- edge cases
def test_p_near_half_abstains_and_uses_all_samples_for_a_tolerance():
    smoothed = SmoothedClassifier(HalfSpace(0.0), gaussian_noise(1.0, dim=2), num_classes=2,
                                  batch_size=5000)
    xs = torch.zeros(2, 2, 1)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    certs = certify_adaptive(smoothed, xs, 100, 5000, 0.001, ["l2"], tolerance="1%",
                             generators=gens)
    plan = stage_plan(5000, 0.001)
    for cert in certs:
        assert cert.prediction == ABSTAIN and cert.radius == {Norm.L2: 0.0}
        assert cert.samples == 100 + 5000 and cert.stage == len(plan.sizes) - 1
        assert cert.best_radius[Norm.L2] == 0.0


def test_p_near_half_with_radii_gives_up_early():
    smoothed = SmoothedClassifier(HalfSpace(0.0), gaussian_noise(1.0, dim=2), num_classes=2)
    cert = certify_adaptive(smoothed, torch.zeros(1, 2, 1), 100, 100_000, 0.001, ["l2"],
                            radii=[0.25, 0.5], generators=[torch.Generator().manual_seed(0)])[0]
    assert cert.prediction == ABSTAIN
    assert cert.decisions[Norm.L2] == {0.25: FUTILE, 0.5: FUTILE}
    assert cert.samples <= 100 + 1600


def test_p_one_is_decided_after_a_few_hundred_samples():
    """An always-right classifier: stage 1 (100 samples) has p_lower = alpha_1^(1/100), which
    certifies every radius up to sigma * Phi^-1 of that."""
    sigma, alpha = 1.0, 0.001
    plan = stage_plan(100_000, alpha)
    smoothed = SmoothedClassifier(HalfSpace(1e6), gaussian_noise(sigma, dim=2), num_classes=2)
    cert = certify_adaptive(smoothed, torch.zeros(1, 2, 1), 100, 100_000, alpha, ["l2"],
                            radii=[0.25, 0.5, 1.0], generators=[torch.Generator().manual_seed(0)])[0]
    expected_p = plan.alphas[0] ** (1 / 100)
    assert cert.samples == 200 and cert.stage == 0
    assert cert.p_lower == pytest.approx(expected_p, rel=1e-12)
    assert cert.radius[Norm.L2] == pytest.approx(sigma * norm.ppf(expected_p), rel=1e-9)
    assert set(cert.decisions[Norm.L2].values()) == {CERTIFIED}
    # the largest radius this noise can certify with n samples: far out, so decided by futility
    cert = certify_adaptive(smoothed, torch.zeros(1, 2, 1), 100, 100_000, alpha, ["l2"],
                            radii=[2.0, 10.0], generators=[torch.Generator().manual_seed(0)])[0]
    assert cert.decisions[Norm.L2] == {2.0: CERTIFIED, 10.0: FUTILE}
    # the first stage whose all-success bound alpha_k^(1/n_k) reaches Phi(2)
    stage = next(k for k, (a, s) in enumerate(zip(plan.alphas, plan.sizes, strict=True))
                 if a ** (1 / s) >= norm.cdf(2.0))
    assert plan.sizes[stage] == 800
    assert cert.samples == 100 + 800


def test_uncertified_at_the_last_stage():
    """A radius just above reach keeps the procedure sampling to n; it ends UNCERTIFIED."""
    noise = gaussian_noise()
    plan = stage_plan(400, 0.01, first=100)
    p_a = 0.8
    rule = AdaptiveRule(noise, ["l2"], plan, radii=[norm.ppf(p_a) * 0.999])
    # counts exactly at the expectation: the bound stays below p_A, the radius is never certified
    outcome = rule.run(1, lambda active, m: np.full(active.size, round(p_a * m)))
    assert outcome.samples[0] == 400
    decisions = rule.decisions(outcome.p_lower[0], outcome.p_best[0], final=True)
    assert decisions[Norm.L2] == {norm.ppf(p_a) * 0.999: UNCERTIFIED}
    assert outcome.p_lower[0] == pytest.approx(
        max(beta_dist.ppf(a, round(p_a * s), s - round(p_a * s) + 1)
            for a, s in zip(plan.alphas, plan.sizes, strict=True)), rel=1e-10)


def test_count_level_futility_rarely_loses_a_certifiable_radius():
    """p_A comfortably above what the last stage needs: futility gives the radius up in at most
    the futility budget of repetitions (plus slack), so certification rarely suffers."""
    noise = gaussian_noise()
    plan = stage_plan(10_000, 0.001, futility=0.05)
    p_need = 0.95
    p_a = 0.965
    # the premise: at the typical count ceil(p_A n), the last stage certifies p_need
    typical = math.ceil(p_a * plan.n)
    assert beta_dist.ppf(plan.alphas[-1], typical, plan.n - typical + 1) >= p_need
    rule = AdaptiveRule(noise, ["l2"], plan, radii=[norm.ppf(p_need)])
    rng = np.random.default_rng(11)
    reps = 4000
    outcome = rule.run(reps, lambda active, m: rng.binomial(m, p_a, size=active.size))
    early_futile = (outcome.p_lower < p_need) & (outcome.samples < plan.n)
    assert np.mean(early_futile) <= 0.05 + binomial_slack(0.05, reps)
    # and the final stage alone certifies it with high probability
    k_needed = next(k for k in range(plan.n + 1)
                    if beta_dist.ppf(plan.alphas[-1], k, plan.n - k + 1) >= p_need)
    assert binom.sf(k_needed - 1, plan.n, p_a) > 0.99
    assert np.mean(outcome.p_lower >= p_need) > 0.9


def test_input_checks():
    smoothed = SmoothedClassifier(HalfSpace(0.0), gaussian_noise(1.0, dim=2), num_classes=2)
    with pytest.raises(ValueError, match="bound"):
        certify_adaptive(smoothed, torch.zeros(1, 2, 1), 10, 100, 0.01, radii=[0.1],
                         bound="wilson")
    with pytest.raises(ValueError, match="does not fit"):
        certify_adaptive(smoothed, torch.zeros(1, 2, 1), 10, 100, 0.01, radii=[0.1],
                         plan=stage_plan(200, 0.01))
    with pytest.raises(ValueError, match="generators"):
        certify_adaptive(smoothed, torch.zeros(2, 2, 1), 10, 100, 0.01, radii=[0.1],
                         generators=[None])


# ---------------------------------------------------------------------------- integration
def test_smoothed_classifier_certify_adaptive_mode():
    smoothed = SmoothedClassifier(HalfSpace(1e6), gaussian_noise(1.0, dim=2), num_classes=2)
    x = torch.zeros(2, 1)
    cert = smoothed.certify(x, 100, 100_000, 0.001, ["l2"], mode="adaptive", radii=[0.5],
                            generator=torch.Generator().manual_seed(0))
    assert cert.prediction == 1 and cert.samples == 200
    assert cert.decisions == {Norm.L2: {0.5: CERTIFIED}}
    with pytest.raises(ValueError, match="unknown certification mode"):
        smoothed.certify(x, 10, 100, 0.01, mode="sequential")
    with pytest.raises(ValueError, match="mode='adaptive'"):
        smoothed.certify(x, 10, 100, 0.01, radii=[0.5])


def test_certify_dataset_records_the_samples_each_input_used(tmp_path):
    import csv
    import json

    from smoothcert.certify.dataset import certify_dataset
    from smoothcert.runs.results import run_json_path

    # x_0 = 0.4 - margin: the half-space at 0.4 gives every input the true radius ``margin``
    margins = [2.0, 0.4, 0.01]
    data = [(torch.tensor([[0.4 - m], [0.0]]), 1) for m in margins]
    smoothed = SmoothedClassifier(HalfSpace(0.4), gaussian_noise(0.5, dim=2), num_classes=2)
    out = tmp_path / "adaptive.tsv"
    certify_dataset(smoothed, data, out, n0=100, n=20_000, alpha=0.001, mode="adaptive",
                    radii=[0.25], seed=0)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    samples = [int(r["samples"]) for r in rows]
    assert samples[0] == 200  # decided at the first stage
    assert all(s <= 20_100 for s in samples) and len(set(samples)) > 1
    assert [float(r["radius_l2"]) >= 0.25 for r in rows] == [True, True, False]
    config = json.loads(run_json_path(out).read_text())["configuration"]
    assert config["mode"] == "adaptive" and config["radii"] == [0.25]
    assert config["stages"] == list(stage_plan(20_000, 0.001).sizes)
    with pytest.raises(ValueError, match="goal"):
        certify_dataset(smoothed, data, tmp_path / "x.tsv", n0=10, n=100, alpha=0.01,
                        mode="adaptive")
    assert not (tmp_path / "x.tsv").exists()


@pytest.fixture
def digits_checkpoint(tmp_path):
    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = get_model("mlp", dataset="digits")
    return save_checkpoint(tmp_path / "digits.pt", model=model, arch="mlp", dataset="digits",
                           num_classes=10, input_shape=(1, 8, 8), train_noise=None, config={},
                           epoch=1)


def _main(*argv: str) -> int:
    from smoothcert.cli.main import main

    return main(list(argv))


def test_cli_certify_adaptive(tmp_path, digits_checkpoint, capsys):
    import csv

    base = ["certify", "--checkpoint", str(digits_checkpoint), "--noise", "gaussian",
            "--sigma", "0.25", "--n0", "20", "--n", "2000", "--alpha", "0.01", "--max", "4"]
    out = tmp_path / "cert.tsv"
    assert _main(*base, "--out", str(out), "--mode", "adaptive", "--radii", "0.1,0.2",
                 "--tolerance", "5%") == 0
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 4
    assert all(20 + 100 <= int(r["samples"]) <= 20 + 2000 for r in rows)
    for argv, message in ((["--mode", "adaptive"], "needs a goal"),
                          (["--radii", "0.5"], "goals of --mode adaptive"),
                          (["--mode", "adaptive", "--tolerance", "ten"], "1%")):
        bad = tmp_path / "bad.tsv"
        assert _main(*base, "--out", str(bad), *argv) == 2
        assert message in capsys.readouterr().err
        assert not bad.exists()
    # a malformed flag value is an argparse usage error
    with pytest.raises(SystemExit) as exc:
        _main(*base, "--out", str(tmp_path / "bad.tsv"), "--mode", "adaptive", "--radii=-1")
    assert exc.value.code == 2 and "> 0" in capsys.readouterr().err


def test_cli_certify_adaptive_goals_per_norm(tmp_path, digits_checkpoint, capsys):
    import json

    base = ["certify", "--checkpoint", str(digits_checkpoint), "--noise", "gaussian",
            "--sigma", "0.25", "--n0", "20", "--n", "2000", "--alpha", "0.01", "--max", "2",
            "--mode", "adaptive", "--norms", "l2,linf", "--convert"]
    out = tmp_path / "cert.tsv"
    assert _main(*base, "--out", str(out), "--radii", "linf=0.02", "--radii", "l2=0.3,0.1") == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["configuration"]["radii"] == {"l2": [0.1, 0.3], "linf": [0.02]}
    # the same radii assigned to the norms the other way round are another run: a record that
    # kept only the union (0.02, 0.1, 0.3) would wrongly resume it
    assert _main(*base, "--out", str(out), "--radii", "l2=0.02", "--radii", "linf=0.3,0.1") == 2
    assert "belongs to another run" in capsys.readouterr().err
    # one list for every norm is recorded as before: the sorted list
    plain = tmp_path / "plain.tsv"
    assert _main(*base, "--out", str(plain), "--radii", "0.3,0.1") == 0
    record = json.loads(plain.with_suffix(".json").read_text())
    assert record["configuration"]["radii"] == [0.1, 0.3]
    for argv, message in ((["--radii", "0.1", "--radii", "l2=0.2"], "not both"),
                          (["--radii", "0.1", "--radii", "0.2"], "not both"),
                          (["--radii", "l2=0.1", "--radii", "l2=0.2"], "gives l2 twice"),
                          (["--radii", "l1=0.1"], "l1, which --norms (l2,linf) does not")):
        bad = tmp_path / "bad.tsv"
        assert _main(*base, "--out", str(bad), *argv) == 2
        assert message in capsys.readouterr().err
        assert not bad.exists() and not bad.with_suffix(".json").exists()
    with pytest.raises(SystemExit) as exc:
        _main(*base, "--out", str(tmp_path / "bad.tsv"), "--radii", "l3=0.1")
    assert exc.value.code == 2 and "unknown norm 'l3'" in capsys.readouterr().err


def test_cli_certify_goal_for_one_norm_only(tmp_path):
    """A goal in l2 only leaves linf without a goal. The model votes class 0 under all noise
    (p_A = 1), so the l2 goal 0.05 at sigma 0.25 (p_lower > 0.58) is met at the first stage of
    100 samples, while the same goal in linf as well (converted: l2 radius 0.4 at d = 64,
    p_lower > 0.945) needs a later stage."""
    import csv

    from smoothcert.models import get_model
    from smoothcert.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = get_model("mlp", dataset="digits")
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias[0] = 1e4
    checkpoint = save_checkpoint(tmp_path / "zero.pt", model=model, arch="mlp",
                                 dataset="digits", num_classes=10, input_shape=(1, 8, 8),
                                 train_noise=None, config={}, epoch=1)
    base = ["certify", "--checkpoint", str(checkpoint), "--noise", "gaussian",
            "--sigma", "0.25", "--n0", "20", "--n", "20000", "--alpha", "0.001", "--max", "6",
            "--mode", "adaptive", "--norms", "l2,linf", "--convert"]

    def samples(path, *radii):
        assert _main(*base, "--out", str(path), *radii) == 0
        with open(path, newline="") as fh:
            return [int(r["samples"]) for r in csv.DictReader(fh, delimiter="\t")]

    assert samples(tmp_path / "one.tsv", "--radii", "l2=0.05") == [20 + 100] * 6
    assert all(s > 20 + 100 for s in samples(tmp_path / "every.tsv", "--radii", "0.05"))
