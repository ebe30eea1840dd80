"""Exact certification for deterministic smoothing (``Noise.deterministic``), e.g. ``dssn``.

A deterministic noise draws T uniformly from L transformations T_0, ..., T_{L-1}; the smoothed
classifier g(x) = argmax_c #{t : f(T_t(x)) = c} (ties to the lower class index) is then computed
exactly with L forward passes per input: no n0, n or alpha, no failure probability. The radius
comes from the whole count vector through the noise's rule (``radius_from_counts``, for DSSN
``smoothcert.noises.dssn.dssn_radius``), for the noise's threat model (DSSN: perturbed inputs on
the same quantization grid; inputs off the grid are refused with an error naming the value).

A deterministic noise provides, besides the ``Noise`` interface: ``num_transforms`` (L),
``grid_indices(x)`` (checks the inputs and returns the integer form the transformations take),
``transform_grid(a, t, dtype)`` and ``radius_from_counts(counts)`` (l1 radii).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from smoothcert.certify.certificate import Certificate, Prediction
from smoothcert.certify.sampling import check_inputs, eval_mode
from smoothcert.norms import Norm, convert_radius

if TYPE_CHECKING:
    from smoothcert.certify.classifier import SmoothedClassifier

__all__ = ["deterministic_counts", "certify_deterministic", "predict_deterministic"]


def _require_deterministic(smoothed: SmoothedClassifier) -> Any:
    noise = smoothed.noise
    if not getattr(noise, "deterministic", False):
        raise ValueError(f"{noise.name} noise is not deterministic; certify it with "
                         f"n0, n and alpha (Monte Carlo CERTIFY)")
    return noise


def deterministic_counts(smoothed: SmoothedClassifier, xs: torch.Tensor) -> np.ndarray:
    """Votes of the base classifier over all L transformations of each input of ``xs`` (shape
    (N, *x.shape)), int64 of shape (N, num_classes); each row sums to L.

    The N * L transformed inputs are enumerated input by input, t = 0, ..., L-1, and classified
    ``smoothed.batch_size`` at a time (so several inputs share a batch when L is small). The
    base classifier runs in eval mode (each module's mode is restored afterwards).
    """
    noise = _require_deterministic(smoothed)
    xs = check_inputs(xs, noise)
    grid = noise.grid_indices(xs).reshape(xs.shape[0], noise.dim)
    shape, device, dtype = xs.shape[1:], xs.device, xs.dtype
    length = noise.num_transforms
    classes = smoothed.num_classes
    total = xs.shape[0] * length
    counts = torch.zeros(xs.shape[0] * classes, dtype=torch.int64, device=device)
    channels_last = getattr(smoothed, "channels_last", False) and len(shape) == 3
    with eval_mode(smoothed.base_classifier), torch.inference_mode():
        for start in range(0, total, smoothed.batch_size):
            pair = torch.arange(start, min(start + smoothed.batch_size, total), device=device)
            which, t = pair // length, pair % length
            batch = noise.transform_grid(grid[which], t, dtype).view(-1, *shape)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            predictions = smoothed.classify(batch)
            counts += torch.bincount(which * classes + predictions,
                                     minlength=counts.numel())
    return counts.view(xs.shape[0], classes).cpu().numpy()


def certify_deterministic(smoothed: SmoothedClassifier, xs: torch.Tensor,
                          norms: Sequence[Norm | str] = ("l1",), *,
                          convert: bool = False) -> list[Certificate]:
    """Exact certificates for the inputs ``xs`` (shape (N, *x.shape)) under a deterministic
    noise.

    Guarantee (no probability): for each input, g(x) = ``prediction`` and g(x') = prediction for
    every x' of the noise's threat model (DSSN: x' on the same grid) with ||x' - x||_norm <=
    ``radius[norm]``. ``p_lower`` is the exact vote share c_A / L, ``samples`` = L forward
    passes, ``counts`` the votes. It never abstains: ties are broken towards the lower class
    index, which is part of g's definition (a tie gives radius 0). Norms other than l1 need
    ``convert=True`` (the lp inclusion, valid but loose).
    """
    noise = _require_deterministic(smoothed)
    norms = smoothed.check_norms(norms, convert)
    counts = deterministic_counts(smoothed, xs)
    length = noise.num_transforms
    l1 = np.atleast_1d(noise.radius_from_counts(counts))
    radii = {norm: (l1 if norm is Norm.L1 else
                    np.asarray(convert_radius(l1, Norm.L1, norm, noise.dim), dtype=np.float64))
             for norm in norms}
    top = counts.argmax(axis=1)
    return [Certificate(prediction=int(top[i]), p_lower=float(counts[i, top[i]] / length),
                        radius={norm: float(r[i]) for norm, r in radii.items()},
                        samples=length, counts=counts[i])
            for i in range(counts.shape[0])]


def predict_deterministic(smoothed: SmoothedClassifier, xs: torch.Tensor) -> list[Prediction]:
    """The exact smoothed prediction of each input of ``xs``: the plurality vote over the L
    transformations, ties to the lower class index (never ``ABSTAIN``). ``p_value`` is 0.0:
    the vote is computed, not estimated."""
    noise = _require_deterministic(smoothed)
    counts = deterministic_counts(smoothed, xs)
    return [Prediction(prediction=int(row.argmax()), p_value=0.0,
                       samples=noise.num_transforms, counts=row) for row in counts]
