"""The level-set (Neyman-Pearson) method: exact l2 radii of spherically symmetric noise.

Algorithm 1 of Yang et al. (2020) [YDH+20], "Randomized Smoothing of All Shapes and Sizes" (ICML).

Setting. At scale 1 the noise q has density proportional to exp(-phi(||x||_2)) on R^d, d >= 2,
with phi strictly increasing (a ``RadialLaw``). q_e is q shifted by e > 0 along a unit vector.
For a threshold t,

    pbig(t, e) = P_{x ~ q}[ log q_e(x) / q(x) < t ] = E_r[ W(r, s(r, t), e, d) ],

because, given r = ||x||, the event says that x lies outside the ball of radius s centred at the
shift, where phi(s) = phi(r) - t (s = 0 if no such s >= 0 exists), and for x uniform on the
radius-r sphere, (1 + cos theta) / 2 ~ Beta((d-1)/2, (d-1)/2), so

    W(r, s, e, d) = I_{((r+e)^2 - s^2) / (4 e r)}((d-1)/2, (d-1)/2),   argument clipped to [0, 1].

Guarantee (Neyman-Pearson lemma; the level-set method of [YDH+20], Algorithm 1). Let t solve
pbig(t, e) = 1/2 and rho(e) = pbig(-t, e). Among all sets A with q(A) >= rho, the likelihood-ratio
level set {log q_e/q < -t} has the least q_e-mass, and by the reflection x -> e - x (which maps q
to q_e) that mass is 1 - pbig(t, e) = 1/2. So if P[f(x + delta) = c_A] >= p_lower > rho(||v||),
the smoothed classifier still returns c_A at x + v. The certified radius R(p_lower) is the
solution of rho(R) = p_lower; it is tight (the level set itself is a classifier attaining it).
Assumption: rho is increasing in e, so that every ||v|| < R has rho(||v||) < p_lower. This holds
for every family and dimension tested (the radii computed here are checked to increase with p).

Numerics.

- pbig is a 1-D integral over the radial law, computed in the variable
  delta = log(r^k) - log(z_c) (z = r^k has a Gamma or BetaPrime law centred at z_c), where the
  density is smooth and is evaluated relative to its centre without cancellation; the sum is
  divided by the quadrature's total mass, so the normalizing constant never enters. The range
  covers normal scores -12..12 of the radial law (mass outside: 4e-33), split at fixed quantiles.
- W is smooth except where it stops being 0 or 1 (the shifted sphere starts or stops cutting the
  ball). Those kinks are located: W = 1 iff s <= |r - e| and W = 0 iff s >= r + e, and
  phi(r) - phi(|r - e|) and phi(r) - phi(r + e) are monotone between at most two known points
  (r = e and one critical point of phi'(r) - phi'(r -+ e)), so each kink is bracketed and
  bisected. The integral is split there; no adaptive quadrature is used (scipy's quad silently
  loses mass when given break points outside a finite support). Each piece gets 20-point
  Gauss-Legendre; at an end that is a kink the nodes are clustered by a cosine map, which turns
  the (1 - x)^((d-1)/2) behaviour of the incomplete beta function there into a smooth integrand
  in every dimension. A fixed split close to a kink is dropped.
- 1 - pbig is accumulated from the complementary incomplete beta function, so rho close to
  1 - 1e-16 keeps full relative accuracy.
- s = r exp(-w) with w = log(r / s) obtained without cancellation (log1p, expm1; Wright omega and
  a Newton polish where phi has a logarithmic term), so r^2 - s^2 is accurate even for tiny t.
- The radius for a target u = Phi^-1(p) solves G1 = Phi^-1(pbig(tau e, e)) = 0 and
  G2 = -Phi^-1(1 - pbig(-tau e, e)) = u for (tau, e) by Newton's method with the exact Jacobian,
  vectorized over all targets. In these coordinates the Gaussian case is linear, and nearly so
  for any noise in high dimension; the starting guess is interpolated from a coarse path of
  solutions (itself started from the small-shift approximation log q_e/q ~ N(-e^2 I/2, e^2 I),
  I the Fisher information of a unit shift). Where Newton fails, a nested safeguarded solve
  (bracketed Newton/bisection in e around a bracketed median solve in tau) takes over.
- Accuracy: pbig to about 1e-15 (absolute) and 1 - pbig to 1e-13 (relative). Radii agree with
  the Gaussian closed form (Exp2 with k = 2, j = 0) to 5e-13 relative for d = 2 to 3072 and to
  1e-11 at d = 150528, for u >= 0.005 (all table nodes); near p = 1/2 the error is about 1e-14
  in u. Certified radii (``certified_radius`` and the tables) are multiplied by
  1 - RADIUS_RTOL = 1 - 1e-10, so they round down.
"""

