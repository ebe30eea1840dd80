"""An mpmath reference for the level-set radius of Exp2 noise, independent of the library.

Written from the Neyman-Pearson argument of Yang et al. (2020) (spec: level-set method): for the
density q proportional to r^-j exp(-r^k) on R^d (r = ||x||_2) and its shift q_e by e along e_1,
rho(e) = P_q[log q_e/q < -t*], where t* is the median of log q_e/q under q; the radius R(p) solves
rho(R) = p, and since rho increases with e, a radius r is sound at p iff rho(r) <= p.

Given ||x|| = r, log q_e(x)/q(x) < t iff ||x - e e_1|| > s with phi(s) = phi(r) - t,
phi(r) = r^k + j log r, and for x uniform on the sphere, (1 + cos theta)/2 ~ Beta(b, b),
b = (d-1)/2, so the conditional probability is I_x(b, b) with x = ((r+e)^2 - s^2)/(4 e r) clipped
to [0, 1]. The radial law has density proportional to r^(d-1-j) exp(-r^k). s comes in closed form:
s^k = r^k - t for j = 0, and for k = 2, y = s^2 solves y + (j/2) log y = c, so
y = (j/2) W((2/j) exp(2c/j)) with Lambert's W. Quadrature: mpmath's tanh-sinh, split where the
conditional probability stops being 0 or 1 (found by bisection) and at a few radial quantiles.
"""

from __future__ import annotations

import mpmath as mp

DPS = 40


def _phi_inverse(k: float, j: float, c):
    """s >= 0 with s^k + j log s = c (0 when no such s exists, only possible for j = 0)."""
    if j == 0:
        return mp.root(c, k) if c > 0 else mp.mpf(0)
    if k != 2:
        raise NotImplementedError("the reference covers j = 0 or k = 2")
    half = mp.mpf(j) / 2
    # work with log of the argument of W: exp(2c/j) may be astronomically large
    y = half * mp.lambertw(mp.exp(2 * c / j - mp.log(half))).real
    return mp.sqrt(y)


class Exp2Reference:
    """rho(e) of Exp2(k, j) on R^dim at scale 1, at ``DPS`` digits."""

    def __init__(self, dim: int, k: float, j: float) -> None:
        self.d, self.k, self.j = dim, mp.mpf(k), mp.mpf(j)
        self.b = mp.mpf(dim - 1) / 2
        self.norm = mp.gamma((dim - self.j) / self.k) / self.k  # int r^(d-1-j) e^(-r^k) dr

    def _phi(self, r):
        return r ** self.k + (self.j * mp.log(r) if self.j else 0)

    def _arg(self, r, t, e):
        s = _phi_inverse(float(self.k), float(self.j), self._phi(r) - t)
        return ((r + e) ** 2 - s ** 2) / (4 * e * r)

    def _w(self, x):
        if x <= 0:
            return mp.mpf(0)
        if x >= 1:
            return mp.mpf(1)
        if self.d == 2:
            return 2 / mp.pi * mp.asin(mp.sqrt(x))
        return mp.betainc(self.b, self.b, 0, x, regularized=True)

    def _density(self, r):
        return r ** (self.d - 1 - self.j) * mp.exp(-r ** self.k) / self.norm

    def _breaks(self, t, e):
        """Quantile points of r and the kinks (x crossing 0 or 1) between them."""
        a = (self.d - self.j) / self.k
        pts = [mp.mpf(0)]
        for q in (mp.mpf("1e-12"), mp.mpf("1e-4"), mp.mpf("0.1"), mp.mpf("0.5"), mp.mpf("0.9"),
                  mp.mpf("0.9999"), 1 - mp.mpf("1e-12")):
            # r^k ~ Gamma(a): invert the regularized lower incomplete gamma by bisection
            lo, hi = mp.mpf(0), a + 60 * mp.sqrt(a) + 60
            for _ in range(80):
                mid = (lo + hi) / 2
                if mp.gammainc(a, 0, mid, regularized=True) < q:
                    lo = mid
                else:
                    hi = mid
            pts.append(mp.root((lo + hi) / 2, self.k))
        scan = sorted(set(pts[1:] + [e * f for f in (mp.mpf(2) ** i for i in range(-8, 9))]))
        kinks = []
        for lo, hi in zip(scan[:-1], scan[1:], strict=True):
            for level in (0, 1):
                flo = self._arg(lo, t, e) - level
                fhi = self._arg(hi, t, e) - level
                if (flo > 0) != (fhi > 0):
                    a_, b_ = lo, hi
                    for _ in range(200):
                        mid = (a_ + b_) / 2
                        if (self._arg(mid, t, e) - level > 0) == (flo > 0):
                            a_ = mid
                        else:
                            b_ = mid
                        if b_ - a_ < mp.mpf(10) ** (-DPS + 5) * b_:
                            break
                    kinks.append((a_ + b_) / 2)
        return sorted(set(pts + kinks)) + [mp.inf]

    def pbig(self, t, e):
        """P_q[log q_e/q < t]."""
        t, e = mp.mpf(t), mp.mpf(e)
        pts = self._breaks(t, e)
        return mp.quad(lambda r: self._density(r) * self._w(self._arg(r, t, e)), pts)

    def rho(self, e):
        """rho(e) = pbig(-t*, e) with pbig(t*, e) = 1/2 (bisection on t, then a secant polish)."""
        e = mp.mpf(e)
        half = mp.mpf(1) / 2
        lo, hi = -e, e
        while self.pbig(lo, e) > half:
            lo *= 2
        while self.pbig(hi, e) < half:
            hi *= 2
        t = mp.findroot(lambda v: self.pbig(v, e) - half, (lo, hi), solver="anderson",
                        tol=mp.mpf(10) ** (-2 * DPS + 10))
        return self.pbig(-t, e)


def rho(dim: int, k: float, j: float, e: float) -> float | mp.mpf:
    with mp.workdps(DPS):
        return Exp2Reference(dim, k, j).rho(mp.mpf(e))
