"""[PS23]'s synthetic experiment: Delta_{alpha,beta} - Delta_{0,beta} on random disk images.

For every zeta and image index a disk image is drawn (``random_disks``) from its own stream,
``numpy.random.SeedSequence([seed, zeta, image])``, so a result depends only on its own (seed,
zeta, image), and every beta is evaluated on the same images (the panels of Fig. 4 then differ
only by beta). For each image the exact grid risk Delta_{alpha,beta} (``grid.risk_table``) is
computed for all alphas and betas, and the difference to alpha = 0 is averaged over the images.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from smoothcert.pal_sulam.population.disks import random_disks
from smoothcert.pal_sulam.population.grid import risk_table
from smoothcert.pal_sulam.population.interference import InterferenceGaps, grid_gaps

__all__ = ["SyntheticConfig", "SyntheticResult", "run_synthetic", "write_synthetic_csv",
           "disk_gaps", "MEAN_HEADER", "PER_IMAGE_HEADER"]

MEAN_HEADER = ("beta", "zeta", "alpha", "delta_minus_delta0")
PER_IMAGE_HEADER = ("beta", "zeta", "image", "alpha", "delta", "delta_minus_delta0")


@dataclass(frozen=True)
class SyntheticConfig:
    """The sweep's settings; the defaults are [PS23]'s (Fig. 4)."""

    alphas: tuple[float, ...] = tuple(float(a) for a in range(21))
    betas: tuple[float, ...] = (8.0, 11.0, 14.0)
    zetas: tuple[int, ...] = (0, 1, 2, 3)
    images: int = 10
    side: int = 100
    radius: int = 10
    candidates: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("alphas", "betas"):
            values = tuple(float(v) for v in getattr(self, name))
            if not values or any(not np.isfinite(v) or v < 0 for v in values):
                raise ValueError(f"{name} must be a non-empty list of numbers >= 0, got {values}")
            object.__setattr__(self, name, values)
        zetas = tuple(self.zetas)
        if not zetas or any(isinstance(z, bool) or int(z) != z or z < 0 for z in zetas):
            raise ValueError(f"zetas must be a non-empty list of integers >= 0, got {zetas}")
        object.__setattr__(self, "zetas", tuple(int(z) for z in zetas))
        for name in ("images", "side", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.radius, bool) or int(self.radius) != self.radius or self.radius < 0:
            raise ValueError(f"radius must be an integer >= 0, got {self.radius!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SyntheticResult:
    """``delta[b, z, i, a]`` = Delta_{alphas[a], betas[b]} on image i drawn with zetas[z];
    ``delta0[b, z, i]`` = Delta_{0, betas[b]} on the same image (float64)."""

    config: SyntheticConfig
    delta: np.ndarray
    delta0: np.ndarray
    disks: np.ndarray = field(repr=False)  # number of disks per (zeta, image)

    def differences(self) -> np.ndarray:
        """Delta_{alpha,beta} - Delta_{0,beta} per image, shape (beta, zeta, image, alpha)."""
        return self.delta - self.delta0[..., None]

    def mean_differences(self) -> np.ndarray:
        """The mean over images, shape (beta, zeta, alpha): the curves of Fig. 4."""
        return self.differences().mean(axis=2)


def image_rng(seed: int, zeta: int, image: int) -> np.random.Generator:
    """The random stream of one disk image."""
    return np.random.default_rng(np.random.SeedSequence([seed, zeta, image]))


def run_synthetic(config: SyntheticConfig) -> SyntheticResult:
    """Run the sweep (exact grid smoothing; no Monte Carlo apart from drawing the images)."""
    nb, nz, ni, na = len(config.betas), len(config.zetas), config.images, len(config.alphas)
    delta = np.empty((nb, nz, ni, na), dtype=np.float64)
    delta0 = np.empty((nb, nz, ni), dtype=np.float64)
    disks = np.empty((nz, ni), dtype=np.int64)
    alphas = (0.0, *config.alphas)
    for z, zeta in enumerate(config.zetas):
        for i in range(ni):
            image = random_disks(image_rng(config.seed, zeta, i), side=config.side,
                                 radius=config.radius, zeta=zeta, candidates=config.candidates)
            disks[z, i] = image.centres.shape[0]
            table = risk_table(image.labels, alphas, config.betas, num_classes=2)
            delta0[:, z, i] = table[0]
            delta[:, z, i, :] = table[1:].T
    return SyntheticResult(config=config, delta=delta, delta0=delta0, disks=disks)


def disk_gaps(config: SyntheticConfig) -> dict[int, InterferenceGaps]:
    """The interference diagnostic (``grid_gaps``) of the disks (class 1) of the sweep's images,
    pooled per zeta (the images are drawn again from their seeds)."""
    pooled = {}
    for zeta in config.zetas:
        parts = [grid_gaps(random_disks(image_rng(config.seed, zeta, i), side=config.side,
                                        radius=config.radius, zeta=zeta,
                                        candidates=config.candidates).labels, classes=[1])
                 for i in range(config.images)]
        pooled[zeta] = InterferenceGaps(np.concatenate([p.gaps for p in parts]),
                                        np.concatenate([p.classes for p in parts]))
    return pooled


def _number(value: float) -> str:
    return repr(float(value)) if float(value) != int(value) else str(int(value))


def write_synthetic_csv(result: SyntheticResult, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``synthetic.csv`` (MEAN_HEADER, means over images) and ``synthetic_per_image.csv``
    (PER_IMAGE_HEADER) in ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    mean = result.mean_differences()
    diff = result.differences()
    mean_path, image_path = folder / "synthetic.csv", folder / "synthetic_per_image.csv"
    with open(mean_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(MEAN_HEADER)
        for b, beta in enumerate(cfg.betas):
            for z, zeta in enumerate(cfg.zetas):
                for a, alpha in enumerate(cfg.alphas):
                    writer.writerow([_number(beta), zeta, _number(alpha), repr(float(mean[b, z, a]))])
    with open(image_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PER_IMAGE_HEADER)
        for b, beta in enumerate(cfg.betas):
            for z, zeta in enumerate(cfg.zetas):
                for i in range(cfg.images):
                    for a, alpha in enumerate(cfg.alphas):
                        writer.writerow([_number(beta), zeta, i, _number(alpha),
                                         repr(float(result.delta[b, z, i, a])),
                                         repr(float(diff[b, z, i, a]))])
    return mean_path, image_path
