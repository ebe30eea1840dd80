"""The random-disk distributions of [PS23]'s synthetic experiment (their Fig. 3 and Fig. 4).

A ``side`` x ``side`` grid is labelled 1 inside non-overlapping disks of radius ``radius`` and 0
elsewhere. Disks are placed greedily: ``candidates`` centres are drawn uniformly over the whole
grid (integer pixel coordinates, as in the authors' code), and a candidate is accepted when every
already accepted centre is farther than ``2 * radius + zeta`` in L-infinity distance.

Choices made where the description leaves room, each stated in the docstrings below:

- a disk is the closed lattice disk {(i, j): (i - ci)^2 + (j - cj)^2 <= radius^2}, 2 radius + 1
  pixels wide; with the strict acceptance rule two disks are then separated by at least ``zeta``
  background pixels along each axis (``zeta`` is the minimal extra gap);
- centres are uniform over the grid, so disks near the border are cut by it (they are not forced
  inside); the cut parts are simply absent, nothing wraps around.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DiskImage", "disk_labels", "random_disks"]


@dataclass(frozen=True)
class DiskImage:
    """A labelled grid of disks: ``labels`` (int64, 1 inside a disk) and the accepted
    ``centres`` (int64, shape (k, 2), row and column), with the parameters that made it."""

    labels: np.ndarray
    centres: np.ndarray
    radius: int
    zeta: int


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def disk_labels(shape: tuple[int, int], centres: np.ndarray, radius: int) -> np.ndarray:
    """Labels 1 on the union of closed lattice disks of ``radius`` around ``centres``, clipped to
    the grid ``shape``."""
    radius = _check_int("radius", radius, 0)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, dtype=np.int64)
    for ci, cj in np.asarray(centres, dtype=np.int64).reshape(-1, 2):
        labels[(rows - ci) ** 2 + (cols - cj) ** 2 <= radius * radius] = 1
    return labels


def random_disks(rng: np.random.Generator, *, side: int = 100, radius: int = 10, zeta: int = 0,
                 candidates: int = 10_000) -> DiskImage:
    """One random disk image; all randomness comes from ``rng``.

    A candidate centre c is accepted iff max(|c - a|_inf over accepted a) > 2 radius + zeta, so
    accepted disks never overlap and, along an axis, at least ``zeta`` background pixels separate
    two of them.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    side = _check_int("side", side, 1)
    radius = _check_int("radius", radius, 0)
    zeta = _check_int("zeta", zeta, 0)
    candidates = _check_int("candidates", candidates, 1)
    separation = 2 * radius + zeta
    accepted: list[np.ndarray] = []
    for centre in rng.integers(0, side, size=(candidates, 2)):
        if not accepted or np.abs(np.asarray(accepted) - centre).max(axis=1).min() > separation:
            accepted.append(centre)
    centres = np.asarray(accepted, dtype=np.int64).reshape(-1, 2)
    return DiskImage(labels=disk_labels((side, side), centres, radius), centres=centres,
                     radius=radius, zeta=zeta)
