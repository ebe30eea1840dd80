"""Radial laws of spherically symmetric noise, for the level-set method (``levelset``).

At scale 1 the noise q has density proportional to exp(-phi(||x||_2)) on R^d, d >= 2, with phi
strictly increasing. z = r^k (r = ||x||_2) has a Gamma or BetaPrime law; the radial integrals of
the level-set method run over delta = log z - log z_c, z_c the law's centre, in which the
density is smooth and is evaluated relative to its centre without cancellation. The range covers
normal scores -12..12 of the radial law (mass outside: 4e-33), split at fixed quantiles; each
piece gets a 20-point Gauss-Legendre rule (``piece_rules``).

A ``RadialLaw`` supplies that density, the inverse shrink s(r, t) defined by
phi(s) = phi(r) - t (computed without cancellation: log1p, expm1, Wright omega), phi' and its
shape, and the small-shift statistics (Fisher information, sigma) that start the solver.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.special import (
    betaincinv,
    betaln,
    gammainccinv,
    gammaincinv,
    gammaln,
    ndtr,
    wrightomega,
)

__all__ = ["RadialLaw", "ExpRadial", "PowRadial", "NODES_PER_PIECE", "FRAC", "WEIGHT",
           "expm1_minus_x", "x_minus_log1p"]

#: normal scores of the fixed split points of the radial integral
_NORMAL_SPLITS = np.array([-12.0, -9.5, -7.0, -5.0, -3.5, -2.0, -1.0, 0.0, 1.0, 2.0, 3.5, 5.0, 7.0,
                           9.5, 12.0])
NODES_PER_PIECE = 20


def _piece_rules(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre rules on [0, 1]: node fractions and weights, shape (4, n).

    Rule 0 is plain; rules 1, 2, 3 apply v -> 1 - cos(pi v / 2), sin(pi v / 2) and
    (1 - cos(pi v)) / 2, whose derivative vanishes at the left end, the right end and both ends:
    the ends of a piece that are kinks of W.
    """
    v, w = leggauss(n)
    v = (v + 1.0) / 2.0
    w = w / 2.0
    h = np.pi / 2.0
    frac = np.stack([v, 2.0 * np.sin(h * v / 2.0) ** 2, np.sin(h * v), np.sin(h * v) ** 2])
    jac = np.stack([np.ones_like(v), h * np.sin(h * v), h * np.cos(h * v), h * np.sin(np.pi * v)])
    return frac, w * jac




FRAC, WEIGHT = _piece_rules(NODES_PER_PIECE)


def expm1_minus_x(x: np.ndarray) -> np.ndarray:
    """expm1(x) - x without cancellation near 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 0.5
    xs = x[small]
    # Taylor series sum_{n>=2} x^n / n!, Horner form; 20 terms reach 1e-25 at |x| = 0.5
    acc = np.zeros_like(xs)
    for n in range(21, 1, -1):
        acc = (acc + 1.0) * xs / n
    out[small] = acc * xs
    xl = x[~small]
    out[~small] = np.expm1(xl) - xl
    return out


def x_minus_log1p(x: np.ndarray) -> np.ndarray:
    """x - log1p(x) without cancellation near 0 (x > -1)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 0.25
    xs = x[small]
    # sum_{n>=2} (-1)^n x^n / n; 30 terms reach 1e-20 at |x| = 0.25
    acc = np.zeros_like(xs)
    for n in range(31, 1, -1):
        acc = xs * acc + ((-1.0) ** n) / n
    out[small] = acc * xs * xs
    xl = x[~small]
    out[~small] = xl - np.log1p(xl)
    return out


