"""Sampling, reproducibility and size checks of the noise contract.

Additive families are checked through ``sample``/``sample_like``; the others (``noise.additive``
False) through ``perturb``, on an input on the family's grid when it has a ``quantization``.

Size of a non-additive family: measured on the displacement T(x) - x, at x = 1/2 (the grid
point below it for a ``quantization`` q) and at a scale of at most 1/8, where no cell of a
transformation of [0, 1]-valued inputs reaches the edges: there sigma is the RMS displacement
(clipping to [0, 1] makes it smaller near the edges, by design). With a ``quantization`` the
probe's scale is a whole number L of half grid steps, the displacement is discrete with mean
square sigma^2 (1 - 1/L^2), and the test allows that bias.

The size test: with Y_i = ||delta_i||_2^2 / (d sigma^2) for n independent draws, E[Y] = 1 by the
definition of sigma. The check accepts when |mean(Y) - 1| <= z * s / sqrt(n) + 1e-9 with s the
sample standard deviation of Y and n = ``default_draws(d)`` unless given (a self-normalized test:
it needs no knowledge of the family's fourth moment). With the default z = 6 a correct family
fails with probability far below 1e-6 under the normal approximation; where Y has no variance
(e.g. Pareto with a <= 4) the self-normalized statistic still has a limit law, with heavier tails
than the normal, so the rate is larger but still small. The test is deterministic for a fixed
seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from smoothcert.noises.base import Noise
from smoothcert.noises.checks._common import (
    NoiseContractError,
    _generator,
    _label,
    _on_grid,
    _require,
    default_draws,
)

__all__ = ["check_sampling", "check_reproducibility", "check_sigma"]


def check_sampling(noise: Noise, device: torch.device | str = "cpu") -> None:
    """sample_like (additive families) or perturb (the others) keeps shape, dtype and device;
    wrong inputs are refused."""
    if not noise.additive:
        _check_perturb(noise, torch.device(device))
        return
    device = torch.device(device)
    d = noise.dim
    x = torch.full((3, d), 0.25, dtype=torch.float64, device=device)
    _require(torch.equal(noise.perturb(x, _generator(0, device)),
                         x + noise.sample_like(x, generator=_generator(0, device))),
             f"{_label(noise)}: perturb(x) is not x + sample_like(x) for the same generator")
    for dtype in (torch.float32, torch.float64):
        for shape in ((3, d), (2, 1, d), (d,), (1, d)):
            x = torch.full(shape, 0.25, dtype=dtype, device=device)
            delta = noise.sample_like(x, generator=_generator(0, device))
            _require(isinstance(delta, torch.Tensor),
                     f"{_label(noise)}.sample_like returned {type(delta).__name__}")
            _require(delta.shape == x.shape and delta.dtype == x.dtype
                     and delta.device == x.device,
                     f"{_label(noise)}.sample_like(x of shape {tuple(shape)}, {dtype}, {device})"
                     f" returned shape {tuple(delta.shape)}, {delta.dtype}, {delta.device}")
            _require(bool(torch.isfinite(delta).all()),
                     f"{_label(noise)}.sample_like returned non-finite values ({dtype})")
            _require(bool((x == 0.25).all()), f"{_label(noise)}.sample_like modified x")
        draws = noise.sample(4, generator=_generator(0, device), device=device, dtype=dtype)
        _require(draws.shape == (4, d) and draws.dtype == dtype and draws.device == device,
                 f"{_label(noise)}.sample(4) returned shape {tuple(draws.shape)}, "
                 f"{draws.dtype}, {draws.device}")
        # independent rows: two draws in one batch are not copies of each other
        _require(not torch.equal(draws[0], draws[1]),
                 f"{_label(noise)}.sample(4) returned identical rows")
    # at d = 1 a 1-D tensor is a batch, so (d + 1,) is valid there
    bad_shapes = [(2, d + 1)] + ([(d + 1,), (3, d - 1)] if d > 1 else [(2, 2)])
    for shape in bad_shapes:
        x = torch.zeros(shape, device=device)
        try:
            noise.sample_like(x)
        except ValueError:
            continue
        raise NoiseContractError(
            f"{_label(noise)}.sample_like accepted x of shape {shape} without a ValueError")
    for bad, kind in ((torch.zeros((2, d), dtype=torch.int64, device=device), "an integer tensor"),
                      (np.zeros((2, d), dtype=np.float32), "a numpy array")):
        try:
            noise.sample_like(bad)
        except TypeError:
            continue
        raise NoiseContractError(f"{_label(noise)}.sample_like accepted {kind}")


def _check_perturb(noise: Noise, device: torch.device) -> None:
    d = noise.dim
    value = _on_grid(noise, 0.25)
    for dtype in (torch.float32, torch.float64):
        for shape in ((3, d), (2, 1, d), (d,), (1, d)):
            x = torch.full(shape, value, dtype=dtype, device=device)
            out = noise.perturb(x, _generator(0, device))
            _require(isinstance(out, torch.Tensor) and out.shape == x.shape
                     and out.dtype == x.dtype and out.device == x.device,
                     f"{_label(noise)}.perturb(x of shape {tuple(shape)}, {dtype}, {device}) "
                     f"returned {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
            _require(bool(torch.isfinite(out).all()),
                     f"{_label(noise)}.perturb returned non-finite values ({dtype})")
            _require(bool((x == value).all()), f"{_label(noise)}.perturb modified x")
        rows = noise.perturb(torch.full((8, d), value, dtype=dtype, device=device),
                             _generator(0, device))
        _require(not all(torch.equal(rows[0], row) for row in rows[1:]),
                 f"{_label(noise)}.perturb gave 8 identical rows for 8 copies of x")
    try:
        noise.sample_like(torch.zeros((2, d), device=device))
    except TypeError:
        pass
    else:
        raise NoiseContractError(f"{_label(noise)} is not additive but sample_like drew a delta")
    bad_shapes = [(2, d + 1)] + ([(d + 1,), (3, d - 1)] if d > 1 else [(2, 2)])
    for shape in bad_shapes:
        try:
            noise.perturb(torch.zeros(shape, device=device))
        except ValueError:
            continue
        raise NoiseContractError(
            f"{_label(noise)}.perturb accepted x of shape {shape} without a ValueError")
    for bad, kind in ((torch.zeros((2, d), dtype=torch.int64, device=device), "an integer tensor"),
                      (np.zeros((2, d), dtype=np.float32), "a numpy array")):
        try:
            noise.perturb(bad)
        except TypeError:
            continue
        raise NoiseContractError(f"{_label(noise)}.perturb accepted {kind}")


def check_reproducibility(noise: Noise, device: torch.device | str = "cpu") -> None:
    """Same generator seed: the same draws; different seed: different draws."""
    device = torch.device(device)
    x = torch.full((8, noise.dim), _on_grid(noise, 0.25), device=device)
    draw = noise.sample_like if noise.additive else noise.perturb
    first = draw(x, generator=_generator(1234, device))
    again = draw(x, generator=_generator(1234, device))
    other = draw(x, generator=_generator(4321, device))
    _require(torch.equal(first, again),
             f"{_label(noise)}: two draws with the same generator seed differ")
    _require(not torch.equal(first, other),
             f"{_label(noise)}: draws with different generator seeds are identical")


def check_sigma(noise: Noise, *, draws: int | None = None, seed: int = 0, z: float = 6.0,
                device: torch.device | str = "cpu") -> float:
    """Empirical E||delta||^2 / d matches sigma^2 (see the module docstring); returns mean(Y)."""
    n = default_draws(noise.dim) if draws is None else int(draws)
    device = torch.device(device)
    gen = _generator(seed, device)
    probe, x0, bias = (noise, 0.0, 0.0) if noise.additive else _displacement_probe(noise)
    y = np.empty(n, dtype=np.float64)
    chunk = max(1, (1 << 20) // noise.dim)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if noise.additive:
            delta = noise.sample(m, generator=gen, device=device, dtype=torch.float64)
        else:
            x = torch.full((m, noise.dim), x0, dtype=torch.float64, device=device)
            delta = probe.perturb(x, gen) - x
        sq = torch.linalg.vector_norm(delta, dim=1).pow(2).cpu().numpy()
        y[start:start + m] = sq / (noise.dim * probe.sigma ** 2)
    mean = float(y.mean())
    se = float(y.std(ddof=1)) / math.sqrt(n)
    tol = z * se + 1e-9 + bias
    what = "E||delta||^2" if noise.additive else f"E||T(x) - x||^2 at x = {x0:g}"
    _require(math.isfinite(mean) and abs(mean - 1.0) <= tol,
             f"{_label(noise)}: empirical {what}/(d sigma^2) = {mean:.6f} from {n} draws"
             f"{'' if probe is noise else f' at scale {probe.scale:g}'}, expected 1 within "
             f"{tol:.2e} ({z} standard errors{' + discretization' if bias else ''})")
    return mean


def _displacement_probe(noise: Noise) -> tuple[Noise, float, float]:
    """(the family at a scale where no cell reaches the edges, the interior x, the allowed
    bias of the mean square): see the module docstring."""
    scale = min(noise.scale, 0.125)
    q = getattr(noise, "quantization", None)
    bias = 0.0
    if q is not None:
        steps = max(2, math.floor(2 * scale * q))
        scale = steps / (2 * q)
        bias = 1.0 / steps ** 2
    probe = type(noise).create(dim=noise.dim, scale=scale, **noise.shape_params)
    return probe, _on_grid(noise, 0.5), bias

