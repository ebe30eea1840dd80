"""The smoothed classifier: statistical validity against classifiers with known p_A, exact
values for constant classifiers, reproducibility, and input checks."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy.stats import binom, norm

from smoothcert.certify.classifier import ABSTAIN, SmoothedClassifier
from smoothcert.noises import get_noise
from smoothcert.norms import Norm

mpmath.mp.dps = 30


class HalfSpace(torch.nn.Module):
    """f(x) = 1 if <w, x> + b > 0 else 0. Under Gaussian noise of std sigma,
    p_1(x) = Phi((<w, x> + b) / (sigma ||w||)); the smoothed classifier is the same half-space, so
    the true robust l2 radius of g at x is |<w, x> + b| / ||w||."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.register_buffer("w", w)
        self.b = b

    def forward(self, x):
        s = x.reshape(x.shape[0], -1) @ self.w + self.b
        return torch.stack([-s, s], dim=1)


class Constant(torch.nn.Module):
    def __init__(self, label: int, num_classes: int) -> None:
        super().__init__()
        self.label, self.num_classes = label, num_classes

    def forward(self, x):
        logits = torch.zeros(x.shape[0], self.num_classes, dtype=x.dtype)
        logits[:, self.label] = 1.0
        return logits


class RightWithProbability(torch.nn.Module):
    """Returns ``label`` with probability p whatever the input (its own seeded randomness), and
    otherwise one of the other classes uniformly."""

    def __init__(self, label: int, p: float, num_classes: int, seed: int) -> None:
        super().__init__()
        self.label, self.p, self.num_classes = label, p, num_classes
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x):
        rows = x.shape[0]
        right = torch.rand(rows, generator=self.gen) < self.p
        other = torch.randint(0, self.num_classes - 1, (rows,), generator=self.gen)
        other = other + (other >= self.label).long()
        pred = torch.where(right, torch.full_like(other, self.label), other)
        return torch.nn.functional.one_hot(pred, self.num_classes).to(x.dtype)


def _generators(count: int, offset: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(offset + i) for i in range(count)]


def _binomial_slack(reps: int, alpha: float) -> int:
    """The largest failure count compatible with a failure rate <= alpha: the binomial quantile
    at 1 - 1e-6, so a correct implementation fails this check with probability < 1e-6."""
    return int(binom.ppf(1 - 1e-6, reps, alpha))


# ---------------------------------------------------------------------------------- validity
def _half_space_failures(reps: int, n0: int, n: int, alpha: float, p_a: float,
                         sigma: float = 1.0, batch_size: int = 10_000) -> tuple[int, np.ndarray]:
    dim = 2
    w = torch.tensor([0.6, 0.8])  # unit norm
    b = -0.3
    # place x so that <w, x> + b = sigma * Phi^-1(p_a): class 1 with probability exactly p_a
    margin = sigma * norm.ppf(p_a)
    x = w * (margin - b)
    true_radius = margin
    noise = get_noise("gaussian", dim=dim, sigma=sigma)
    smoothed = SmoothedClassifier(HalfSpace(w, b), noise, num_classes=2, batch_size=batch_size)
    certs = smoothed.certify_batch(x.expand(reps, dim).clone(), n0, n, alpha,
                                   generators=_generators(reps))
    failures = sum((c.prediction == 0) or (c.prediction == 1 and
                                           c.radius[Norm.L2] > true_radius * (1 + 1e-12))
                   for c in certs)
    return failures, np.array([c.p_lower for c in certs])


def test_half_space_certificates_fail_at_most_alpha_of_the_time():
    reps, alpha, p_a = 400, 0.1, 0.8
    failures, p_lower = _half_space_failures(reps, n0=20, n=300, alpha=alpha, p_a=p_a)
    assert failures <= _binomial_slack(reps, alpha)
    # not vacuous: the bounds sit just below p_A (n = 300: sd of the estimate ~ 0.023)
    assert 0.70 < np.median(p_lower) < p_a


@pytest.mark.slow
def test_half_space_certificates_fail_at_most_alpha_of_the_time_many_reps():
    reps, alpha, p_a = 20_000, 0.01, 0.9
    failures, _ = _half_space_failures(reps, n0=64, n=2000, alpha=alpha, p_a=p_a,
                                       batch_size=100_000)
    assert failures <= _binomial_slack(reps, alpha)


def _random_classifier_failures(reps: int, n: int, alpha: float, p: float, bound: str
                                ) -> tuple[int, np.ndarray]:
    noise = get_noise("gaussian", dim=3, sigma=0.5)
    model = RightWithProbability(label=2, p=p, num_classes=4, seed=1234)
    # several inputs share each batch: the per-input counting is what is exercised
    smoothed = SmoothedClassifier(model, noise, num_classes=4, batch_size=5 * n)
    certs = smoothed.certify_batch(torch.zeros(reps, 3), 10, n, alpha, bound=bound,
                                   generators=_generators(reps))
    assert all(int(c.counts.sum()) == n for c in certs)
    failures = sum(c.p_lower > p for c in certs if c.prediction == 2)
    return failures, np.array([c.p_lower for c in certs])


