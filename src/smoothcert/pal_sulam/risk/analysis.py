"""Reading the risk grid as arrays, and alpha* (the training noise of least risk) per beta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import savgol_filter

from smoothcert.stats import clopper_pearson_interval

if TYPE_CHECKING:
    from smoothcert.pal_sulam.risk.evaluate import RiskEstimate

__all__ = ["RiskTable", "savgol_window", "smoothed_curve", "BestAlpha", "best_alphas"]


@dataclass(frozen=True)
class RiskTable:
    """The grid as arrays: ``n_errors`` and ``n`` (int64, -1 where a cell is missing), indexed by
    the sorted ``alphas`` and ``betas``."""

    alphas: np.ndarray
    betas: np.ndarray
    n_errors: np.ndarray
    n: np.ndarray

    @classmethod
    def from_cells(cls, cells: Mapping[tuple[float, float], RiskEstimate]) -> RiskTable:
        alphas = np.array(sorted({a for a, _ in cells}), dtype=np.float64)
        betas = np.array(sorted({b for _, b in cells}), dtype=np.float64)
        n_errors = np.full((alphas.size, betas.size), -1, dtype=np.int64)
        n = np.full_like(n_errors, -1)
        for (a, b), est in cells.items():
            i, j = np.searchsorted(alphas, a), np.searchsorted(betas, b)
            n_errors[i, j], n[i, j] = est.n_errors, est.n
        return cls(alphas=alphas, betas=betas, n_errors=n_errors, n=n)

    @property
    def error(self) -> np.ndarray:
        """Error rates (float64, nan where missing)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.n_errors / np.maximum(self.n, 1), np.nan)

    def interval(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Clopper-Pearson bounds per cell (nan where missing)."""
        present = self.n > 0
        low = np.full(self.n.shape, np.nan)
        high = np.full(self.n.shape, np.nan)
        if present.any():
            lo, hi = clopper_pearson_interval(self.n_errors[present], self.n[present],
                                              1.0 - confidence)
            low[present], high[present] = lo, hi
        return low, high


def savgol_window(length: int, window: int = 15, order: int = 3) -> int | None:
    """The Savitzky-Golay window for a curve of ``length`` points: ``window`` if it fits, else the
    largest odd number <= length that exceeds ``order``; None when the curve is too short to
    smooth (length <= order + 1)."""
    w = min(int(window), int(length))
    if w % 2 == 0:
        w -= 1
    return w if w > order else None


@dataclass(frozen=True)
class BestAlpha:
    """alpha* for one beta: the argmin of the raw error curve and of its Savitzky-Golay
    smoothing (``smoothed_alpha`` None when the curve was too short to smooth)."""

    beta: float
    raw_alpha: float
    raw_error: float
    smoothed_alpha: float | None
    smoothed_error: float | None


def smoothed_curve(alphas: np.ndarray, errors: np.ndarray, window: int = 15, order: int = 3
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The Savitzky-Golay smoothing (``scipy.signal.savgol_filter``) of the error curve of the
    noise-trained models (alpha > 0, in increasing order, treated as equally spaced): (alphas,
    smoothed errors), or None when fewer points than ``savgol_window`` needs.

    The clean model (alpha = 0) is left out: it is not a member of the noise-trained family and
    its risk can jump by an order of magnitude (at beta = 0.7 on MNIST: 49% against 1%), which
    would make the filter ring over the first alphas and fake a minimum there.
    """
    trained = alphas > 0
    w = savgol_window(int(trained.sum()), window, order)
    if w is None:
        return None
    return alphas[trained], savgol_filter(errors[trained], w, order)


def best_alphas(table: RiskTable, window: int = 15, order: int = 3) -> list[BestAlpha]:
    """alpha* per beta: the raw argmin over all alphas, and the argmin over the clean model's raw
    error (if alpha = 0 was evaluated) and the smoothed curve of the noise-trained models
    (``smoothed_curve``). Ties go to the smallest alpha."""
    out = []
    for j, beta in enumerate(table.betas):
        present = table.n[:, j] > 0
        if not present.any():
            continue
        alphas, errors = table.alphas[present], table.error[present, j]
        i = int(np.argmin(errors))
        curve = smoothed_curve(alphas, errors, window, order)
        if curve is None:
            out.append(BestAlpha(float(beta), float(alphas[i]), float(errors[i]), None, None))
            continue
        candidates = np.concatenate([alphas[alphas == 0], curve[0]])
        values = np.concatenate([errors[alphas == 0], curve[1]])
        s = int(np.argmin(values))
        out.append(BestAlpha(float(beta), float(alphas[i]), float(errors[i]),
                             float(candidates[s]), float(values[s])))
    return out
