"""Radius tables: R(p) at scale 1 on a dense grid, interpolated, rounded down, cached on disk.

Where a radius has no closed form, evaluating it for every p_lower (a quadrature, or a root-find
over quadratures) is far too slow for 10^5 values a second. A ``RadiusTable`` stores the exact
radius at nodes u_i on a uniform grid in u = Phi^-1(p) (Phi the standard normal CDF), where the
radius of every family is smooth and nearly polynomial, and interpolates with a cubic spline.

Rounding down. During the build the exact radius is also computed at every interval midpoint;
the largest relative error of the spline there (where a cubic interpolant's error peaks) sets a
relative ``margin``, twice that error plus 1e-11 for the error of the exact values themselves, and
every lookup returns ``spline(u) * (1 - margin)``, never less than the node below (the radius is
non-decreasing in p). Grids are refined until the margin is below 1e-8, so lookups are accurate
to far better than the 1e-6 relative the library promises. Queries with p above the grid's last
node (1 - 1e-8) are computed directly by the family, not extrapolated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtr, ndtri

from ..._version import __version__

__all__ = ["RadiusTable", "build_table", "cached_table", "cache_dir", "clear_memory_cache",
           "P_TABLE_MAX"]

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


def build_table(exact: Callable[[np.ndarray], np.ndarray], *, tol: float = 1e-8,
                n_start: int = 512, n_max: int = 1 << 15) -> RadiusTable:
    """Tabulate ``exact`` (increasing float64 p -> radius at scale 1) on (1/2, P_TABLE_MAX].

    ``exact`` receives a sorted array starting at p = 1/2 (radius 0) and may exploit the order
    (e.g. accumulate an integral). The grid is doubled until the spline's relative error at the
    interval midpoints is below ``tol``.
    """
    n = n_start
    while True:
        grid = np.linspace(0.0, _U_MAX, 2 * n + 1)
        p = ndtr(grid)
        p[0] = 0.5
        # the nodes are the u values a lookup will compute for these exact float64 p
        u = ndtri(p)
        r = np.asarray(exact(p), dtype=np.float64)
        if r.shape != p.shape or not np.all(np.isfinite(r)):
            raise FloatingPointError("the exact radius returned non-finite values")
        r[0] = 0.0
        nodes, mids = slice(0, None, 2), slice(1, None, 2)
        spline = CubicSpline(u[nodes], r[nodes])
        err = float(np.max(np.abs(spline(u[mids]) - r[mids]) / r[mids]))
        if err <= tol or n >= n_max:
            break
        n *= 2
    if err > 1e-7:
        raise FloatingPointError(
            f"radius table did not converge: relative interpolation error {err:.3g} with "
            f"{n} intervals")
    # Keep all points (nodes and validated midpoints): the finer table is at least as accurate.
    return RadiusTable(u=u, radius=np.maximum.accumulate(r), margin=2.0 * err + 1e-11)


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
    full = {"smoothcert": __version__, "format": _FORMAT, **key}
    return json.dumps(full, sort_keys=True, default=repr)


def table_path(key: Mapping[str, Any]) -> Path:
    text = _key_text(key)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    stem = str(key.get("family", "table")).replace(os.sep, "_")
    return cache_dir() / f"{stem}-{digest}.npz"


def _load(path: Path, text: str) -> RadiusTable | None:
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
        return table
    except Exception as exc:  # a corrupt cache file is rebuilt, never trusted
        log.warning("ignoring radius table cache %s (%s); rebuilding", path, exc)
        return None


def _save(path: Path, text: str, table: RadiusTable) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(text), u=table.u, radius=table.radius,
                     margin=np.float64(table.margin), checksum=np.array(table.checksum()))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write radius table cache %s (%s)", path, exc)


def cached_table(key: Mapping[str, Any], build: Callable[[], RadiusTable], *,
                 rebuild: bool = False) -> RadiusTable:
    """The table for ``key`` (which must identify the family, norm, dim and shape parameters),
    from memory, from the disk cache, or built (and cached). The library version is part of the
    key, so an upgrade never reuses an older table."""
    text = _key_text(key)
    if not rebuild and text in _MEMORY:
        return _MEMORY[text]
    path = table_path(key)
    table = None if rebuild else _load(path, text)
    if table is None:
        log.info("building radius table %s", text)
        table = build()
        _save(path, text, table)
    _MEMORY[text] = table
    return table
