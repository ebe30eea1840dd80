"""Building blocks for the noise samplers: vectorized, on any device, driven by a torch.Generator.

torch's own gamma sampler does not accept a generator, so ``standard_gamma`` implements
Marsaglia and Tsang's method (ACM TOMS 26(3), 2000) with generator-driven normal and uniform
draws; rejected entries are redrawn in rounds, so the result is reproducible given the generator.
"""

from __future__ import annotations

import torch

__all__ = [
    "standard_gamma",
    "beta_prime",
    "random_signs",
    "l2_sphere",
    "l1_sphere",
    "cube_surface",
]


def _rand(size, generator, device, dtype):
    return torch.rand(size, generator=generator, device=device, dtype=dtype)


def _randn(size, generator, device, dtype):
    return torch.randn(size, generator=generator, device=device, dtype=dtype)


def standard_gamma(shape: float, size: int | tuple[int, ...], *,
                   generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draws of Gamma(shape, rate 1).

    Large shapes are sampled in float64 (the acceptance test cancels badly in float32) and cast.
    """
    if not shape > 0:
        raise ValueError(f"gamma shape must be > 0, got {shape!r}")
    size = (size,) if isinstance(size, int) else tuple(size)
    work = torch.float64 if (shape > 50 or dtype == torch.float64) else torch.float32
    boost = shape < 1
    a = shape + 1.0 if boost else float(shape)
    d = a - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    out = torch.empty(size, device=device, dtype=work)
    flat = out.view(-1)
    todo = torch.arange(flat.numel(), device=device)
    while todo.numel() > 0:
        m = todo.numel()
        x = _randn(m, generator, device, work)
        u = _rand(m, generator, device, work)
        v = (1.0 + c * x) ** 3
        ok = v > 0
        logv = torch.log(torch.where(ok, v, torch.ones_like(v)))
        accept = ok & (torch.log(u) < 0.5 * x * x + d - d * v + d * logv)
        flat[todo[accept]] = d * v[accept]
        todo = todo[~accept]
    if boost:
        # Gamma(a) = Gamma(a + 1) * U^(1/a); computed in logs so tiny shapes do not underflow early.
        u = _rand(size, generator, device, work).clamp_min_(torch.finfo(work).tiny)
        out = torch.exp(torch.log(out) + torch.log(u) / shape)
    return out.to(dtype)


def beta_prime(a: float, b: float, size: int | tuple[int, ...], *,
               generator: torch.Generator | None = None, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draws of BetaPrime(a, b) = G_a / G_b with independent Gamma(a), Gamma(b)."""
    ga = standard_gamma(a, size, generator=generator, device=device, dtype=torch.float64)
    gb = standard_gamma(b, size, generator=generator, device=device, dtype=torch.float64)
    return (ga / gb).to(dtype)


def random_signs(size: int | tuple[int, ...], *, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """I.i.d. uniform signs in {-1, +1}."""
    bits = torch.randint(0, 2, (size,) if isinstance(size, int) else size,
                         generator=generator, device=device, dtype=torch.int8)
    return (bits * 2 - 1).to(dtype)


def l2_sphere(batch: int, dim: int, *, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
              ) -> torch.Tensor:
    """Uniform directions on the unit l2 sphere in R^dim: g / ||g||_2 with g ~ N(0, I)."""
    g = _randn((batch, dim), generator, device, dtype)
    return g / torch.linalg.vector_norm(g, dim=1, keepdim=True)


def l1_sphere(batch: int, dim: int, *, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
              ) -> torch.Tensor:
    """Uniform on the unit l1 sphere: normalized i.i.d. Exp(1) (Dirichlet(1,...,1)) with signs."""
    e = torch.empty((batch, dim), device=device, dtype=dtype).exponential_(generator=generator)
    e = e / e.sum(dim=1, keepdim=True)
    return e * random_signs((batch, dim), generator=generator, device=device, dtype=dtype)


def cube_surface(batch: int, dim: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                 ) -> torch.Tensor:
    """Uniform on the surface of [-1, 1]^dim.

    All 2*dim faces have equal area: draw u ~ Unif[-1, 1]^dim, then set one uniformly chosen
    coordinate to a random sign.
    """
    u = _rand((batch, dim), generator, device, dtype).mul_(2).sub_(1)
    face = torch.randint(0, dim, (batch, 1), generator=generator, device=device)
    sign = random_signs((batch, 1), generator=generator, device=device, dtype=dtype)
    u.scatter_(1, face, sign)
    return u
