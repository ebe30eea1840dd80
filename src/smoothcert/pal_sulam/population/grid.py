"""Exact Gaussian smoothing of labelled grids: the population-level objects of [PS23].

A *labelled grid* is an integer array of class labels (0 = background, 1, 2, ...) over a finite
window of the lattice Z^d, with a uniform marginal over the window and deterministic labels, so
the regression function is eta = 1{class 1} (binary) or the one-hot labels (several classes).

Smoothing with N(0, sigma^2 I) (sigma in pixels) is computed exactly on the lattice by
``scipy.ndimage.gaussian_filter`` with the sampled kernel truncated at ``TRUNCATE`` = 4 sigma and
everything outside the window counted as background (``mode='constant', cval=0`` on the indicator
of every non-background class). With these conventions, for deterministic labels h,

- ``smooth_labels(h, sigma)`` is phi(h * p_sigma), the classifier learned with noise sigma, which
  is also Smooth_sigma(h), the smoothed classifier of the base classifier h;
- ``smoothed_classifier(h, alpha, beta)`` is F_{alpha,beta} = Smooth_beta(phi(h * p_alpha));
- ``risk(h, alpha, beta)`` is Delta_{alpha,beta} = mean |phi(h) - F_{alpha,beta}| over the window.

sigma = 0 is the identity (no noise). Binary probabilities are thresholded with ties to class 1
(phi(p) = 1{p >= 1/2}); with several classes the winner is the argmax with ties to the *higher*
class index, which is the same rule for two classes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = [
    "TRUNCATE", "gaussian_smooth", "threshold", "class_probabilities", "classify",
    "smooth_labels", "smoothed_classifier", "risk", "risk_table",
]

#: Kernel half-width in units of sigma (scipy's default, the setting of [PS23]).
TRUNCATE = 4.0


def _check_sigma(sigma: float, name: str = "sigma") -> float:
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {sigma!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (in pixels), got {sigma!r}")
    return value


def _check_labels(labels: np.ndarray, num_classes: int | None) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"labels must be an integer (or boolean) array of class indices, got dtype "
            f"{labels.dtype}; threshold a probability field with threshold() first"
        )
    if labels.size == 0:
        raise ValueError("labels must not be empty")
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"class labels must be >= 0, got {low}")
    if num_classes is None:
        num_classes = max(2, high + 1)
    elif isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    elif high >= num_classes:
        raise ValueError(f"label {high} is out of range for num_classes={num_classes}")
    return labels.astype(np.int64, copy=False), int(num_classes)


def gaussian_smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """The convolution field * p_sigma on the grid (float64), zero outside the window.

    ``field`` is any real array (an indicator, or a soft eta in [0, 1]); sigma is in pixels and
    sigma = 0 returns a copy.
    """
    sigma = _check_sigma(sigma)
    values = np.asarray(field, dtype=np.float64)
    if sigma == 0:
        return values.copy()
    return gaussian_filter(values, sigma=sigma, mode="constant", cval=0.0, truncate=TRUNCATE)


def threshold(p: np.ndarray) -> np.ndarray:
    """phi(p) = 1{p >= 1/2} as int64 labels: the binary plug-in classifier of a probability."""
    return (np.asarray(p, dtype=np.float64) >= 0.5).astype(np.int64)


def class_probabilities(labels: np.ndarray, sigma: float, num_classes: int | None = None
                        ) -> np.ndarray:
    """P[label(x + delta) = c] for delta ~ N(0, sigma^2 I), shape (num_classes, *labels.shape).

    The window's outside is background (class 0), so class 0 receives the mass that leaves it.
    """
    labels, num_classes = _check_labels(labels, num_classes)
    probs = np.empty((num_classes, *labels.shape), dtype=np.float64)
    for c in range(1, num_classes):
        probs[c] = gaussian_smooth(labels == c, sigma)
    probs[0] = 1.0 - probs[1:].sum(axis=0)
    return probs


def classify(probabilities: np.ndarray) -> np.ndarray:
    """The argmax over axis 0 with ties to the higher class (for two classes: p_1 >= 1/2 -> 1)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim < 1 or probs.shape[0] < 2:
        raise ValueError(f"probabilities need a class axis of length >= 2, got {probs.shape}")
    # argmax returns the first maximum; reversing the class axis makes that the highest class
    return (probs.shape[0] - 1 - np.argmax(probs[::-1], axis=0)).astype(np.int64)


def smooth_labels(labels: np.ndarray, sigma: float, num_classes: int | None = None
                  ) -> np.ndarray:
    """phi(h * p_sigma) for deterministic labels h: the Bayes classifier of the sigma-noised
    distribution, equal to Smooth_sigma(h), the smoothed classifier of h."""
    labels, num_classes = _check_labels(labels, num_classes)
    if _check_sigma(sigma) == 0:
        return labels.copy()
    return classify(class_probabilities(labels, sigma, num_classes))


def smoothed_classifier(labels: np.ndarray, alpha: float, beta: float,
                        num_classes: int | None = None) -> np.ndarray:
    """F_{alpha,beta} = Smooth_beta(phi(h * p_alpha)): train with noise alpha, smooth with beta."""
    _check_sigma(alpha, "alpha")
    _check_sigma(beta, "beta")
    labels, num_classes = _check_labels(labels, num_classes)
    trained = smooth_labels(labels, alpha, num_classes)
    return smooth_labels(trained, beta, num_classes)


def risk(labels: np.ndarray, alpha: float, beta: float, num_classes: int | None = None) -> float:
    """Delta_{alpha,beta}: the fraction of the window where F_{alpha,beta} differs from h."""
    labels, num_classes = _check_labels(labels, num_classes)
    return float(np.mean(smoothed_classifier(labels, alpha, beta, num_classes) != labels))


def risk_table(labels: np.ndarray, alphas: Iterable[float], betas: Iterable[float],
               num_classes: int | None = None) -> np.ndarray:
    """Delta_{alpha,beta} for every pair, shape (len(alphas), len(betas)) (float64).

    Each alpha-trained classifier is computed once and reused for every beta.
    """
    labels, num_classes = _check_labels(labels, num_classes)
    alphas = [_check_sigma(a, "alpha") for a in alphas]
    betas = [_check_sigma(b, "beta") for b in betas]
    out = np.empty((len(alphas), len(betas)), dtype=np.float64)
    for i, alpha in enumerate(alphas):
        trained = smooth_labels(labels, alpha, num_classes)
        for j, beta in enumerate(betas):
            out[i, j] = np.mean(smooth_labels(trained, beta, num_classes) != labels)
    return out
