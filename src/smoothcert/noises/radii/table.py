"""Radius tables: R(p) at scale 1 on a dense grid, interpolated, rounded down, cached on disk.

Where a radius has no closed form, evaluating it for every p_lower (a quadrature, or a root-find
over quadratures) is far too slow for 10^5 values a second. A ``RadiusTable`` stores the exact
radius at nodes u_i in u = Phi^-1(p) (Phi the standard normal CDF), where the radius of every
family is nearly polynomial, and interpolates with a cubic spline. The nodes start as a uniform
grid and are refined where the spline misses (typically towards u = 0, where some radii carry a
fractional power of p - 1/2).

Rounding down. During the build the exact radius is also computed at every interval midpoint;
the largest relative error of the spline there (where a cubic interpolant's error peaks) sets a
relative ``margin``, twice that error plus 1e-11 for the error of the exact values themselves, and
every lookup returns ``spline(u) * (1 - margin)``, never less than the node below (the radius is
non-decreasing in p). Grids are refined until that error is below 1e-8 (a build that cannot
reach 1e-7 is refused), so lookups are accurate to far better than the 1e-6 relative the library
promises. Queries with p above the grid's last
node (1 - 1e-8) are computed directly by the family, not extrapolated.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy.interpolate import CubicSpline
from scipy.special import ndtr, ndtri

from smoothcert._version import __version__
from smoothcert.runs.atomic import write_bytes_atomic

__all__ = ["RadiusTable", "build_table", "cached_table", "cache_dir", "clear_memory_cache",
           "P_TABLE_MAX", "Verify", "check_points"]

log = logging.getLogger(__name__)

#: the largest p_lower a table covers; larger values are computed directly by the family
P_TABLE_MAX = 1.0 - 1e-8
_U_MAX = float(-ndtri(1.0 - P_TABLE_MAX))
_FORMAT = 1


@dataclass(frozen=True)
class RadiusTable:
    """Radius at scale 1 on nodes ``u`` (= Phi^-1(p), increasing, u[0] = 0), rounded down."""

    u: np.ndarray
    radius: np.ndarray
    margin: float
    _spline: CubicSpline = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        u = np.asarray(self.u, dtype=np.float64)
        r = np.asarray(self.radius, dtype=np.float64)
        if u.ndim != 1 or u.shape != r.shape or u.size < 4 or np.any(np.diff(u) <= 0):
            raise ValueError("a radius table needs >= 4 increasing nodes with one radius each")
        if not np.all(np.isfinite(r)) or np.any(np.diff(r) < 0):
            raise ValueError("a radius table's radii must be finite and non-decreasing")
        if not 0 <= self.margin < 1e-6:
            raise ValueError(f"table margin {self.margin!r} is outside [0, 1e-6)")
        object.__setattr__(self, "u", u)
        object.__setattr__(self, "radius", r)
        object.__setattr__(self, "_spline", CubicSpline(u, r))

    @property
    def p_max(self) -> float:
        """The largest p_lower this table answers."""
        return float(ndtr(self.u[-1]))

    def covers(self, p: np.ndarray) -> np.ndarray:
        """Boolean mask of the p values this table answers (1/2 < p <= p_max)."""
        return (p > 0.5) & (ndtri(p) <= self.u[-1])

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """A lower bound on the radius at each p (all p must be covered)."""
        p = np.asarray(p, dtype=np.float64)
        u = ndtri(p)
        if np.any(u > self.u[-1]) or np.any(p <= 0.5):
            raise ValueError(f"p_lower outside this table's range (1/2, {self.p_max!r}]")
        i = np.clip(np.searchsorted(self.u, u, side="right") - 1, 0, self.u.size - 2)
        value = self._spline(u) * (1.0 - self.margin)
        low = self.radius[i] * (1.0 - self.margin)
        high = self.radius[i + 1]
        return np.maximum(np.minimum(value, high), low)

    # -- serialization
    def checksum(self) -> str:
        h = hashlib.sha256()
        h.update(self.u.tobytes())
        h.update(self.radius.tobytes())
        h.update(np.float64(self.margin).tobytes())
        return h.hexdigest()


def _evaluate(exact: Callable[[np.ndarray], np.ndarray], u: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The exact radius at the increasing positive ``u``; returns the u a lookup computes for the
    float64 p of these points (ndtri(ndtr(u))) and the radii."""
    p = ndtr(u)
    r = np.asarray(exact(np.concatenate(([0.5], p))), dtype=np.float64)
    if r.shape != (p.size + 1,) or not np.all(np.isfinite(r)):
        raise FloatingPointError("the exact radius returned non-finite values")
    return ndtri(p), r[1:]