from __future__ import annotations

import abc
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy.interpolate import PchipInterpolator
from scipy.special import (
    betainc,
    betaincinv,
    betaln,
    gammainccinv,
    gammaincinv,
    gammaln,
    ndtr,
    ndtri,
    wrightomega,
)

from smoothcert.noises.radii.table import P_TABLE_MAX, RadiusTable, build_table, cached_table

__all__ = [
    "RadialLaw",
    "ExpRadial",
    "PowRadial",
    "LevelSetProbability",
    "Rho",
    "sphere_outside_probability",
    "pbig",
    "rho",
    "radius",
    "radius_table",
    "certified_radius",
    "clear_path_cache",
    "RADIUS_RTOL",
]

log = logging.getLogger(__name__)

#: relative amount by which certified radii are rounded down to cover the numerical error
RADIUS_RTOL = 1e-10
#: revision of the numerical method, part of every table's cache key
_REVISION = 1

#: normal scores of the fixed split points of the radial integral
_NORMAL_SPLITS = np.array([-12.0, -9.5, -7.0, -5.0, -3.5, -2.0, -1.0, 0.0, 1.0, 2.0, 3.5, 5.0, 7.0,
                           9.5, 12.0])
_NODES_PER_PIECE = 20
#: number of (pair, node) evaluations processed at once, to bound memory
_CHUNK = 1 << 17
_BISECTIONS = 64
#: the largest u = Phi^-1(p) of a table
_TABLE_U_MAX = float(-ndtri(1.0 - P_TABLE_MAX))


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


_FRAC, _WEIGHT = _piece_rules(_NODES_PER_PIECE)


def _expm1_minus_x(x: np.ndarray) -> np.ndarray:
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


def _x_minus_log1p(x: np.ndarray) -> np.ndarray:
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


# ----------------------------------------------------------------------------------- radial laws
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
        delta = (a[:, None] + h[:, None] * _FRAC[0]).ravel()
        w = (h[:, None] * _WEIGHT[0]).ravel() * np.exp(self.log_density(delta))
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
        return -self.alpha * _expm1_minus_x(delta)

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
        q = a / (a + b) * np.expm1(delta)
        return -a * _expm1_minus_x(delta) + (a + b) * _x_minus_log1p(q)

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


# ------------------------------------------------------------------------------- the integrand
def _geometry(em: np.ndarray, r: np.ndarray, e: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, 1 - x, A) for x = ((r+e)^2 - s^2) / (4 e r), s = r (1 + em), each without cancellation.

    x = (r + e - s)(r + e + s) / (4 e r) and 1 - x = (s - r + e)(s + r - e) / (4 e r);
    A = r + e - s (x <= 0 iff A <= 0).

    On a sphere much smaller than the shift (r < 1e-9 e) x is ill-conditioned (its rounding
    error is about 1e-16 e / r) and W is the step 1{s < e} except in a band |s - e| < r; there the
    step is used (x = 2 or -1), an error below the radial mass of r < 1e-9 e.
    """
    four = 4.0 * e * r
    a = e - r * em
    big = r * (2.0 + em)
    x = a * (big + e) / four
    y = (e + r * em) * (big - e) / four
    tiny = r < 1e-9 * e
    if np.any(tiny):
        outside = np.broadcast_to(r * (1.0 + em) < e, x.shape)
        x = np.where(tiny, np.where(outside, 2.0, -1.0), x)
        y = np.where(tiny, np.where(outside, -1.0, 2.0), y)
        a = np.where(tiny, np.where(outside, 1.0, -1.0) * np.broadcast_to(e, x.shape), a)
    return x, y, a


def sphere_outside_probability(r: Any, s: Any, e: Any, dim: int) -> np.ndarray:
    """W(r, s, e, d): the probability that a uniform point on the radius-r sphere in R^dim lies
    outside the ball of radius s centred at distance e from the origin (r, e > 0, s >= 0)."""
    r, s, e = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r, s, e)))
    if not (np.all(r > 0) and np.all(e > 0) and np.all(s >= 0)):
        raise ValueError("need r > 0, e > 0 and s >= 0")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    x, _, _ = _geometry(s / r - 1.0, r, e)
    b = (dim - 1) / 2.0
    return betainc(b, b, np.clip(x, 0.0, 1.0))


@dataclass(frozen=True)
class LevelSetProbability:
    """pbig(t, e), its complement 1 - pbig (computed directly) and its partial derivatives."""

    value: np.ndarray
    complement: np.ndarray
    d_t: np.ndarray
    d_e: np.ndarray


def _critical_r(law: RadialLaw, e: np.ndarray, sign: float) -> np.ndarray:
    """The critical point of phi(r) - phi(r - sign * e) (r > e for sign = +1), or nan if
    phi' is monotone (then the function is monotone on the whole piece)."""
    kind, mode = law.dphi_shape()
    if kind in ("increasing", "decreasing"):
        return np.full(e.shape, np.nan)
    if sign > 0:
        lo, hi = np.maximum(e, mode), mode + e
    else:
        lo, hi = np.maximum(0.0, mode - e), np.full(e.shape, mode)
    # orientation of g(r) = phi'(r) - phi'(r - sign e) at lo: negative for a valley with sign +1
    # (phi' falls before the mode) and for a peak with sign -1; positive otherwise
    neg_at_lo = (kind == "valley") == (sign > 0)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        g = law.dphi(mid) - law.dphi(mid - sign * e)
        go_right = (g < 0) == neg_at_lo
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
    return 0.5 * (lo + hi)


