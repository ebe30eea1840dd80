"""An interference-distance diagnostic: how far apart same-class regions are, across the other
class, compared with the smoothing noise.

[PS23]'s positive result needs *low interference*: same-class components close together relative
to the noise, so that smoothing merges them instead of erasing them. The paper's exact definition
is not reproduced here; this module measures the quantity that statement is about, the gaps
between same-class regions, and compares them with the widest gap Gaussian smoothing can fill,
``slab_gap_fill_width(beta)`` = 2 Phi^-1(3/4) beta (two half-spaces of one class; two finite
regions are bridged only over narrower gaps).

Grids (exact). For every class, its connected components (``scipy.ndimage.label``); the gap of a
component is its distance to the nearest *other* component of the same class. The shortest
segment realizing it crosses no third component of that class (that one would be nearer), so it
runs through the other classes (or outside the window). Distances are between pixel centres minus
one pixel, so two components with ``zeta`` background pixels between them along an axis have gap
``zeta``; touching (diagonal) components have gap sqrt(2) - 1.

Point clouds (a sample approximation). For each point, its ``k`` nearest same-class neighbours are
candidates; the segment to a neighbour counts as crossing the other class when the point nearest
to the segment's midpoint belongs to another class and is strictly nearer than the endpoints. The
gap of a point is the length of its shortest crossing segment among the candidates (infinite if
none): a same-class example reachable only through the other class's territory (as seen by the
1-nearest-neighbour labelling). The whole segment length is reported, an upper bound on the part
inside the other class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from smoothcert.pal_sulam.population.closed_forms import slab_gap_fill_width

__all__ = ["InterferenceGaps", "grid_gaps", "point_cloud_gaps"]


@dataclass(frozen=True)
class InterferenceGaps:
    """Gaps (float64, inf where a region or point has no same-class partner) and the class of
    each region (grids) or point (point clouds)."""

    gaps: np.ndarray
    classes: np.ndarray

    def relative_to(self, beta: float) -> np.ndarray:
        """gaps / beta."""
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        return self.gaps / float(beta)

    def fraction_fillable(self, beta: float, cls: int | None = None) -> float:
        """The fraction of finite gaps (of class ``cls``, or all) no wider than the widest gap
        Smooth_beta can fill, 2 Phi^-1(3/4) beta; nan when there is no finite gap."""
        mask = np.isfinite(self.gaps)
        if cls is not None:
            mask &= self.classes == cls
        if not mask.any():
            return float("nan")
        return float(np.mean(self.gaps[mask] <= slab_gap_fill_width(beta)))


def grid_gaps(labels: np.ndarray, classes: list[int] | None = None, connectivity: int = 1
              ) -> InterferenceGaps:
    """One gap per connected component of each class in ``classes`` (default: all present).

    ``connectivity`` 1 joins pixels sharing an edge, 2 also pixels sharing a corner.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got dtype {labels.dtype}")
    if connectivity not in range(1, labels.ndim + 1):
        raise ValueError(f"connectivity must be in 1..{labels.ndim}, got {connectivity!r}")
    structure = ndimage.generate_binary_structure(labels.ndim, connectivity)
    gaps: list[float] = []
    owners: list[int] = []
    for cls in (sorted(np.unique(labels).tolist()) if classes is None else classes):
        components, count = ndimage.label(labels == cls, structure=structure)
        for k in range(1, count + 1):
            own = components == k
            others = (components > 0) & ~own
            if others.any():
                # distance from every pixel to the nearest pixel of another component
                reach = ndimage.distance_transform_edt(~others)
                gaps.append(float(reach[own].min()) - 1.0)
            else:
                gaps.append(float("inf"))
            owners.append(int(cls))
    return InterferenceGaps(np.asarray(gaps, dtype=np.float64), np.asarray(owners, np.int64))


def point_cloud_gaps(points: np.ndarray, labels: np.ndarray, k: int = 10) -> InterferenceGaps:
    """One gap per point (see the module docstring); ``points`` is (n, dim), ``labels`` (n,)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    y = np.asarray(labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    everyone = NearestNeighbors(n_neighbors=1).fit(x)
    gaps = np.full(x.shape[0], np.inf)
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if members.size < 2:
            continue
        kk = min(int(k), members.size - 1)
        dist, nbr = NearestNeighbors(n_neighbors=kk + 1).fit(x[members]).kneighbors(x[members])
        dist, nbr = dist[:, 1:], members[nbr[:, 1:]]  # drop each point itself
        mids = 0.5 * (x[members][:, None, :] + x[nbr]).reshape(-1, x.shape[1])
        to_nearest, nearest = everyone.kneighbors(mids)
        crossing = (y[nearest[:, 0]] != cls) & (to_nearest[:, 0] < 0.5 * dist.ravel())
        lengths = np.where(crossing.reshape(dist.shape), dist, np.inf)
        gaps[members] = lengths.min(axis=1)
    return InterferenceGaps(gaps, y.astype(np.int64))
