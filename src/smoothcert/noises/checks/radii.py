"""Radius checks of the noise contract: zero at p_lower <= 1/2, positive and non-decreasing
above, never NaN, linear in the scale (merely non-decreasing in it for deterministic families),
the same kind back for a float, ndarray or tensor ``p_lower``, and the lp conversion for norms
the family does not certify directly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from smoothcert.noises.base import Noise
from smoothcert.noises.checks._common import NoiseContractError, _label, _require
from smoothcert.norms import Norm, convert_radius

__all__ = ["check_radius", "check_radius_kinds", "check_conversion"]


#: p_lower values on both sides of 1/2 up to 1, sorted
_P_GRID = np.concatenate([
    [0.0, 0.25, np.nextafter(0.5, 0.0), 0.5, 0.5 + 1e-12, 0.5 + 1e-9, 0.5 + 1e-6],
    np.linspace(0.501, 0.999, 84),
    1.0 - np.logspace(-4, -9, 11),
    [1.0],
])


def _direct_and_converted(noise: Noise) -> list[tuple[Norm, bool]]:
    return [(norm, norm not in noise.direct_norms) for norm in Norm]


def check_radius(noise: Noise, p_grid: Sequence[float] | np.ndarray | None = None) -> None:
    """Radii: 0 at p <= 1/2, positive above, non-decreasing, no NaN, linear in the scale."""
    p = np.asarray(_P_GRID if p_grid is None else p_grid, dtype=np.float64)
    if np.any(np.diff(p) < 0):
        raise ValueError("p_grid must be sorted")
    doubled = type(noise).create(dim=noise.dim, scale=2.0 * noise.scale, **noise.shape_params)
    _require(math.isclose(doubled.sigma, 2.0 * noise.sigma, rel_tol=1e-12),
             f"{_label(noise)}: doubling the scale gives sigma {doubled.sigma!r}")
    # Values beyond a radius table (p_lower > 1 - 1e-8) may be computed one at a time and slowly:
    # they are checked once per direct norm; the scale and the conversion are checked below that.
    short = p[(p <= 1.0 - 1e-4) | (p == 1.0)]
    for norm, convert in _direct_and_converted(noise):
        if not convert:
            _check_radius_norm(noise, None, p, norm, convert)
        _check_radius_norm(noise, doubled, short, norm, convert)


def _check_radius_norm(noise: Noise, doubled: Noise | None, p: np.ndarray, norm: Norm,
                       convert: bool) -> None:
    what = f"{_label(noise)} {norm.value}{' (converted)' if convert else ''}"
    r = noise.certified_radius(p, norm, convert=convert)
    _require(isinstance(r, np.ndarray) and r.dtype == np.float64 and r.shape == p.shape,
             f"{what}: radius of a float64 array is not a float64 array of its shape")
    _require(not np.isnan(r).any(),
             lambda: f"{what}: NaN radius at p_lower={p[np.isnan(r)][0]!r}")
    low = p <= 0.5
    _require(np.all(r[low] == 0.0), f"{what}: nonzero radius at p_lower <= 1/2")
    positive = p >= 0.501
    _require(np.all(r[positive] > 0.0),
             lambda: f"{what}: radius 0 at p_lower={p[positive & (r <= 0)][0]!r} > 1/2")
    _require(np.all(np.isfinite(r[p < 1.0])), f"{what}: infinite radius at p_lower < 1")
    steps = np.diff(r)
    _require(np.all(steps >= 0.0),
             lambda: f"{what}: radius decreases between p_lower={p[:-1][steps < 0][0]!r} "
             f"and the next grid value")
    if doubled is None:
        return
    r2 = doubled.certified_radius(p, norm, convert=convert)
    if noise.deterministic:
        _require(np.all(r2 >= r), lambda: f"{what}: a doubled scale certifies less: "
                 f"{r2[r2 < r][:5]} for {r[r2 < r][:5]}")
        return
    finite = np.isfinite(r)
    _require(np.allclose(r2[finite], 2.0 * r[finite], rtol=1e-12, atol=0.0)
             and np.array_equal(np.isinf(r2), np.isinf(r)),
             lambda: f"{what}: radius is not linear in the scale: 2x scale gives "
             f"{r2[finite][:5]} for {r[finite][:5]}")


def check_radius_kinds(noise: Noise) -> None:
    """A float, an ndarray (any shape, any float dtype) or a tensor gives the same kind back."""
    norm = noise.direct_norms[0]
    values = np.array([[0.3, 0.6, 0.75], [0.9, 0.99, 0.999]])
    ref = noise.certified_radius(values, norm)
    _require(isinstance(ref, np.ndarray) and ref.shape == values.shape
             and ref.dtype == np.float64,
             f"{_label(noise)}: a (2, 3) float64 array gave {type(ref).__name__} "
             f"{getattr(ref, 'shape', None)} {getattr(ref, 'dtype', None)}")
    single = noise.certified_radius(0.9, norm)
    _require(type(single) is float and single == ref[1, 0],
             f"{_label(noise)}: a float p_lower gave {single!r} ({type(single).__name__}), "
             f"expected the float {ref[1, 0]!r}")
    as32 = noise.certified_radius(values.astype(np.float32), norm)
    _require(isinstance(as32, np.ndarray) and as32.dtype == np.float64,
             f"{_label(noise)}: a float32 array gave {getattr(as32, 'dtype', type(as32))}")
    tensor = noise.certified_radius(torch.tensor(values), norm)
    _require(isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
             and tuple(tensor.shape) == values.shape
             and np.array_equal(tensor.numpy(), ref),
             f"{_label(noise)}: a float64 tensor did not give the same float64 tensor of radii")
    numpy_scalar = noise.certified_radius(np.float64(0.9), norm)
    _require(float(numpy_scalar) == ref[1, 0],
             f"{_label(noise)}: numpy scalar p_lower gave {numpy_scalar!r}")


def check_conversion(noise: Noise) -> None:
    """Other norms need convert=True, and then follow the lp inclusion rule."""
    p = np.array([0.4, 0.6, 0.9, 0.999])
    for norm in Norm:
        if norm in noise.direct_norms:
            continue
        try:
            noise.certified_radius(p, norm)
        except ValueError:
            pass
        else:
            raise NoiseContractError(
                f"{_label(noise)} certified {norm.value} without convert=True")
        got = noise.certified_radius(p, norm, convert=True)
        expected = np.max([convert_radius(noise.certified_radius(p, a), a, norm, noise.dim)
                           for a in noise.direct_norms], axis=0)
        _require(np.allclose(got, expected, rtol=1e-12, atol=0.0),
                 f"{_label(noise)} {norm.value} (converted): {got} != lp rule {expected}")

