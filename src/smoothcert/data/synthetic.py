"""The synthetic distributions of Pal and Sulam (TMLR 2023): two Gaussians, and disks on a grid.

Inputs are points, not images: each item is a float32 tensor of shape (1, 1, dim) in the
distribution's own units (no [0, 1] range, no normalization), so a noise of size sigma on these
inputs is the sigma of the paper's formulas.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from smoothcert.data.base import ArrayDataset, DatasetInfo, check_split, register_dataset

__all__ = ["GaussianMixture", "Disks"]

_SPLIT_STREAM = {"train": 0, "test": 1}


def _check(name: str, value: Any, ok: bool, valid: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {valid}, got {value!r}")


@register_dataset("gaussian_mixture")
class GaussianMixture(ArrayDataset):
    """Two Gaussians N(+mu, s^2 I) (label 1, probability ``prior``) and N(-mu, s^2 I) (label 0)
    in R^dim, with mu = (``mu``, 0, ..., 0), so ``mu`` is the norm of the mean.

    ``n`` points per split; the train and test splits are independent draws from the stream
    seeded by ``seed``. The Bayes classifier is the half-space x_1 >= s^2 ln((1-prior)/prior) /
    (2 mu), with error Phi(-mu/s) for equal priors (Pal and Sulam 2023, Section 2).
    """

    @classmethod
    def describe(cls, *, dim: int = 2, **options: Any) -> DatasetInfo:
        _check("dim", dim, isinstance(dim, (int, np.integer)) and dim >= 1, "an integer >= 1")
        return DatasetInfo(name="gaussian_mixture", shape=(1, 1, int(dim)), num_classes=2,
                           mean=(0.0,), std=(1.0,), classes=("minus", "plus"))

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *,
                 dim: int = 2, mu: float = 1.0, s: float = 1.0, prior: float = 0.5,
                 n: int = 1000, seed: int = 0) -> None:
        check_split(split)
        self.info = self.describe(dim=dim)
        _check("mu", mu, np.isfinite(mu) and mu >= 0, "a finite number >= 0")
        _check("s", s, np.isfinite(s) and s > 0, "a finite number > 0")
        _check("prior", prior, 0 < prior < 1, "in (0, 1)")
        _check("n", n, isinstance(n, (int, np.integer)) and n >= 1, "an integer >= 1")
        rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split]])
        labels = (rng.random(n) < prior).astype(np.int64)
        points = s * rng.standard_normal((n, dim))
        points[:, 0] += (2 * labels - 1) * mu
        self.split = split
        self._set_arrays(torch.from_numpy(points.astype(np.float32)).reshape(n, 1, 1, dim),
                         torch.from_numpy(labels))


@register_dataset("disks")
class Disks(ArrayDataset):
    """Pal and Sulam's disk distribution: the points (row, col) of a ``side`` x ``side`` grid,
    in pixel units, labelled 1 inside random non-overlapping disks of radius ``radius`` at least
    ``zeta`` apart (``smoothcert.pal_sulam.population.random_disks`` with ``numpy.random.default_rng(seed)``)
    and 0 elsewhere. The marginal is uniform on the grid and labels are deterministic, so both
    splits are the whole grid; ``.disks`` is the ``DiskImage``."""

    @classmethod
    def describe(cls, **options: Any) -> DatasetInfo:
        return DatasetInfo(name="disks", shape=(1, 1, 2), num_classes=2, mean=(0.0,),
                           std=(1.0,), classes=("outside", "inside"))

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *,
                 side: int = 100, radius: int = 10, zeta: int = 0, candidates: int = 10000,
                 seed: int = 0) -> None:
        from smoothcert.pal_sulam.population.disks import random_disks

        check_split(split)
        self.disks = random_disks(np.random.default_rng(seed), side=side, radius=radius,
                                  zeta=zeta, candidates=candidates)
        rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        points = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float32)
        self.info = self.describe()
        self.split = split
        self._set_arrays(torch.from_numpy(points).reshape(-1, 1, 1, 2),
                         torch.from_numpy(self.disks.labels.ravel()))
