"""Closed forms for Gaussian smoothing of balls, gaps and half-spaces ([PS23], PAL_SULAM section 2).

Everything here is for N(0, sigma^2 I) on R^d and the threshold phi(p) = 1{p >= 1/2}.

Balls. For a ball B_r (centre 0) and a point at distance rho from its centre,
P[x + delta in B_r] = P[ncx2(df=d, nc=rho^2/sigma^2) <= r^2/sigma^2], decreasing in rho.

- Erasure: the centre stays in class 1 iff chi2_d.cdf(r^2/sigma^2) >= 1/2, i.e.
  r >= sigma sqrt(median chi2_d) (d = 1: 0.6745 sigma, d = 2: 1.1774 sigma). Because the
  probability decreases in rho, the smoothed set is the concentric ball of radius rho_{1/2},
  empty exactly when the centre is lost.
- Smoothed radius: rho solving P = 1/2 (0 once the ball is erased).

Gaps (gap filling). Two same-class regions separated by a gap of width g of the other class merge
under smoothing when the middle of the gap is classified with them.

- Slab (two half-spaces {u.x <= -g/2} and {u.x >= g/2}): the smoothed probability is
  Phi(-(g/2 + t)/sigma) + Phi(-(g/2 - t)/sigma) at u.x = t, smallest at t = 0, where it is
  2 Phi(-g/(2 sigma)). The gap fills iff 2 Phi(-g/(2 sigma)) >= 1/2, i.e.
  g <= 2 Phi^-1(3/4) sigma = 1.3490 sigma. It is the same constant as 1-D erasure: the gap is a
  class-0 interval of half-width g/2, erased iff g/2 < Phi^-1(3/4) sigma = 0.6745 sigma.
- Two balls of radius r with a gap g between them: the events {x + delta in B_i} are disjoint, so
  at the midpoint (distance r + g/2 from both centres) the probability is 2 P_ball(r + g/2). The
  midpoint joins iff P_ball(r + g/2) >= 1/4, i.e. g <= 2 (rho_{1/4} - r), rho_q being the distance
  at which P_ball = q. Since each ball lies in a half-space, this width never exceeds the slab's.

Two Gaussians (PAL_SULAM 2, item 3). Classes N(+mu, s^2 I) (label 1, prior pi_1) and N(-mu, s^2 I)
(label 0, prior pi_0 = 1 - pi_1). Training with noise alpha gives N(+-mu, (s^2 + alpha^2) I), whose
Bayes classifier is the half-space mu_hat . x >= tau_alpha, tau_alpha = (s^2 + alpha^2)
ln(pi_0/pi_1) / (2 ||mu||). Half-spaces are invariant under Smooth_beta, so
Delta_{alpha,beta} = pi_1 Phi((tau_alpha - ||mu||)/s) + pi_0 Phi((-tau_alpha - ||mu||)/s), independent
of beta: Phi(-||mu||/s) for equal priors, increasing in alpha otherwise (noise never helps).
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.special import ndtr, ndtri
from scipy.stats import chi2, ncx2

__all__ = [
    "erasure_radius", "erasure_sigma", "ball_probability", "ball_level_distance",
    "smoothed_ball_radius", "slab_gap_fill_width", "ball_gap_fill_width",
    "two_gaussian_threshold", "two_gaussian_risk",
]


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _dim(dim: int) -> int:
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def erasure_radius(sigma: float, dim: int) -> float:
    """sigma sqrt(median chi2_dim): a ball of smaller radius vanishes under Smooth_sigma."""
    return _positive("sigma", sigma) * math.sqrt(chi2.median(_dim(dim)))


def erasure_sigma(radius: float, dim: int) -> float:
    """The noise level above which a ball of ``radius`` vanishes (10 / 1.1774 = 8.4932 in 2-D)."""
    return _positive("radius", radius) / math.sqrt(chi2.median(_dim(dim)))


def ball_probability(distance: float, radius: float, sigma: float, dim: int) -> float:
    """P[x + delta in B_radius] for ||x - centre|| = distance, delta ~ N(0, sigma^2 I_dim)."""
    radius, sigma, dim = _positive("radius", radius), _positive("sigma", sigma), _dim(dim)
    if distance < 0 or not math.isfinite(distance):
        raise ValueError(f"distance must be a finite number >= 0, got {distance!r}")
    level = (radius / sigma) ** 2
    if distance == 0:
        return float(chi2.cdf(level, dim))
    return float(ncx2.cdf(level, dim, (distance / sigma) ** 2))


def ball_level_distance(radius: float, sigma: float, dim: int, level: float) -> float:
    """The distance from the centre at which ``ball_probability`` equals ``level`` (0 < level < 1);
    0 when even the centre is below ``level``."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if ball_probability(0.0, radius, sigma, dim) <= level:
        return 0.0
    # beyond radius + 12 sigma the ball sits in a half-space of probability Phi(-12)
    far = radius + 12.0 * sigma
    return float(brentq(lambda rho: ball_probability(rho, radius, sigma, dim) - level, 0.0, far,
                        xtol=1e-12, rtol=1e-14))


def smoothed_ball_radius(radius: float, sigma: float, dim: int = 2) -> float:
    """Radius of phi(1_B * p_sigma) for a ball B of ``radius`` (0 when erased).

    2-D, radius 10: 9.950, 9.797, 9.136, 7.741, 3.957 for sigma = 1, 2, 4, 6, 8.
    """
    return ball_level_distance(radius, sigma, dim, 0.5)


def slab_gap_fill_width(sigma: float) -> float:
    """2 Phi^-1(3/4) sigma = 1.3490 sigma: the widest gap between two half-spaces of one class
    that Smooth_sigma fills (see the module docstring)."""
    return 2.0 * float(ndtri(0.75)) * _positive("sigma", sigma)


def ball_gap_fill_width(radius: float, sigma: float, dim: int = 2) -> float:
    """The widest gap between two balls of ``radius`` whose midpoint Smooth_sigma assigns to the
    balls' class: 2 (rho_{1/4} - radius), or 0 when not even touching balls are joined."""
    return max(0.0, 2.0 * (ball_level_distance(radius, sigma, dim, 0.25) - radius))


def two_gaussian_threshold(alpha: float, *, mean_norm: float, s: float, prior1: float) -> float:
    """tau_alpha = (s^2 + alpha^2) ln(pi_0 / pi_1) / (2 ||mu||)."""
    if not 0 < prior1 < 1:
        raise ValueError(f"prior1 must lie in (0, 1), got {prior1!r}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    mean_norm, s = _positive("mean_norm", mean_norm), _positive("s", s)
    return (s * s + alpha * alpha) * math.log((1.0 - prior1) / prior1) / (2.0 * mean_norm)


def two_gaussian_risk(alpha: float, beta: float = 0.0, *, mean_norm: float, s: float,
                      prior1: float) -> float:
    """Delta_{alpha,beta} for the two-Gaussian model (independent of beta, which is accepted so
    the call reads like the definition)."""
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    tau = two_gaussian_threshold(alpha, mean_norm=mean_norm, s=s, prior1=prior1)
    return float(prior1 * ndtr((tau - mean_norm) / s)
                 + (1.0 - prior1) * ndtr((-tau - mean_norm) / s))
