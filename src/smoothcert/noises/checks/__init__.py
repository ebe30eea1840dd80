"""The contract every registered noise family must satisfy.

``check_noise(noise)`` runs all checks on one instance and raises ``NoiseContractError`` (an
``AssertionError``) naming the first violation. The test suite runs it over every registered family
in several dimensions, and the author of a new family can run it on their own instances::

    from smoothcert.noises.checks import check_noise
    check_noise(get_noise("my_family", dim=784, sigma=0.5))

What is checked:

- sampling: ``sample_like`` returns the shape, dtype (float32 and float64) and device of ``x``
  for a batch and for a single example, finite values, and leaves ``x`` untouched; a tensor of
  the wrong size, a non-floating tensor or a non-tensor is refused;
- reproducibility: the same generator seed gives the same draws, a different seed different ones;
- size: the empirical per-coordinate RMS of the draws matches ``sigma`` (a z-test, below);
- radii: 0 for p_lower <= 1/2, positive above, non-decreasing in p_lower, never NaN, linear in
  the scale; a float, ndarray or tensor ``p_lower`` gives the same kind back (float64) with the
  same values; a norm the family does not certify directly is refused without ``convert=True``
  and, with it, equals the lp conversion of the direct radii.

Families that are not additive (``noise.additive`` False, e.g. splitting noise) have no delta
to sample: ``sample``/``sample_like`` must refuse with a TypeError, and the sampling and
reproducibility checks apply to ``perturb`` instead (an input on the family's grid when it has a
``quantization``). Their size is measured on the displacement T(x) - x, in the interior of
[0, 1] and at a small scale (``smoothcert.noises.checks.sampling`` says where and why).
Deterministic families (``noise.deterministic``) must also draw ``perturb`` from their L
enumerated transformations (``check_deterministic``), and their radius need only grow with the
scale, not in proportion (L = floor(2 scale q) is rounded).

The size test is a self-normalized z-test on Y_i = ||delta_i||_2^2 / (d sigma^2), whose mean is 1
by the definition of sigma; ``smoothcert.noises.checks.sampling`` states it and its false-alarm
rate. It is deterministic for a fixed seed.

The checks live in submodules by subject (``sampling``, ``radii``, ``deterministic``); every
public name is re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable

import torch

from smoothcert.noises.base import Noise, noise_class
from smoothcert.noises.checks._common import (
    NoiseContractError,
    _label,
    _require,
    default_draws,
)
from smoothcert.noises.checks.deterministic import check_deterministic
from smoothcert.noises.checks.radii import check_conversion, check_radius, check_radius_kinds
from smoothcert.noises.checks.sampling import check_reproducibility, check_sampling, check_sigma
from smoothcert.norms import Norm

__all__ = [
    "NoiseContractError",
    "check_noise",
    "check_registration",
    "check_sampling",
    "check_reproducibility",
    "check_sigma",
    "check_radius",
    "check_radius_kinds",
    "check_conversion",
    "check_deterministic",
    "default_draws",
]


# ------------------------------------------------------------------------------ registration
def check_registration(noise: Noise) -> None:
    """The family is registered under its name, describes itself as JSON and round-trips."""
    _require(bool(noise.name), f"{type(noise).__name__} has no registered name")
    _require(noise_class(noise.name) is type(noise),
             f"{noise.name!r} is registered to a different class than {type(noise).__name__}")
    _require(len(noise.direct_norms) > 0, f"{_label(noise)} certifies no norm directly")
    for norm in Norm:
        _require(noise.certifies(norm) == (norm in noise.direct_norms),
                 f"{_label(noise)}.certifies({norm.value}) disagrees with direct_norms")
    unit = noise.unit_sigma
    _require(math.isfinite(unit) and unit > 0,
             f"{_label(noise)} has unit sigma {unit!r}; it must be finite and > 0")
    _require(math.isclose(noise.scale * unit, noise.sigma, rel_tol=1e-12),
             f"{_label(noise)}: scale * unit_sigma = {noise.scale * unit!r} != sigma")
    json.dumps(noise.describe())
    again = type(noise).create(dim=noise.dim, scale=noise.scale, **noise.shape_params)
    _require(math.isclose(again.sigma, noise.sigma, rel_tol=1e-12),
             f"{_label(noise)}: create(scale={noise.scale!r}) gives sigma {again.sigma!r}")


# -------------------------------------------------------------------------------------- all
def check_noise(noise: Noise, *, draws: int | None = None, seed: int = 0,
                devices: Iterable[torch.device | str] = ("cpu",)) -> None:
    """Run the whole contract on ``noise``; raise NoiseContractError at the first violation.

    ``devices`` lists where sampling is checked (the library never chooses one itself).
    """
    if not isinstance(noise, Noise):
        raise TypeError(f"check_noise needs a Noise instance, got {type(noise).__name__}")
    if not dataclasses.is_dataclass(noise):
        raise NoiseContractError(f"{type(noise).__name__} is not a dataclass")
    check_registration(noise)
    for device in devices:
        check_sampling(noise, device)
        check_reproducibility(noise, device)
        check_deterministic(noise, device)
    check_sigma(noise, draws=draws, seed=seed)
    check_radius(noise)
    check_radius_kinds(noise)
    check_conversion(noise)