def _z_of(law: RadialLaw, delta: np.ndarray) -> np.ndarray:
    """z = r^k, kept above 1e-300: below, z only enters where W is flat."""
    return np.exp(np.maximum(law.log_zc + delta, -690.0))


def _flatness(law: RadialLaw, delta: np.ndarray, t: np.ndarray, e: np.ndarray,
              which: np.ndarray) -> np.ndarray:
    """Continuous in delta, <= 0 exactly where W is flat: for which = 1 the value 1 - x
    (W = 1 iff s <= |r - e|), for which = 0 the value (r + e - s) / e (W = 0 iff s >= r + e)."""
    r = law.r_of(delta)
    # overflow to +-inf (s/r beyond 1e308) gives the right limits x = -inf, W = 0
    with np.errstate(over="ignore"):
        em, _ = law.shrink(_z_of(law, delta), t)
        _, y, a = _geometry(em, r, e)
    return np.where(which == 1, y, a / e)


def _kinks(law: RadialLaw, t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """(N, 5) values of delta where W stops being 0 or 1; absent kinks are set to the upper end.

    On each piece the flatness function changes sign at most once; the sign changes are found
    together by false position with the Illinois modification and a bisection every fourth
    step (so the bracket at least halves every four steps).
    """
    lo, hi = law.splits[0], law.splits[-1]
    n = t.shape[0]
    de = np.clip(law.delta_of(e), lo, hi)
    c1 = _critical_r(law, e, +1.0)
    c2 = _critical_r(law, e, -1.0)
    dc1 = np.where(np.isnan(c1), hi, np.clip(law.delta_of(np.nan_to_num(c1, nan=1.0)), lo, hi))
    dc2 = np.where(np.isnan(c2), lo, np.clip(law.delta_of(np.nan_to_num(c2, nan=1.0)), lo, hi))
    dc1 = np.maximum(dc1, de)
    full_lo, full_hi = np.full(n, lo), np.full(n, hi)
    # phi(r) - phi(|r - e|) is monotone on each of the first three pieces (W = 1 changes at most
    # once on each), phi(r) - phi(r + e) on the last two (W = 0 changes at most once)
    starts = np.stack([full_lo, de, dc1, full_lo, dc2], axis=1)
    ends = np.stack([de, dc1, full_hi, dc2, full_hi], axis=1)
    which = np.broadcast_to(np.array([1, 1, 1, 0, 0]), starts.shape)
    tt = np.broadcast_to(t[:, None], starts.shape)
    ee = np.broadcast_to(e[:, None], starts.shape)
    g_start = _flatness(law, starts, tt, ee, which)
    g_end = _flatness(law, ends, tt, ee, which)
    out = np.full(starts.shape, hi)
    act = ((g_start <= 0) != (g_end <= 0)) & (ends > starts)
    if not act.any():
        return out
    a, b, ga, gb = starts[act], ends[act], g_start[act], g_end[act]
    ta, ea, wa = tt[act], ee[act], which[act]
    a_flat = ga <= 0
    kept_a = np.zeros(a.shape, dtype=bool)
    kept_b = np.zeros(a.shape, dtype=bool)
    todo = np.ones(a.shape, dtype=bool)
    root = 0.5 * (a + b)
    for it in range(100):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            break
        ai, bi, gai, gbi = a[idx], b[idx], ga[idx], gb[idx]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            m = ai - gai * (bi - ai) / (gbi - gai)
        bisect = (it % 4 == 3) | ~np.isfinite(m) | (m <= ai) | (m >= bi)
        m = np.where(bisect, 0.5 * (ai + bi), m)
        gm = _flatness(law, m, ta[idx], ea[idx], wa[idx])
        on_a_side = (gm <= 0) == a_flat[idx]
        # Illinois: an end kept twice in a row has its value halved
        new_ga = np.where(on_a_side, gm, np.where(kept_a[idx], 0.5 * gai, gai))
        new_gb = np.where(on_a_side, np.where(kept_b[idx], 0.5 * gbi, gbi), gm)
        a[idx] = np.where(on_a_side, m, ai)
        b[idx] = np.where(on_a_side, bi, m)
        ga[idx], gb[idx] = new_ga, new_gb
        kept_b[idx], kept_a[idx] = on_a_side, ~on_a_side
        done = (b[idx] - a[idx] <= 1e-13 * (1.0 + np.abs(a[idx]))) | (gm == 0)
        # the last point evaluated lies in the final bracket (the other end may be far)
        root[idx] = m
        todo[idx[done]] = False
    out[act] = root
    return out


def _pieces(law: RadialLaw, t: np.ndarray, e: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Split points (N, P) of the radial integral in delta, sorted, and for each of the P - 1
    pieces the Gauss-Legendre rule to use (0..3: which ends are kinks of W)."""
    n = t.shape[0]
    fixed = law.splits
    hi = fixed[-1]
    kinks = _kinks(law, t, e)
    splits = np.broadcast_to(fixed, (n, fixed.size)).copy()
    # A kink just outside a piece slows Gauss-Legendre down badly, a kink at its end does not:
    # an interior fixed split close to a kink is dropped (moved onto the upper end).
    spacing = np.diff(fixed)
    local = np.minimum(np.concatenate([[np.inf], spacing]), np.concatenate([spacing, [np.inf]]))
    rows = np.arange(n)
    for c in range(kinks.shape[1]):
        kc = kinks[:, c]
        above = np.searchsorted(fixed, kc)
        for nb in (above - 1, above):
            nbc = np.clip(nb, 0, fixed.size - 1)
            close = ((kc < hi) & (nb >= 1) & (nb <= fixed.size - 2)
                     & (np.abs(fixed[nbc] - kc) < 0.25 * local[nbc]))
            splits[rows[close], nbc[close]] = hi
    pts = np.concatenate([splits, kinks], axis=1)
    is_kink = np.concatenate([np.zeros(splits.shape, bool), kinks < hi], axis=1)
    order = np.argsort(pts, axis=1, kind="stable")
    pts = np.take_along_axis(pts, order, axis=1)
    is_kink = np.take_along_axis(is_kink, order, axis=1)
    rule = is_kink[:, :-1].astype(np.int64) + 2 * is_kink[:, 1:].astype(np.int64)
    return pts, rule


def _integrate(law: RadialLaw, t: np.ndarray, e: np.ndarray) -> LevelSetProbability:
    """pbig(t, e) for 1-D arrays t, e of equal length, with its complement and derivatives."""
    n = t.shape[0]
    pts, rule = _pieces(law, t, e)
    a = pts[:, :-1]
    h = np.diff(pts, axis=1)
    live = h > 0
    rows, segs = np.nonzero(live)
    kind = rule[rows, segs]
    # nodes of every live piece: (number of live pieces, nodes per piece)
    delta = a[rows, segs][:, None] + h[rows, segs][:, None] * _FRAC[kind]
    weight = h[rows, segs][:, None] * _WEIGHT[kind] * np.exp(law.log_density(delta))
    tt = t[rows][:, None]
    ee = e[rows][:, None]
    z = _z_of(law, delta)
    r = law.r_of(delta)
    # overflow to +-inf (s/r beyond 1e308) gives the right limits x = -inf, W = 0
    with np.errstate(over="ignore"):
        em, sk = law.shrink(z, tt)
        x, y, _ = _geometry(em, r, ee)
    inside = (x > 0) & (y > 0)
    w_val = np.where(y <= 0, 1.0, 0.0)
    c_val = np.where(x <= 0, 1.0, 0.0)
    d_t = np.zeros_like(x)
    d_e = np.zeros_like(x)
    if inside.any():
        xi, yi = x[inside], y[inside]
        low = xi <= yi
        # x + y = 1 up to rounding; the smaller of the two is at most 1/2
        small = betainc(law.b, law.b, np.minimum(np.where(low, xi, yi), 0.5))
        w_val[inside] = np.where(low, small, 1.0 - small)
        c_val[inside] = np.where(low, 1.0 - small, small)
        dens = np.exp((law.b - 1.0) * (np.log(xi) + np.log(yi)) - law._betaln)
        ri, ei, emi = r[inside], np.broadcast_to(ee, x.shape)[inside], em[inside]
        s = ri * (1.0 + emi)
        d_t[inside] = dens * law.s_over_dphi(s, sk[inside]) / (2.0 * ei * ri)
        d_e[inside] = dens * (ei * ei + ri * ri * emi * (2.0 + emi)) / (4.0 * ei * ei * ri)

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(rows, weights=np.sum(weight * v, axis=1), minlength=n)

    mass = total(np.ones_like(x))
    return LevelSetProbability(value=total(w_val) / mass, complement=total(c_val) / mass,
                               d_t=total(d_t) / mass, d_e=total(d_e) / mass)


def _chunked(law: RadialLaw, t: np.ndarray, e: np.ndarray) -> LevelSetProbability:
    per = max(1, _CHUNK // ((law.splits.size + 5) * _NODES_PER_PIECE))
    parts = [_integrate(law, t[i:i + per], e[i:i + per]) for i in range(0, t.size, per)]
    if len(parts) == 1:
        return parts[0]
    return LevelSetProbability(*(np.concatenate([getattr(p, f) for p in parts])
                                 for f in ("value", "complement", "d_t", "d_e")))


def pbig(law: RadialLaw, t: Any, e: Any) -> LevelSetProbability:
    """P_{x~q}[log q_e(x)/q(x) < t] for the noise ``law`` at scale 1 (arrays broadcast; e > 0)."""
    t, e = np.broadcast_arrays(np.asarray(t, dtype=np.float64), np.asarray(e, dtype=np.float64))
    if not np.all(e > 0) or not np.all(np.isfinite(t)) or not np.all(np.isfinite(e)):
        raise ValueError("pbig needs finite t and finite e > 0")
    shape = t.shape
    res = _chunked(law, t.ravel().copy(), e.ravel().copy())
    return LevelSetProbability(*(getattr(res, f).reshape(shape)
                                 for f in ("value", "complement", "d_t", "d_e")))


# -------------------------------------------------------------------------------------- solvers
def _inv_phi_n(g: np.ndarray) -> np.ndarray:
    """1 / phi(g), the derivative of Phi^-1 at Phi(g); inf where it overflows."""
    with np.errstate(over="ignore"):
        return math.sqrt(2.0 * math.pi) * np.exp(0.5 * g * g)


def _safeguarded(fun, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, rtol: float,
                 atol: np.ndarray | float, ftol: np.ndarray | float, iters: int, what: str
                 ) -> np.ndarray:
    """Roots of increasing functions, vectorized over rows: Newton's method kept inside a
    sign-change bracket. A step bisects whenever Newton leaves the bracket, does not at least
    halve its previous step, or the last Newton step did not halve |f|; so either |f| or the
    bracket shrinks geometrically, and an inaccurate derivative cannot fake convergence.

    ``fun(x, rows) -> (f, df/dx)``; f(lo) < 0 < f(hi) with lo, hi finite (lo = hi is a root).
    A row is done when |f| <= ftol or its bracket is below rtol |x| + atol.
    """
    x, lo, hi = x.copy(), lo.copy(), hi.copy()
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), x.shape)
    ftol = np.broadcast_to(np.asarray(ftol, dtype=np.float64), x.shape)
    x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    last = hi - lo
    f_prev = np.full(x.shape, np.inf)
    todo = np.ones(x.shape, dtype=bool)
    for _ in range(iters):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            return x
        xi = x[idx]
        f, fp = fun(xi, idx)
        lo[idx] = np.where(f < 0, xi, lo[idx])
        hi[idx] = np.where(f > 0, xi, hi[idx])
        done = ((np.abs(f) <= ftol[idx]) | (f == 0)
                | (hi[idx] - lo[idx] <= rtol * np.abs(xi) + atol[idx]))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = xi - f / fp
        use = (np.isfinite(newton) & (newton > lo[idx]) & (newton < hi[idx])
               & (np.abs(newton - xi) <= 0.5 * last[idx])
               & (np.abs(f) <= 0.5 * f_prev[idx]))
        xn = np.where(use, newton, 0.5 * (lo[idx] + hi[idx]))
        last[idx] = np.where(use, np.abs(xn - xi), hi[idx] - lo[idx])
        f_prev[idx] = np.where(use, np.abs(f), np.inf)
        x[idx] = np.where(done, xi, xn)
        todo[idx[done]] = False
    bad = np.nonzero(todo)[0][:3]
    raise FloatingPointError(f"level set: {what} did not converge (rows {bad.tolist()})")


def _bracket(fun, x0: np.ndarray, step: np.ndarray, *, floor: float | None, what: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """A sign-change bracket [lo, hi] of an increasing function around x0: steps of doubling
    size away from x0. With ``floor``, f(floor) < 0 is known and never evaluated."""
    f0 = fun(x0, np.arange(x0.size))[0]
    lo = np.where(f0 <= 0, x0, np.nan)
    hi = np.where(f0 >= 0, x0, np.nan)
    up = f0 < 0
    if floor is not None:
        lo = np.where(f0 > 0, floor, lo)
    step = step.copy()
    pending = np.isnan(lo) | np.isnan(hi)
    for _ in range(200):
        idx = np.nonzero(pending)[0]
        if idx.size == 0:
            return lo, hi
        cand = np.where(up[idx], x0[idx] + step[idx], x0[idx] - step[idx])
        f = fun(cand, idx)[0]
        lo[idx] = np.where(f < 0, cand, lo[idx])
        hi[idx] = np.where(f > 0, cand, hi[idx])
        hit = np.where(f == 0, True, np.isfinite(lo[idx]) & np.isfinite(hi[idx]))
        lo[idx] = np.where(f == 0, cand, lo[idx])
        hi[idx] = np.where(f == 0, cand, hi[idx])
        step[idx] *= 2.0
        pending[idx[hit]] = False
    raise FloatingPointError(f"level set: no bracket found for {what}")


def _median_tau(law: RadialLaw, e: np.ndarray, tau0: np.ndarray) -> np.ndarray:
    """tau with pbig(tau e, e) = 1/2 (the median of the log-likelihood ratio is tau e)."""

    def fun(tau, rows):
        res = _chunked(law, tau * e[rows], e[rows])
        g = ndtri(res.value)
        # where pbig is exactly 0 or 1 the slope is 0 * inf: not finite, so the step bisects
        with np.errstate(invalid="ignore"):
            return g, res.d_t * e[rows] * _inv_phi_n(g)

    spread = law.shift_spread()
    lo, hi = _bracket(fun, tau0, 0.25 * (np.abs(tau0) + spread * np.minimum(e, 1.0)),
                      floor=None, what="the median threshold")
    return _safeguarded(fun, tau0, lo, hi, rtol=1e-13, atol=1e-300, ftol=2e-15, iters=200,
                        what="the median threshold")


@dataclass(frozen=True)
class Rho:
    """rho(e), the smallest p_lower certifying l2 radius e; 1 - rho(e) computed directly (no
    cancellation near rho = 1); and the median threshold t with pbig(t, e) = 1/2."""

    value: np.ndarray
    complement: np.ndarray
    threshold: np.ndarray


def rho(law: RadialLaw, e: Any) -> Rho:
    """rho(e) at scale 1 for shifts e > 0 (any shape)."""
    e = np.asarray(e, dtype=np.float64)
    shape = e.shape
    e = e.ravel().copy()
    if not np.all(e > 0) or not np.all(np.isfinite(e)):
        raise ValueError("rho needs finite shifts e > 0")
    tau = _median_tau(law, e, -0.5 * e * law.shift_spread() ** 2)
    res = _chunked(law, -tau * e, e)
    return Rho(value=res.value.reshape(shape), complement=res.complement.reshape(shape),
               threshold=(tau * e).reshape(shape))


def _residual(law: RadialLaw, tau: np.ndarray, e: np.ndarray, u: np.ndarray):
    """Residuals G1 = Phi^-1(pbig(tau e, e)), G2 = -Phi^-1(1 - pbig(-tau e, e)) - u and their
    Jacobian in (tau, e)."""
    both = _chunked(law, np.concatenate([tau * e, -tau * e]), np.concatenate([e, e]))
    m = tau.size
    p1, c2 = both.value[:m], both.complement[m:]
    pt1, pe1 = both.d_t[:m], both.d_e[:m]
    pt2, pe2 = both.d_t[m:], both.d_e[m:]
    g1 = ndtri(p1)
    q2 = ndtri(c2)
    j1 = _inv_phi_n(g1)
    j2 = _inv_phi_n(q2)
    with np.errstate(invalid="ignore", over="ignore"):
        a11 = j1 * pt1 * e
        a12 = j1 * (pt1 * tau + pe1)
        a21 = -j2 * pt2 * e
        a22 = j2 * (pe2 - pt2 * tau)
    return g1, -q2 - u, a11, a12, a21, a22


def _converged(se, st, f1, f2, ea, ta, ua) -> np.ndarray:
    """Residuals at their noise floor (a few 1e-15 in u), or small residuals and a relative
    step below 1e-12 (Newton converges quadratically from there)."""
    small_step = (np.abs(se) <= 1e-12 * ea) & (np.abs(st) <= 1e-12 * (np.abs(ta) + ea))
    small = (np.abs(f1) <= 1e-9) & (np.abs(f2) <= 1e-9 * np.maximum(1.0, ua))
    at_floor = (np.abs(f1) <= 1e-14) & (np.abs(f2) <= 1e-14 * np.maximum(1.0, ua))
    return (small_step & small) | at_floor


def _newton(law: RadialLaw, u: np.ndarray, tau: np.ndarray, e: np.ndarray, *,
            iters: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint Newton for (tau, e) at targets u from good guesses; returns (tau, e, converged).

    Rows whose step is not finite, leaves e > 0 or fails to converge are reported, not forced.
    """
    tau, e = tau.copy(), e.copy()
    todo = np.ones(u.shape, dtype=bool)
    failed = np.zeros(u.shape, dtype=bool)
    for _ in range(iters):
        idx = np.nonzero(todo)[0]
        if idx.size == 0:
            break
        ta, ea, ua = tau[idx], e[idx], u[idx]
        f1, f2, a11, a12, a21, a22 = _residual(law, ta, ea, ua)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            det = a11 * a22 - a12 * a21
            st = (a22 * f1 - a12 * f2) / det
            se = (a11 * f2 - a21 * f1) / det
        ok = np.isfinite(st) & np.isfinite(se) & (np.abs(se) < 0.5 * ea)
        tau[idx] = np.where(ok, ta - st, ta)
        e[idx] = np.where(ok, ea - se, ea)
        done = ok & _converged(se, st, f1, f2, ea, ta, ua)
        failed[idx[~ok]] = True
        todo[idx[done | ~ok]] = False
    return tau, e, ~(todo | failed)


def _nested(law: RadialLaw, u: np.ndarray, tau0: np.ndarray, e0: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(tau, e) at targets u by nested safeguarded solves: rho(e) = p in e, with the median
    threshold solved inside. Slower than ``_newton`` but needs no good guess."""
    tau_at = tau0.copy()

    def fun(ev, rows):
        tau = _median_tau(law, ev, tau_at[rows])
        tau_at[rows] = tau
        f1, f2, a11, a12, a21, a22 = _residual(law, tau, ev, u[rows])
        # along the curve G1 = 0: d tau / d e = -a12 / a11
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            slope = a22 - a21 * a12 / a11
        return f2, slope

    lo, hi = _bracket(fun, e0, 0.5 * e0, floor=0.0, what="the radius")
    e = _safeguarded(fun, e0, lo, hi, rtol=1e-12, atol=1e-300,
                     ftol=1e-14 * np.maximum(1.0, u), iters=300, what="the radius")
    # the median threshold at the final e
    return _median_tau(law, e, tau_at), e


#: coarse solution paths by law (see ``_path``); filled on first use
_PATHS: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
#: laws whose radius could not be tabulated to the table's accuracy (computed directly)
_UNTABULATED: set[str] = set()


def clear_path_cache() -> None:
    """Forget the cached solution paths (and which laws could not be tabulated)."""
    _PATHS.clear()
    _UNTABULATED.clear()


def _law_id(law: RadialLaw) -> str:
    return repr(sorted(law.key().items()))


def _path(law: RadialLaw, top: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The solution (tau, e) on a coarse grid of u up to ``top``: the starting guesses of the
    Newton solves. Cached by law (a few seconds to compute, a few kilobytes to keep)."""
    key = _law_id(law)
    cached = _PATHS.get(key)
    if cached is not None and cached[0][-1] >= top:
        return cached
    grid = top * np.concatenate([[1 / 64, 1 / 32], np.linspace(1 / 16, 1.0, 16)])
    tau0, e0 = law.small_shift_guess(grid)
    tau, e, ok = _newton(law, grid, tau0, e0)
    # Where that fails (e.g. an infinite Fisher information), continue along the path from the
    # solved point below, with the nested solver as the last resort.
    for i in np.nonzero(~ok)[0]:
        if i > 0:
            tau0[i], e0[i] = tau[i - 1] * grid[i] / grid[i - 1], e[i - 1] * grid[i] / grid[i - 1]
            t1, e1, ok1 = _newton(law, grid[i:i + 1], tau0[i:i + 1], e0[i:i + 1])
            if ok1[0]:
                tau[i], e[i] = t1[0], e1[0]
                continue
        t1, e1 = _nested(law, grid[i:i + 1], tau0[i:i + 1], e0[i:i + 1])
        tau[i], e[i] = t1[0], e1[0]
    _PATHS[key] = (grid, tau, e)
    return _PATHS[key]


def _solve(law: RadialLaw, u: np.ndarray) -> np.ndarray:
    """The radius e with rho(e) = Phi(u) for each u > 0."""
    grid, taus, es = _path(law, max(float(np.max(u)), _TABLE_U_MAX))
    tau_u = PchipInterpolator(grid, taus / grid, extrapolate=True)
    e_u = PchipInterpolator(grid, es / grid, extrapolate=True)
    tau0, e0 = tau_u(u) * u, e_u(u) * u
    tau, e, ok = _newton(law, u, tau0, e0)
    if not ok.all():
        log.debug("level set: %d of %d radii need the nested solver", int(np.sum(~ok)), u.size)
        tau[~ok], e[~ok] = _nested(law, u[~ok], tau0[~ok], e0[~ok])
    return e


def radius(law: RadialLaw, p: Any) -> np.ndarray:
    """The exact level-set radius at scale 1: the e with rho(e) = p (0 for p <= 1/2, inf for
    p = 1). Not rounded down; see ``certified_radius``."""
    p = np.asarray(p, dtype=np.float64)
    shape = p.shape
    p = p.ravel()
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p must lie in [0, 1]")
    out = np.zeros(p.shape)
    out[p == 1.0] = np.inf
    sel = (p > 0.5) & (p < 1.0)
    if sel.any():
        out[sel] = _solve(law, -ndtri(1.0 - p[sel]))
    return out.reshape(shape)


def _table_key(law: RadialLaw) -> Mapping[str, Any]:
    return {**law.key(), "norm": "l2", "method": "levelset", "revision": _REVISION}


def radius_table(law: RadialLaw, *, rebuild: bool = False) -> RadiusTable:
    """The rounded-down radius table of ``law`` (cached in memory and on disk)."""

    def exact(p: np.ndarray) -> np.ndarray:
        return radius(law, p) * (1.0 - RADIUS_RTOL)

    return cached_table(_table_key(law), lambda: build_table(exact), rebuild=rebuild)


def certified_radius(law: RadialLaw, p_lower: Any) -> np.ndarray:
    """Certified l2 radius at scale 1 for p_lower in (1/2, 1], rounded down.

    Uses the table up to its last node (about ``P_TABLE_MAX``) and the direct solver beyond. A
    radius that is not smooth enough at p = 1/2 to be tabulated (the Fisher information of the
    shift is infinite, e.g. Exp2 with j >= d - 2: rho(e) - 1/2 is not O(e)) is always computed
    directly.
    """
    p = np.asarray(p_lower, dtype=np.float64)
    shape = p.shape
    p = p.ravel()
    out = np.zeros(p.shape)
    covered = np.zeros(p.shape, dtype=bool)
    if law.tabulable() and _law_id(law) not in _UNTABULATED:
        try:
            table = radius_table(law)
        except FloatingPointError as exc:
            log.warning("no radius table for %s (%s); radii are computed directly",
                        law.key(), exc)
            _UNTABULATED.add(_law_id(law))
        else:
            covered = table.covers(p)
            if covered.any():
                out[covered] = table(p[covered])
    beyond = (p > 0.5) & ~covered
    if beyond.any():
        out[beyond] = radius(law, p[beyond]) * (1.0 - RADIUS_RTOL)
    return out.reshape(shape)