@pytest.mark.parametrize("bound", ["one-sided", "two-sided"])
def test_random_classifier_p_lower_covers_p(bound):
    reps, alpha, p = 300, 0.2, 0.65
    failures, p_lower = _random_classifier_failures(reps, n=200, alpha=alpha, p=p, bound=bound)
    level = alpha if bound == "one-sided" else alpha / 2
    assert failures <= _binomial_slack(reps, level)
    # the bound is informative: one-sided CP at n = 200 sits about 0.9 sd below p on average
    assert p - 0.08 < np.mean(p_lower) < p


@pytest.mark.slow
def test_random_classifier_p_lower_covers_p_many_reps():
    reps, alpha, p = 20_000, 0.01, 0.7
    failures, _ = _random_classifier_failures(reps, n=1000, alpha=alpha, p=p, bound="one-sided")
    assert failures <= _binomial_slack(reps, alpha)


# ---------------------------------------------------------------------------------- exact values
def test_constant_classifier_reaches_alpha_to_the_one_over_n():
    sigma, n, alpha = 0.5, 100_000, 0.001
    noise = get_noise("gaussian", dim=4, sigma=sigma)
    smoothed = SmoothedClassifier(Constant(3, 5), noise, num_classes=5, batch_size=50_000)
    cert = smoothed.certify(torch.rand(4), 100, n, alpha, norms=("l2", "linf", "l1"),
                            convert=True, generator=torch.Generator().manual_seed(0))
    p = mpmath.exp(mpmath.log(mpmath.mpf(alpha)) / n)
    assert abs(cert.p_lower - 0.99993092) < 1e-8
    assert cert.p_lower == pytest.approx(float(p), rel=1e-12)
    assert cert.prediction == 3 and cert.samples == 100 + n
    np.testing.assert_array_equal(cert.counts, [0, 0, 0, n, 0])
    r2 = float(sigma * mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1))
    assert cert.radius[Norm.L2] == pytest.approx(r2, rel=1e-9)
    # lp conversion from l2: linf = l2 / sqrt(d); l1 <= l2 ball containment keeps the radius
    assert cert.radius[Norm.LINF] == pytest.approx(r2 / 2.0, rel=1e-9)
    assert cert.radius[Norm.L1] == pytest.approx(r2, rel=1e-9)


def test_fifty_fifty_classifier_makes_predict_abstain():
    # f(x) = 1[x_0 > 0] at x = 0 under symmetric noise: each class has probability exactly 1/2
    noise = get_noise("gaussian", dim=2, sigma=1.0)
    smoothed = SmoothedClassifier(HalfSpace(torch.tensor([1.0, 0.0]), 0.0), noise, 2,
                                  batch_size=2000)
    preds = smoothed.predict_batch(torch.zeros(8, 2), 2000, 0.001, generators=_generators(8))
    assert all(p.prediction == ABSTAIN for p in preds)
    assert all(p.p_value > 0.001 and int(p.counts.sum()) == 2000 for p in preds)
    # and certify abstains too: p_lower <= 1/2, radius 0
    cert = smoothed.certify(torch.zeros(2), 100, 2000, 0.001,
                            generator=torch.Generator().manual_seed(0))
    assert cert.prediction == ABSTAIN and cert.radius == {Norm.L2: 0.0}
    assert cert.p_lower <= 0.5


def test_clear_classifier_makes_predict_answer():
    noise = get_noise("gaussian", dim=2, sigma=1.0)
    smoothed = SmoothedClassifier(HalfSpace(torch.tensor([1.0, 0.0]), 0.0), noise, 2)
    pred = smoothed.predict(torch.tensor([1.5, 0.0]), 1000, 0.001,
                            generator=torch.Generator().manual_seed(0))
    assert pred.prediction == 1 and pred.p_value < 1e-20 and pred.samples == 1000


# ---------------------------------------------------------------------------------- reproducibility
def test_same_generator_seed_same_certificate_regardless_of_batching():
    noise = get_noise("gaussian", dim=2, sigma=1.0)
    model = HalfSpace(torch.tensor([0.6, 0.8]), 0.1)
    xs = torch.randn(7, 2, generator=torch.Generator().manual_seed(5))
    runs = []
    for batch_size in (1000, 64, 7):
        smoothed = SmoothedClassifier(model, noise, 2, batch_size=batch_size)
        runs.append(smoothed.certify_batch(xs, 30, 300, 0.01, generators=_generators(7)))
    one_by_one = [SmoothedClassifier(model, noise, 2).certify(
        xs[i], 30, 300, 0.01, generator=g) for i, g in enumerate(_generators(7))]
    for run in [*runs[1:], one_by_one]:
        for a, b in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(a.counts, b.counts)
            assert (a.prediction, a.p_lower) == (b.prediction, b.p_lower)
    # a different seed gives different noise
    other = SmoothedClassifier(model, noise, 2).certify_batch(xs, 30, 300, 0.01,
                                                              generators=_generators(7, 100))
    assert any((a.counts != b.counts).any() for a, b in zip(runs[0], other, strict=True))