class RadialLaw(abc.ABC):
    """A spherically symmetric density proportional to exp(-phi(||x||_2)) on R^dim at scale 1.

    z = r^k follows a Gamma or BetaPrime law; the integration variable is
    delta = log z - log z_c. Subclasses give phi', the law of z and the inverse shrink
    s(r, t) defined by phi(s) = phi(r) - t.
    """

    dim: int
    k: float

    def __init__(self, dim: int, k: float) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ValueError(f"the level-set method needs an integer dim >= 2, got {dim!r}")
        if not (math.isfinite(float(k)) and float(k) > 0):
            raise ValueError(f"k must be a finite number > 0, got {k!r}")
        self.dim = int(dim)
        self.k = float(k)
        self.b = (self.dim - 1) / 2.0
        self._betaln = float(betaln(self.b, self.b))
        lo, hi = self._delta_quantile(_NORMAL_SPLITS[[0, -1]])
        self.splits = self._delta_quantile(_NORMAL_SPLITS)
        self.splits[0], self.splits[-1] = lo, hi

    # -- hooks
    @abc.abstractmethod
    def key(self) -> dict[str, Any]:
        """Identifies the law in a table cache key (family and shape parameters)."""

    @property
    @abc.abstractmethod
    def log_zc(self) -> float:
        """log of the centre z_c of the law of z = r^k."""

    @abc.abstractmethod
    def _log_z_quantile(self, g: np.ndarray) -> np.ndarray:
        """log z at normal scores g (the quantile Phi(g) of the law of z)."""

    @abc.abstractmethod
    def log_density(self, delta: np.ndarray) -> np.ndarray:
        """Log density of delta = log z - log z_c up to an additive constant, accurate in the
        bulk (no cancellation against the constant)."""

    @abc.abstractmethod
    def shrink(self, z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s / r - 1, s^k) for phi(s) = phi(r) - t, z = r^k; s = 0 where no s > 0 exists."""

    @abc.abstractmethod
    def s_over_dphi(self, s: np.ndarray, sk: np.ndarray) -> np.ndarray:
        """s / phi'(s) for s > 0 (sk = s^k)."""

    @abc.abstractmethod
    def dphi(self, r: np.ndarray) -> np.ndarray:
        """phi'(r) for r > 0."""

    @abc.abstractmethod
    def dphi_shape(self) -> tuple[str, float]:
        """How phi' varies: ("increasing" | "decreasing", nan) or ("valley" | "peak", mode)."""

    def tabulable(self) -> bool:
        """Whether the radius is smooth enough at p = 1/2 for a table (finite Fisher
        information of a shift)."""
        return True

    # -- derived
    def _delta_quantile(self, g: np.ndarray) -> np.ndarray:
        return self._log_z_quantile(np.asarray(g, dtype=np.float64)) - self.log_zc

    def r_of(self, delta: np.ndarray) -> np.ndarray:
        return np.exp((self.log_zc + delta) / self.k)

    def delta_of(self, r: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.k * np.log(r) - self.log_zc

    def _mean(self, fun) -> float:
        """E[fun(r)] by quadrature over the fixed pieces (fun smooth)."""
        a = self.splits[:-1]
        h = np.diff(self.splits)
        delta = (a[:, None] + h[:, None] * FRAC[0]).ravel()
        w = (h[:, None] * WEIGHT[0]).ravel() * np.exp(self.log_density(delta))
        return float(np.sum(w * fun(self.r_of(delta))) / np.sum(w))

    def fisher(self) -> float:
        """E[phi'(r)^2] / d: the Fisher information of a unit shift (truncated to the quadrature
        range where it is infinite)."""
        if not hasattr(self, "_fisher"):
            self._fisher = self._mean(lambda r: self.dphi(r) ** 2) / self.dim
        return self._fisher

    def unit_sigma(self) -> float:
        """sqrt(E[r^2] / d)."""
        if not hasattr(self, "_sigma"):
            self._sigma = math.sqrt(self._mean(lambda r: r * r) / self.dim)
        return self._sigma

    def shift_spread(self) -> float:
        """A scale of the standard deviation of log q_e/q per unit shift: sqrt(I), or 1/sigma
        where the Fisher information I is much larger (or infinite)."""
        return min(math.sqrt(self.fisher()), 5.0 / self.unit_sigma())

    def small_shift_guess(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tau, e) at targets u from log q_e/q ~ N(-e^2 I/2, e^2 I) (e = u / sqrt(I),
        tau = -u^2 / (2 e)); where the Fisher information I is much larger than 1/sigma^2 (it
        may be infinite), e = u sigma instead."""
        e = u / self.shift_spread()
        e = np.where(e <= 0.2 * u * self.unit_sigma(), u * self.unit_sigma(), e)
        return -0.5 * u * u / e, e


class ExpRadial(RadialLaw):
    """Exp2(k, j): density proportional to ||x||^-j exp(-||x||^k), phi(r) = r^k + j log r.

    z = r^k ~ Gamma((d - j) / k).
    """

    def __init__(self, dim: int, k: float, j: float = 0.0) -> None:
        j = float(j)
        # d - j >= 1 keeps the radial law's lower tail (log r ~ log(u) / (d - j)) in range
        if not (math.isfinite(j) and 0.0 <= j <= dim - 1):
            raise ValueError(f"the level-set method needs 0 <= j <= dim - 1 = {dim - 1}, "
                             f"got j={j!r}")
        self.j = j
        self.alpha = (dim - j) / float(k)
        super().__init__(dim, k)

    def key(self) -> dict[str, Any]:
        return {"family": "exp2", "dim": self.dim, "k": self.k, "j": self.j}

    @property
    def log_zc(self) -> float:
        return math.log(self.alpha)

    def _log_z_quantile(self, g):
        a = self.alpha
        low = g <= 0
        z = np.where(low, gammaincinv(a, ndtr(np.minimum(g, 0.0))),
                     gammainccinv(a, ndtr(-np.maximum(g, 0.0))))
        with np.errstate(divide="ignore"):
            out = np.log(z)
        # far lower tail of a small shape: P(Z <= z) ~ z^a / Gamma(a + 1)
        tiny = ~(z > 1e-300)
        if tiny.any():
            logu = np.log(ndtr(g[tiny]))
            out[tiny] = (logu + gammaln(a + 1.0)) / a
        return out

    def log_density(self, delta):
        return -self.alpha * expm1_minus_x(delta)

    def shrink(self, z, t):
        k, j = self.k, self.j
        if j == 0.0:
            q = -t / z
            ok = q > -1.0
            em = np.full(np.broadcast(z, t).shape, -1.0)
            sk = np.zeros_like(em)
            qo = np.broadcast_to(q, em.shape)[ok]
            em[ok] = np.expm1(np.log1p(qo) / k)
            sk[ok] = np.broadcast_to(z, em.shape)[ok] * (1.0 + qo)
            return em, sk
        # s^k + j log s = z + j log r - t. Wright omega gives s^k; w = log(r / s) is then
        # polished by Newton on z (1 - exp(-k w)) + j w = t, which has no cancellation.
        m = j / k
        arg = np.log(z / m) + (z - t) / m
        omega = wrightomega(arg)
        y = m * omega
        # log y from omega + log(omega) = arg: no underflow when s^k is below 1e-308
        w = (np.log(z) - math.log(m) - (arg - omega)) / k
        # log z - log y cancels when s is close to r: there Newton polishes w
        near = np.abs(k * w) < 1.0
        # elsewhere the polish runs on the trivial problem w = 0 at t = 0
        wn = np.where(near, w, 0.0)
        tn = np.where(near, t, 0.0)
        for _ in range(2):
            f = -z * np.expm1(-k * wn) + j * wn - tn
            wn = wn - f / (k * z * np.exp(-k * wn) + j)
        w = np.where(near, wn, w)
        return np.expm1(-w), y

    def s_over_dphi(self, s, sk):
        return s * s / (self.k * sk + self.j)

    def dphi(self, r):
        return self.k * r ** (self.k - 1.0) + self.j / r

    def tabulable(self) -> bool:
        # E[phi'(r)^2] contains j^2 E[r^-2], finite iff d - j > 2
        return self.j == 0.0 or self.dim - self.j > 2.0

    def dphi_shape(self):
        k, j = self.k, self.j
        if j == 0.0:
            return ("increasing" if k >= 1.0 else "decreasing"), math.nan
        if k <= 1.0:
            return "decreasing", math.nan
        return "valley", (j / (k * (k - 1.0))) ** (1.0 / k)


class PowRadial(RadialLaw):
    """Pow2(k, a): density proportional to (1 + ||x||^k)^-a, phi(r) = a log(1 + r^k).

    z = r^k ~ BetaPrime(d / k, a - d / k); needs a > d / k.
    """

    def __init__(self, dim: int, k: float, a: float) -> None:
        a = float(a)
        if not (math.isfinite(a) and a > dim / float(k)):
            raise ValueError(f"a must be finite and > dim / k = {dim / float(k)!r}, got {a!r}")
        self.a = a
        self.alpha = dim / float(k)
        self.beta = a - self.alpha
        super().__init__(dim, k)

    def key(self) -> dict[str, Any]:
        return {"family": "pow2", "dim": self.dim, "k": self.k, "a": self.a}

    @property
    def log_zc(self) -> float:
        return math.log(self.alpha) - math.log(self.beta)

    def _log_z_quantile(self, g):
        a, b = self.alpha, self.beta
        low = g <= 0
        # X = Z / (1 + Z) ~ Beta(a, b); the upper tail via 1 - X ~ Beta(b, a)
        x = betaincinv(a, b, ndtr(np.minimum(g, 0.0)))
        y = betaincinv(b, a, ndtr(-np.maximum(g, 0.0)))
        with np.errstate(divide="ignore"):
            out = np.where(low, np.log(x) - np.log1p(-x), np.log1p(-y) - np.log(y))
        tiny = low & ~(x > 1e-300)
        if tiny.any():
            # P(X <= x) ~ x^a / (a B(a, b)) in the far lower tail
            logu = np.log(ndtr(g[tiny]))
            out[tiny] = (logu + math.log(a) + betaln(a, b)) / a
        return out

    def log_density(self, delta):
        a, b = self.alpha, self.beta
        delta = np.asarray(delta, dtype=np.float64)
        with np.errstate(over="ignore"):
            q = a / (a + b) * np.expm1(delta)
        # a delta - (a + b) log1p(q); near 0 in a form without cancellation, far out directly
        # (there the two terms of the series form are huge and cancel)
        near = np.abs(delta) < 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            series = -a * expm1_minus_x(np.where(near, delta, 0.0)) + (a + b) * x_minus_log1p(
                np.where(near, q, 0.0))
            direct = a * delta - (a + b) * np.where(
                delta > 30.0, delta + math.log(a / (a + b)) + np.log1p(-np.exp(-delta)),
                np.log1p(np.where(near, 0.0, q)))
        return np.where(near, series, direct)

    def shrink(self, z, t):
        # s^k = (1 + z) exp(v) - 1 with v = -t / a; l = log(s^k / z) in two cancellation-free
        # forms (for v <= 1 through expm1, for v > 1 factored so that exp(v) cannot overflow)
        v = np.broadcast_to(-t / self.a, np.broadcast(z, t).shape)
        zb = np.broadcast_to(z, v.shape)
        big = v > 1.0
        q = (1.0 + zb) * np.expm1(np.minimum(v, 1.0)) / zb
        ok = big | (q > -1.0)
        vb = np.maximum(v, 1.0)
        l_big = np.log1p(zb) + vb - np.log(zb) + np.log1p(-np.exp(-vb) / (1.0 + zb))
        l_small = np.log1p(np.where(q > -1.0, q, 0.0))
        lr = np.where(big, l_big, l_small)
        em = np.where(ok, np.expm1(lr / self.k), -1.0)
        sk = np.where(ok, zb * np.exp(lr), 0.0)
        return em, sk

    def s_over_dphi(self, s, sk):
        return s * s * (1.0 + sk) / (self.a * self.k * sk)

    def dphi(self, r):
        rk = r ** self.k
        return self.a * self.k * rk / (r * (1.0 + rk))

    def dphi_shape(self):
        if self.k <= 1.0:
            return "decreasing", math.nan
        return "peak", (self.k - 1.0) ** (1.0 / self.k)
