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
``quantization``). Their size is measured on the displacement T(x) - x, at x = 1/2 (the grid
point below it for a ``quantization`` q) and at a scale of at most 1/8, where no cell of a
transformation of [0, 1]-valued inputs reaches the edges: there sigma is the RMS displacement
(clipping to [0, 1] makes it smaller near the edges, by design). With a ``quantization`` the
probe's scale is a whole number L of half grid steps, the displacement is discrete with mean
square sigma^2 (1 - 1/L^2), and the test allows that bias. Deterministic families
(``noise.deterministic``) must also draw ``perturb`` from their L enumerated transformations
(``check_deterministic``), and their radius need only grow with the scale, not in proportion
(L = floor(2 scale q) is rounded).

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

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from smoothcert.noises.base import Noise, noise_class
from smoothcert.norms import Norm, convert_radius

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


class NoiseContractError(AssertionError):
    """A noise family violates the contract; the message says which part and by how much."""


def _require(condition: bool, message: str | Callable[[], str]) -> None:
    # Not ``assert``: the checks must also run under ``python -O``. A callable message is only
    # built on failure (it may index values that exist only then).
    if not condition:
        raise NoiseContractError(message() if callable(message) else message)


def _label(noise: Noise) -> str:
    shape = ", ".join(f"{k}={v!r}" for k, v in noise.shape_params.items())
    return f"{noise.name}(dim={noise.dim}, sigma={noise.sigma!r}{', ' + shape if shape else ''})"


def default_draws(dim: int) -> int:
    """Draws for the size test: about 2^20 coordinates in all, between 512 and 2^16 draws."""
    return int(min(1 << 16, max(512, (1 << 20) // dim)))


def _generator(seed: int, device: torch.device) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


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


def _on_grid(noise: Noise, value: float) -> float:
    """``value`` moved down onto the family's grid {0, 1/q, ..., 1} if it has a quantization."""
    q = getattr(noise, "quantization", None)
    return value if q is None else math.floor(value * q) / q


# ---------------------------------------------------------------------------------- sampling
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


# ------------------------------------------------------------------------------------- radii
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


# ----------------------------------------------------------------------------- deterministic
def check_deterministic(noise: Noise, device: torch.device | str = "cpu") -> None:
    """A deterministic family enumerates L >= 1 transformations (``num_transforms``,
    ``grid_indices``, ``transform_grid``), ``perturb`` draws each of them and nothing else, and
    ``radius_from_counts`` gives one float64 radius >= 0 per count vector."""
    if not noise.deterministic:
        return
    device = torch.device(device)
    length = noise.num_transforms
    _require(isinstance(length, int) and length >= 1,
             f"{_label(noise)} enumerates {length!r} transformations")
    # every draw is checked in 2 L draws of this instance; that all L transformations are drawn,
    # in 20 L draws of the family in at most 16 dimensions (cheaper, same sampling code)
    _check_enumeration(noise, 2, device)
    _check_enumeration(type(noise).create(dim=min(noise.dim, 16), scale=noise.scale,
                                          **noise.shape_params), 20, device)
    counts = np.zeros((3, 4), dtype=np.int64)
    counts[0, 0] = length
    counts[1, 1] = length
    counts[2, :2] = (length - length // 2, length // 2)
    radius = noise.radius_from_counts(counts)
    _require(isinstance(radius, np.ndarray) and radius.dtype == np.float64
             and radius.shape == (3,) and bool(np.all(radius >= 0)),
             f"{_label(noise)}.radius_from_counts gave {radius!r} for three count vectors")


def _check_enumeration(noise: Noise, per: int, device: torch.device) -> None:
    length = noise.num_transforms
    x = torch.full((1, noise.dim), _on_grid(noise, 0.25), dtype=torch.float64, device=device)
    every = noise.transform_grid(noise.grid_indices(x), torch.arange(length, device=device),
                                 torch.float64)
    draws = noise.perturb(x.expand(per * length, -1), _generator(0, device))
    # match each row to the first enumerated transformation with the nearest random projection
    # (equal rows match the same one), then require exact equality with it
    weights = torch.randn(noise.dim, generator=_generator(1, device), dtype=torch.float64,
                          device=device)
    signature = every @ weights

    def nearest(rows: torch.Tensor) -> torch.Tensor:
        return ((rows @ weights)[:, None] - signature[None, :]).abs().argmin(dim=1)

    drawn = nearest(draws)
    _require(torch.equal(draws, every[drawn]), f"{_label(noise)}.perturb drew a "
             f"transformation outside its {length} enumerated ones")
    if per < 20:
        return
    distinct = torch.unique(nearest(every)).numel()
    # 20 L uniform draws miss a given t with probability e^-20
    seen = torch.unique(drawn).numel()
    _require(seen == distinct, f"{_label(noise)}.perturb drew {seen} of its {distinct} "
             f"distinct transformations in {per * length} draws")


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
