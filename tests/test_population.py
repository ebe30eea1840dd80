"""Population-level theory of [PS23]: grid smoothing against closed forms, quadrature and Monte
Carlo; the disk generator; the interference diagnostic; the synthetic experiment."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ndtr
from scipy.stats import multivariate_normal

from smoothcert.cli.main import main
from smoothcert.pal_sulam.population import (
    Intervals,
    SyntheticConfig,
    ball_gap_fill_width,
    ball_probability,
    class_probabilities,
    classify,
    disk_labels,
    erasure_radius,
    erasure_sigma,
    gaussian_smooth,
    grid_gaps,
    interval_probability,
    interval_risk,
    point_cloud_gaps,
    random_disks,
    risk,
    risk_table,
    run_synthetic,
    slab_gap_fill_width,
    smooth_intervals,
    smooth_labels,
    smoothed_ball_radius,
    smoothed_classifier,
    threshold,
    two_gaussian_risk,
    two_gaussian_threshold,
    write_synthetic_csv,
)


def centred_disk(radius_px: float, sigma_px: float) -> tuple[np.ndarray, int]:
    """A lattice disk in a grid wide enough that the 4-sigma kernel never reaches the border."""
    side = 2 * int(math.ceil(radius_px + 4 * sigma_px)) + 3
    centre = side // 2
    rows, cols = np.ogrid[:side, :side]
    labels = ((rows - centre) ** 2 + (cols - centre) ** 2 <= radius_px**2).astype(np.int64)
    return labels, centre


# ------------------------------------------------------------------------ closed forms (spec)
def test_erasure_constants_match_the_spec():
    assert erasure_radius(1.0, 1) == pytest.approx(0.6745, abs=5e-5)
    assert erasure_radius(1.0, 2) == pytest.approx(1.1774, abs=5e-5)
    assert erasure_radius(1.0, 2) == pytest.approx(math.sqrt(2 * math.log(2)), rel=1e-12)
    assert erasure_sigma(10.0, 2) == pytest.approx(8.4932, abs=5e-5)


def test_smoothed_disk_radius_matches_the_spec():
    published = {1: 9.950, 2: 9.797, 4: 9.136, 6: 7.741, 8: 3.957}
    for sigma, rho in published.items():
        assert smoothed_ball_radius(10.0, sigma) == pytest.approx(rho, abs=5e-4)
    assert smoothed_ball_radius(10.0, 8.5) == 0.0
    assert smoothed_ball_radius(10.0, 9.0) == 0.0


@pytest.mark.parametrize("distance", [0.0, 4.0, 9.0, 13.0])
def test_ball_probability_against_quadrature(distance):
    # P[x + delta in B_r] as a 2-D integral of the Gaussian density over the disk (polar form)
    r, sigma = 10.0, 6.0

    def density(rho, theta):
        d2 = rho**2 + distance**2 - 2 * rho * distance * math.cos(theta)
        return rho * math.exp(-d2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)

    expected, _ = integrate.dblquad(density, 0, 2 * math.pi, 0, r, epsabs=1e-11)
    assert ball_probability(distance, r, sigma, 2) == pytest.approx(expected, abs=1e-8)


# ------------------------------------------------------------------------ grid vs closed forms
def test_disk_of_radius_10_is_erased_above_sigma_8_4932():
    # half-pixel grid (radius 20 px): the lattice disk then approximates the continuous disk
    # well enough to resolve the threshold; on the unit grid the 317-pixel disk holds to ~8.53
    h = 0.5
    for sigma, survives in ((8.46, True), (8.5, False), (8.6, False)):
        labels, centre = centred_disk(10 / h, sigma / h)
        smoothed = smooth_labels(labels, sigma / h)
        assert bool(smoothed[centre, centre]) is survives, sigma
        assert bool(smoothed.any()) is survives


def test_smoothed_disk_radius_measured_on_a_fine_grid():
    h = 0.2
    for sigma, expected in ((4.0, 9.136), (8.0, 3.957)):
        labels, c = centred_disk(10 / h, sigma / h)
        p = class_probabilities(labels, sigma / h)[1][c, c:]
        # last pixel at or above 1/2 along the row, refined by linear interpolation
        k = int(np.flatnonzero(p >= 0.5).max())
        radius_px = k + (p[k] - 0.5) / (p[k] - p[k + 1])
        assert radius_px * h == pytest.approx(expected, abs=0.03)
        assert smoothed_ball_radius(10.0, sigma) == pytest.approx(expected, abs=5e-4)


def test_half_space_is_invariant_away_from_the_border():
    rng = np.random.default_rng(5)
    side, sigma = 120, 6.0
    rows, cols = np.mgrid[:side, :side]
    margin = int(4 * sigma) + 2
    inner = (slice(margin, side - margin),) * 2
    for _ in range(4):
        angle = rng.uniform(0, 2 * np.pi)
        u = np.array([np.cos(angle), np.sin(angle)])
        tau = u @ np.array([side / 2, side / 2]) + rng.uniform(-10, 10)
        signed = u[0] * rows + u[1] * cols - tau
        labels = (signed >= 0).astype(np.int64)
        assert np.array_equal(smooth_labels(labels, sigma)[inner], labels[inner])
        # the smoothed probability is Phi(signed distance / sigma) up to the lattice: treating
        # pixels as points moves the boundary by at most half a pixel, 0.5 phi(0) / sigma = 0.033
        p = class_probabilities(labels, sigma)[1]
        assert np.abs(p[inner] - ndtr(signed[inner] / sigma)).max() < 0.5 / (math.sqrt(2 * math.pi) * sigma) + 1e-3


def test_sigma_zero_is_the_identity_and_risk_zero():
    image = random_disks(np.random.default_rng(0), side=40, radius=4, zeta=1, candidates=200)
    assert np.array_equal(smooth_labels(image.labels, 0.0), image.labels)
    assert risk(image.labels, 0.0, 0.0) == 0.0


def test_threshold_ties_go_to_class_one_and_multiclass_agrees():
    p = np.array([0.0, 0.4999999999, 0.5, 0.75])
    assert threshold(p).tolist() == [0, 0, 1, 1]
    assert classify(np.stack([1 - p, p])).tolist() == [0, 0, 1, 1]
    assert classify(np.array([[0.4], [0.3], [0.3]])).tolist() == [0]
    assert classify(np.array([[0.2], [0.4], [0.4]])).tolist() == [2]


def test_binary_composite_matches_thresholded_gaussian_filter():
    # an independent route to Smooth_beta(phi(h * p_alpha)): scipy.ndimage directly
    from scipy.ndimage import gaussian_filter

    image = random_disks(np.random.default_rng(3), side=60, radius=6, zeta=0, candidates=500)
    h = image.labels.astype(float)
    step1 = (gaussian_filter(h, 3.0, mode="constant", cval=0.0, truncate=4.0) >= 0.5) * 1.0
    step2 = gaussian_filter(step1, 5.0, mode="constant", cval=0.0, truncate=4.0) >= 0.5
    assert np.array_equal(smoothed_classifier(image.labels, 3.0, 5.0), step2.astype(np.int64))
    assert risk(image.labels, 3.0, 5.0) == pytest.approx(np.mean(step2 != image.labels))


def test_three_class_grid_smoothing_is_monotone_in_each_class():
    # a small class-2 disk inside class 1 vanishes before the larger class-1 disk does
    side = 101
    rows, cols = np.ogrid[:side, :side]
    d2 = (rows - 50) ** 2 + (cols - 50) ** 2
    labels = np.where(d2 <= 3**2, 2, np.where(d2 <= 25**2, 1, 0)).astype(np.int64)
    out = smooth_labels(labels, 4.0, num_classes=3)
    assert not (out == 2).any()  # 3 < 1.1774 * 4: erased
    assert out[50, 50] == 1  # taken over by the surrounding class
    probs = class_probabilities(labels, 4.0, 3)
    assert np.allclose(probs.sum(axis=0), 1.0)


def test_risk_table_matches_single_risks():
    image = random_disks(np.random.default_rng(1), side=50, radius=5, zeta=0, candidates=300)
    table = risk_table(image.labels, [0, 2, 4], [3, 6])
    for i, a in enumerate([0, 2, 4]):
        for j, b in enumerate([3, 6]):
            assert table[i, j] == risk(image.labels, a, b)


def test_bad_inputs_are_refused():
    with pytest.raises(TypeError, match="integer"):
        smooth_labels(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smooth(np.zeros((3, 3)), -1.0)
    with pytest.raises(ValueError, match="num_classes"):
        smooth_labels(np.array([[0, 3]]), 1.0, num_classes=2)


# ------------------------------------------------------------------------ 1-D interval model
def test_interval_erasure_and_gap_filling_thresholds():
    sigma = 2.0
    r_star = erasure_radius(sigma, 1)
    assert len(smooth_intervals(Intervals.of([(-1.01 * r_star, 1.01 * r_star)]), sigma)) == 1
    assert len(smooth_intervals(Intervals.of([(-0.99 * r_star, 0.99 * r_star)]), sigma)) == 0
    # two long same-class intervals separated by a gap g: merged iff g <= 1.349 sigma
    g_star = slab_gap_fill_width(sigma)
    assert g_star == pytest.approx(2 * 0.6744897501960817 * sigma, rel=1e-12)
    for g, merged in ((0.98 * g_star, True), (1.02 * g_star, False)):
        smoothed = smooth_intervals(Intervals.of([(-500, -g / 2), (g / 2, 500)]), sigma)
        assert (len(smoothed) == 1) is merged


def test_interval_model_matches_a_fine_grid():
    intervals = Intervals.of([(-9.0, -4.0), (-2.5, 3.0), (5.0, 5.8), (7.0, 12.0)])
    alpha, beta, window = 1.3, 2.1, (-20.0, 25.0)
    h = 0.005
    x = np.arange(window[0], window[1] + h / 2, h)
    labels = intervals.contains(x).astype(np.int64)
    grid_risk = risk(labels, alpha / h, beta / h)
    assert interval_risk(intervals, alpha, beta, window) == pytest.approx(grid_risk, abs=2e-3)
    # and the smoothed probability itself
    p_grid = gaussian_smooth(labels, alpha / h)
    p_exact = interval_probability(intervals, alpha, x)
    assert np.abs(p_grid - p_exact).max() < 2e-3


# ------------------------------------------------------------------------ gap filling, 2-D
def test_ball_gap_fill_width_against_the_grid():
    sigma, r = 8.0, 10.0
    g_star = ball_gap_fill_width(r, sigma)
    assert 0 < g_star < slab_gap_fill_width(sigma)
    h = 0.25
    for g, joined in ((g_star - 0.3, True), (g_star + 0.3, False)):
        offset = (r + g / 2) / h
        side = 2 * int(math.ceil(offset + r / h + 4 * sigma / h)) + 3
        c = side // 2
        rows, cols = np.ogrid[:side, :side]
        # centres at +-offset pixels (offset need not be an integer)
        labels = (((rows - c) ** 2 + (cols - c - offset) ** 2 <= (r / h) ** 2)
                  | ((rows - c) ** 2 + (cols - c + offset) ** 2 <= (r / h) ** 2)).astype(np.int64)
        assert bool(smooth_labels(labels, sigma / h)[c, c]) is joined, g


# ------------------------------------------------------------------------ two Gaussians
def test_two_gaussian_threshold_is_the_bayes_rule_of_the_noised_classes():
    rng = np.random.default_rng(11)
    mu = np.array([0.8, -0.6, 0.0])  # ||mu|| = 1
    s, prior1, alpha = 0.9, 0.3, 1.2
    var = s**2 + alpha**2
    x = rng.normal(scale=2.0, size=(4000, 3))
    log_odds = (np.log(prior1) + multivariate_normal(mu, var * np.eye(3)).logpdf(x)
                - np.log(1 - prior1) - multivariate_normal(-mu, var * np.eye(3)).logpdf(x))
    tau = two_gaussian_threshold(alpha, mean_norm=1.0, s=s, prior1=prior1)
    half_space = x @ mu >= tau
    clear = np.abs(x @ mu - tau) > 1e-9
    assert np.array_equal((log_odds >= 0)[clear], half_space[clear])


def test_two_gaussian_risk_against_monte_carlo():
    # sample (x, y) in 3-D and classify with Smooth_beta of the alpha-trained half-space, which is
    # the half-space itself (invariance, tested on the grid above); 4 standard errors of tolerance
    rng = np.random.default_rng(12)
    mu = np.array([0.6, 0.0, 0.8])
    s, prior1, alpha, beta = 1.0, 0.25, 1.5, 0.7
    tau = two_gaussian_threshold(alpha, mean_norm=1.0, s=s, prior1=prior1)
    m = 200_000
    y = rng.random(m) < prior1
    x = np.where(y[:, None], mu, -mu) + s * rng.standard_normal((m, 3))
    error = np.mean((x @ mu >= tau) != y)
    expected = two_gaussian_risk(alpha, beta, mean_norm=1.0, s=s, prior1=prior1)
    assert abs(error - expected) < 4 * math.sqrt(expected * (1 - expected) / m)
    # noise training hurts here: the clean (alpha = 0) classifier has the smaller risk
    assert two_gaussian_risk(0.0, beta, mean_norm=1.0, s=s, prior1=prior1) < expected


def test_two_gaussian_risk_shape():
    equal = [two_gaussian_risk(a, mean_norm=1.3, s=0.8, prior1=0.5) for a in (0, 0.5, 2)]
    assert equal == pytest.approx([float(ndtr(-1.3 / 0.8))] * 3, rel=1e-12)
    unequal = [two_gaussian_risk(a, mean_norm=1.0, s=1.0, prior1=0.2) for a in np.linspace(0, 3, 7)]
    assert all(b > a for a, b in zip(unequal, unequal[1:], strict=False))


# ------------------------------------------------------------------------ disks
@pytest.mark.parametrize("zeta", [0, 2, 5])
def test_random_disks_respect_the_separation(zeta):
    image = random_disks(np.random.default_rng(zeta), side=100, radius=10, zeta=zeta)
    c = image.centres
    assert c.shape[0] >= 5
    assert (c >= 0).all() and (c < 100).all()
    gaps = np.abs(c[:, None, :] - c[None, :, :]).max(axis=2)
    np.fill_diagonal(gaps, 10**6)
    assert gaps.min() > 20 + zeta
    assert np.array_equal(image.labels, disk_labels((100, 100), c, 10))
    # pixel count: each disk is at most the 317-pixel lattice disk, and they do not overlap
    assert image.labels.sum() <= 317 * c.shape[0]
    assert all(0 < disk_labels((100, 100), c[k:k + 1], 10).sum() <= 317 for k in range(len(c)))


def test_random_disks_are_reproducible():
    a = random_disks(np.random.default_rng(7), side=50, radius=5, zeta=1, candidates=500)
    b = random_disks(np.random.default_rng(7), side=50, radius=5, zeta=1, candidates=500)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centres, b.centres)


# ------------------------------------------------------------------------ interference
def test_grid_gaps_of_two_disks_with_a_known_gap():
    centres = np.array([[30, 20], [30, 20 + 2 * 6 + 1 + 4]])  # 4 background pixels between
    labels = disk_labels((60, 60), centres, 6)
    gaps = grid_gaps(labels, classes=[1])
    assert gaps.gaps.tolist() == [4.0, 4.0]
    assert gaps.fraction_fillable(3.0) == 1.0  # 4 <= 1.349 * 3
    assert gaps.fraction_fillable(2.9) == 0.0  # 4 > 1.349 * 2.9
    assert gaps.relative_to(2.0).tolist() == [2.0, 2.0]
    single = grid_gaps(disk_labels((30, 30), np.array([[15, 15]]), 5), classes=[1])
    assert np.isinf(single.gaps).all()


def test_point_cloud_gaps():
    # class 0 at 0 and 4 with a class-1 point at 2 between them; class 1 also at 10
    x = np.array([[0.0], [4.0], [2.0], [10.0]])
    y = np.array([0, 0, 1, 1])
    gaps = point_cloud_gaps(x, y, k=3)
    assert gaps.gaps[:2].tolist() == [4.0, 4.0]  # 0 -> 4 crosses the class-1 point at 2
    assert gaps.gaps[2:].tolist() == [8.0, 8.0]  # 2 -> 10 crosses class 0 at 4 (midpoint 6)


# ------------------------------------------------------------------------ synthetic experiment
def test_synthetic_sweep_small(tmp_path):
    config = SyntheticConfig(alphas=(0, 2, 4), betas=(5, 7), zetas=(0, 2), images=2, side=50,
                             radius=5, candidates=500, seed=3)
    result = run_synthetic(config)
    assert result.delta.shape == (2, 2, 2, 3)
    assert np.all(result.differences()[..., 0] == 0.0)  # alpha = 0 is the baseline
    # each entry equals the grid risk of the regenerated image
    from smoothcert.pal_sulam.population.synthetic import image_rng

    image = random_disks(image_rng(3, 2, 1), side=50, radius=5, zeta=2, candidates=500)
    assert result.delta[1, 1, 1, 2] == risk(image.labels, 4, 7)
    mean_path, per_image = write_synthetic_csv(result, tmp_path)
    with open(mean_path) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["beta", "zeta", "alpha", "delta_minus_delta0"]
    assert len(rows) == 1 + 2 * 2 * 3
    assert float(rows[1 + 2 * 3 + 3 + 2][3]) == pytest.approx(result.mean_differences()[1, 1, 2])


def test_synthetic_cli(tmp_path, capsys):
    code = main(["synthetic", "--out", str(tmp_path), "--images", "1", "--alphas", "0:2",
                 "--betas", "6", "--zetas", "0,1", "--side", "40", "--radius", "4",
                 "--candidates", "200", "--formats", "png"])
    assert code == 0
    for name in ("synthetic.csv", "synthetic_per_image.csv", "run.json",
                 "fig4_risk_difference.png", "fig3_disk_examples.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "synthetic.csv").read_text().splitlines()[0] == (
        "beta,zeta,alpha,delta_minus_delta0")
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["config"]["alphas"] == [0.0, 1.0, 2.0]
    # zeta = 1: at least one background pixel between disks
    assert record["interference"]["1"]["gap_quartiles"][0] >= 1.0
