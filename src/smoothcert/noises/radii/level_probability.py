"""The level-set probability pbig(t, e) = P_{x~q}[log q_e(x)/q(x) < t] of a radial law.

Given r = ||x||, the event says that x lies outside the ball of radius s centred at the shift,
where phi(s) = phi(r) - t (s = 0 if no such s >= 0 exists), and for x uniform on the radius-r
sphere, (1 + cos theta) / 2 ~ Beta((d-1)/2, (d-1)/2), so pbig(t, e) = E_r[W(r, s(r, t), e, d)] with

    W(r, s, e, d) = I_{((r+e)^2 - s^2) / (4 e r)}((d-1)/2, (d-1)/2),   argument clipped to [0, 1].

Numerics. W is smooth except where it stops being 0 or 1 (the shifted sphere starts or stops
cutting the ball). Those kinks are located: W = 1 iff s <= |r - e| and W = 0 iff s >= r + e, and
phi(r) - phi(|r - e|) and phi(r) - phi(r + e) are monotone between at most two known points
(r = e and one critical point of phi'(r) - phi'(r -+ e)), so each kink is bracketed and bisected.
The integral is split there; no adaptive quadrature is used (scipy's quad silently loses mass
when given break points outside a finite support). Each piece gets 20-point Gauss-Legendre; at an
end that is a kink the nodes are clustered by a cosine map, which turns the (1 - x)^((d-1)/2)
behaviour of the incomplete beta function there into a smooth integrand in every dimension. A
fixed split close to a kink is dropped. 1 - pbig is accumulated from the complementary incomplete
beta function, so values close to 1 - 1e-16 keep full relative accuracy; the sum is divided by the
quadrature's total mass, so the normalizing constant never enters.

Accuracy: pbig to about 1e-15 (absolute), 1 - pbig to about 1e-13 (relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betainc

from smoothcert.noises.radii.radial import FRAC, NODES_PER_PIECE, WEIGHT, RadialLaw

__all__ = ["LevelSetProbability", "sphere_outside_probability", "pbig", "pbig_rows"]

#: number of (pair, node) evaluations processed at once, to bound memory
_CHUNK = 1 << 17
_BISECTIONS = 64


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
    delta = a[rows, segs][:, None] + h[rows, segs][:, None] * FRAC[kind]
    weight = h[rows, segs][:, None] * WEIGHT[kind] * np.exp(law.log_density(delta))
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


def pbig_rows(law: RadialLaw, t: np.ndarray, e: np.ndarray) -> LevelSetProbability:
    per = max(1, _CHUNK // ((law.splits.size + 5) * NODES_PER_PIECE))
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
    res = pbig_rows(law, t.ravel().copy(), e.ravel().copy())
    return LevelSetProbability(*(getattr(res, f).reshape(shape)
                                 for f in ("value", "complement", "d_t", "d_e")))