#: intervals narrower than this (in u) are not split further: near u = _U_MAX, float64 p
#: resolves u only to about 1e-9
_MIN_WIDTH = 1e-6


def build_table(exact: Callable[[np.ndarray], np.ndarray], *, tol: float = 1e-8,
                n_start: int = 512, n_max: int = 1 << 15, grading: float = 1.0,
                exact_error: float = 1e-11) -> RadiusTable:
    """Tabulate ``exact`` (increasing float64 p -> radius at scale 1) on (1/2, P_TABLE_MAX].

    ``exact`` receives a sorted array starting at p = 1/2 (radius 0) and may exploit the order
    (e.g. accumulate an integral); it is called once per refinement round, on new points only.

    Starting from ``n_start`` equal intervals in u, every interval whose midpoint shows a spline
    relative error above ``tol`` is split (in two, or in four when the error exceeds 16 tol),
    until no midpoint exceeds ``tol`` or there are ``n_max`` intervals. The refinement is local
    because some radii are not smooth at p = 1/2: e.g. Exp1(k=2) at d = 7 has a term
    (p - 1/2)^(15/7), which no uniform grid resolves to 1e-8 relative, while a grid graded
    towards u = 0 does.

    ``grading`` places the starting nodes at u_i = U (i / n_start)^grading: radii known to be
    non-analytic at p = 1/2 (the differential method's) start from a grid graded towards u = 0
    and need few refinement rounds. ``exact_error`` is the relative error of ``exact`` itself,
    added to the lookup margin.
    """
    if grading < 1:
        raise ValueError(f"grading must be >= 1, got {grading!r}")
    start = _U_MAX * np.linspace(0.0, 1.0, n_start + 1)[1:] ** grading
    u_nodes, r_nodes = _evaluate(exact, start)
    u_nodes = np.concatenate(([0.0], u_nodes))
    r_nodes = np.concatenate(([0.0], r_nodes))
    u_mids, r_mids = _evaluate(exact, 0.5 * (u_nodes[:-1] + u_nodes[1:]))
    rounds = 0
    while True:
        if np.any(np.diff(u_nodes) <= 0) or np.any(u_mids <= u_nodes[:-1]) or np.any(
                u_mids >= u_nodes[1:]):
            raise FloatingPointError("radius table nodes are not strictly increasing")
        spline = CubicSpline(u_nodes, r_nodes)
        miss = np.abs(spline(u_mids) - r_mids)
        err_each = np.where(r_mids > 0, miss / np.where(r_mids > 0, r_mids, 1.0),
                            np.where(miss > 0, np.inf, 0.0))
        err = float(np.max(err_each))
        split = (err_each > tol) & (np.diff(u_nodes) > _MIN_WIDTH)
        if not split.any() or u_nodes.size - 1 >= n_max:
            break
        rounds += 1
        lo, hi = u_nodes[:-1][split], u_nodes[1:][split]
        quarter = err_each[split] > 16.0 * tol
        # New nodes: the midpoints of the split intervals (already evaluated), and the quarter
        # points of those with a large error.
        extra = np.sort(np.concatenate(((3.0 * lo + hi)[quarter] / 4.0,
                                        (lo + 3.0 * hi)[quarter] / 4.0)))
        extra_u, extra_r = _evaluate(exact, extra) if extra.size else (extra, extra)
        # an old node whose interval is not split starts the same interval in the new grid
        kept = np.concatenate((np.where(split, -1, np.arange(split.size)), [-1]))
        u_all = np.concatenate((u_nodes, u_mids[split], extra_u))
        r_all = np.concatenate((r_nodes, r_mids[split], extra_r))
        tag = np.concatenate((kept, np.full(u_all.size - kept.size, -1)))
        order = np.argsort(u_all, kind="stable")
        u_nodes, r_nodes, tag = u_all[order], r_all[order], tag[order][:-1]
        old_u_mids, old_r_mids = u_mids, r_mids
        u_mids = np.empty(u_nodes.size - 1)
        r_mids = np.empty(u_nodes.size - 1)
        reuse = tag >= 0
        u_mids[reuse], r_mids[reuse] = old_u_mids[tag[reuse]], old_r_mids[tag[reuse]]
        u_mids[~reuse], r_mids[~reuse] = _evaluate(
            exact, 0.5 * (u_nodes[:-1][~reuse] + u_nodes[1:][~reuse]))
    log.debug("radius table: %d intervals after %d refinement rounds, error %.2g",
              u_nodes.size - 1, rounds, err)
    if err > 1e-7:
        raise FloatingPointError(
            f"radius table did not converge: relative interpolation error {err:.3g} with "
            f"{u_nodes.size - 1} intervals")
    # Keep all points (nodes and validated midpoints): the finer table is at least as accurate.
    u = np.concatenate((u_nodes, u_mids))
    r = np.concatenate((r_nodes, r_mids))
    order = np.argsort(u, kind="stable")
    return RadiusTable(u=u[order], radius=np.maximum.accumulate(r[order]),
                       margin=2.0 * err + exact_error)