def test_selection_and_estimation_use_independent_samples():
    """The estimation counts equal class_counts after the generator has produced the n0
    selection draws, not the selection draws themselves."""
    noise = get_noise("gaussian", dim=2, sigma=1.0)
    smoothed = SmoothedClassifier(HalfSpace(torch.tensor([1.0, 0.0]), 0.0), noise, 2)
    x = torch.tensor([0.2, 0.0])
    cert = smoothed.certify(x, 50, 500, 0.01, generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    selection = smoothed.class_counts(x, 50, gen)
    estimation = smoothed.class_counts(x, 500, gen)
    np.testing.assert_array_equal(cert.counts, estimation)
    assert selection.sum() == 50 and estimation.dtype == np.int64
    fresh = smoothed.class_counts(x, 500, torch.Generator().manual_seed(9))
    assert (fresh != estimation).any()


def test_train_eval_modes_restored():
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x.reshape(x.shape[0], -1)[:, :2]

    model = torch.nn.Sequential(Recorder(), torch.nn.Dropout(0.5))
    model.train()
    model[1].eval()
    noise = get_noise("gaussian", dim=4, sigma=0.1)
    SmoothedClassifier(model, noise, 2, batch_size=50).certify(torch.ones(4), 10, 100, 0.01)
    assert seen and not any(seen)
    assert model.training and model[0].training and not model[1].training


def test_channels_last_and_bf16_paths_run():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3))
    noise = get_noise("gaussian", dim=3 * 8 * 8, sigma=0.1)
    x = torch.rand(3, 8, 8)
    plain = SmoothedClassifier(model, noise, 3, batch_size=100).class_counts(
        x, 300, torch.Generator().manual_seed(1))
    fast = SmoothedClassifier(model, noise, 3, batch_size=100, channels_last=True,
                              autocast=torch.bfloat16)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.numerics == {"autocast": "bfloat16", "channels_last": True, "compile": False}
    counts = fast.class_counts(x, 300, torch.Generator().manual_seed(1))
    assert counts.sum() == 300 and plain.sum() == 300


# ---------------------------------------------------------------------------------- input checks
@pytest.fixture
def smoothed():
    noise = get_noise("gaussian", dim=4, sigma=0.5)
    return SmoothedClassifier(Constant(0, 2), noise, 2, batch_size=100)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"n0": 0}, ValueError, "n0"), ({"n": 0}, ValueError, "n"), ({"n": 2.5}, TypeError, "n"),
    ({"alpha": 0.0}, ValueError, "alpha"), ({"alpha": 1.0}, ValueError, "alpha"),
    ({"alpha": 1.5}, ValueError, "alpha"), ({"norms": ("linf",)}, ValueError, "convert"),
    ({"norms": ("l3",)}, ValueError, "norm"), ({"bound": "wald"}, ValueError, "bound"),
])
def test_certify_rejects_bad_arguments(smoothed, kwargs, error, match):
    args = {"n0": 10, "n": 100, "alpha": 0.01, **kwargs}
    with pytest.raises(error, match=match):
        smoothed.certify(torch.zeros(4), args.pop("n0"), args.pop("n"), args.pop("alpha"),
                         **args)


@pytest.mark.parametrize("x,error,match", [
    (torch.zeros(5), ValueError, "dim=4"),
    (torch.tensor([0.0, float("nan"), 0.0, 0.0]), ValueError, "NaN"),
    (torch.tensor([0.0, float("inf"), 0.0, 0.0]), ValueError, "infinite"),
    (torch.zeros(4, dtype=torch.int64), TypeError, "floating"),
])
def test_certify_rejects_bad_inputs(smoothed, x, error, match):
    with pytest.raises(error, match=match):
        smoothed.certify(x, 10, 100, 0.01)
    with pytest.raises(error, match=match):
        smoothed.predict(x, 100, 0.01)


def test_rejects_wrong_logit_shape_and_bad_construction():
    noise = get_noise("gaussian", dim=4, sigma=0.5)
    with pytest.raises(ValueError, match=r"expected \(10, 3\) logits"):
        SmoothedClassifier(Constant(0, 2), noise, 3).certify(torch.zeros(4), 10, 100, 0.01)
    with pytest.raises(ValueError, match="num_classes"):
        SmoothedClassifier(Constant(0, 2), noise, 1)
    with pytest.raises(ValueError, match="batch_size"):
        SmoothedClassifier(Constant(0, 2), noise, 2, batch_size=0)
    with pytest.raises(ValueError, match="generators"):
        SmoothedClassifier(Constant(0, 2), noise, 2).certify_batch(
            torch.zeros(3, 4), 10, 100, 0.01, generators=_generators(2))