# ---------------------------------------------------------------------------------------- cache
_MEMORY: dict[str, RadiusTable] = {}


def cache_dir() -> Path:
    """Where tables are cached: $SMOOTHCERT_CACHE_DIR, else $XDG_CACHE_HOME/smoothcert, else
    ~/.cache/smoothcert."""
    if os.environ.get("SMOOTHCERT_CACHE_DIR"):
        return Path(os.environ["SMOOTHCERT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "smoothcert"


def clear_memory_cache() -> None:
    _MEMORY.clear()


def _key_text(key: Mapping[str, Any]) -> str:
    # the radii come from scipy's special functions: another scipy rebuilds the table
    full = {"smoothcert": __version__, "scipy": scipy.__version__, "format": _FORMAT, **key}
    return json.dumps(full, sort_keys=True, default=repr)


def table_path(key: Mapping[str, Any]) -> Path:
    text = _key_text(key)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    stem = str(key.get("family", "table")).replace(os.sep, "_")
    return cache_dir() / f"{stem}-{digest}.npz"


#: ``verify(p, radius) -> ok``: whether every radius a loaded table gives at the p is at most
#: the family's own direct computation (the table was not edited to inflate radii)
Verify = Callable[[np.ndarray, np.ndarray], bool]


def check_points(table: RadiusTable) -> np.ndarray:
    """The p at which a loaded table is checked: a few nodes spread over its range and the
    midpoints (in u) after them, where the lookup is the spline rather than a stored value."""
    n = table.u.size
    idx = np.unique(np.clip(np.array([1, n // 16, n // 4, n // 2, (3 * n) // 4, n - 2]), 1,
                            n - 2))
    u = np.concatenate([table.u[idx], 0.5 * (table.u[idx] + table.u[idx + 1])])
    return np.sort(ndtr(u))


def _load(path: Path, text: str, verify: Verify | None) -> RadiusTable | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != text:
                raise ValueError("key mismatch")
            table = RadiusTable(u=data["u"], radius=data["radius"],
                                margin=float(data["margin"]))
            if table.checksum() != str(data["checksum"]):
                raise ValueError("checksum mismatch")
        if verify is not None:
            p = check_points(table)
            if not verify(p, table(p)):
                raise ValueError("radii above the direct computation")
        return table
    except Exception as exc:  # a corrupt cache file is rebuilt, never trusted
        log.warning("ignoring radius table cache %s (%s); rebuilding", path, exc)
        return None


def _save(path: Path, text: str, table: RadiusTable) -> None:
    buf = io.BytesIO()
    np.savez(buf, key=np.array(text), u=table.u, radius=table.radius,
             margin=np.float64(table.margin), checksum=np.array(table.checksum()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, buf.getvalue())
    except OSError as exc:
        log.warning("could not write radius table cache %s (%s)", path, exc)


def cached_table(key: Mapping[str, Any], build: Callable[[], RadiusTable], *,
                 rebuild: bool = False, verify: Verify | None = None) -> RadiusTable:
    """The table for ``key`` (which must identify the family, norm, dim and shape parameters),
    from memory, from the disk cache, or built (and cached). The library and scipy versions are
    part of the key, so an upgrade never reuses an older table. A table read from disk must
    pass its checksum and ``verify`` at the ``check_points`` (cheap direct computations that
    catch a file edited to inflate radii); otherwise it is rebuilt."""
    text = _key_text(key)
    if not rebuild and text in _MEMORY:
        return _MEMORY[text]
    path = table_path(key)
    table = None if rebuild else _load(path, text, verify)
    if table is None:
        log.info("building radius table %s", text)
        table = build()
        _save(path, text, table)
    _MEMORY[text] = table
    return table
