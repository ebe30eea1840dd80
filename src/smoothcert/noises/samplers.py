"""Building blocks for the noise samplers: vectorized, on any device, driven by a torch.Generator.

torch's own gamma sampler does not accept a generator, so ``standard_gamma`` implements
Marsaglia and Tsang's method (ACM TOMS 26(3), 2000) with generator-driven normal and uniform
draws; rejected entries are redrawn in rounds, so the result is reproducible given the generator.
Shapes 1 and 1/2 have exact shortcuts (an exponential, half a squared normal).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "standard_exponential",
    "standard_laplace",
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


# Exp(1) draws above _TAIL_START = _TAIL_BITS ln 2 (probability 2^-_TAIL_BITS) are redrawn in
# float64: a float32 uniform resolves the exponential's tail only up to 24 ln 2 = 16.6.
_TAIL_BITS = 10
_TAIL_START = _TAIL_BITS * math.log(2.0)


def standard_exponential(size: int | tuple[int, ...], *,
                         generator: torch.Generator | None = None,
                         device: torch.device | str = "cpu",
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draws of Exp(1) by inversion, E = -log(1 - U) with U ~ Unif[0, 1).

    On CPU this is several times faster than ``Tensor.exponential_``. Below float64 the tail
    event E >= 10 ln 2 (probability 2^-10, the event U >= 1 - 2^-10) is redrawn exactly by
    memorylessness, as 10 ln 2 + a float64 Exp(1) draw, so the tail is as fine as float64's
    (largest draw about 44) rather than cut at the float32 uniform's 24 ln 2 = 16.6.
    """
    size = (size,) if isinstance(size, int) else tuple(size)
    return _inverse_exponential_(_rand(size, generator, device, dtype), generator)


def standard_laplace(size: int | tuple[int, ...], *,
                     generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draws of Laplace(0, 1): S * E with a uniform sign S and E ~ Exp(1) independent.

    One uniform U serves both: S is its top bit (U >= 1/2) and 2U - [U >= 1/2], exact in floating
    point and independent of S, is the uniform that ``standard_exponential`` inverts (with the
    same float64 tail).
    """
    size = (size,) if isinstance(size, int) else tuple(size)
    u = _rand(size, generator, device, dtype)
    upper = (u >= 0.5).to(dtype)
    e = _inverse_exponential_(u.mul_(2.0).sub_(upper), generator)
    return e.mul_(upper.mul_(2.0).sub_(1.0))


def _inverse_exponential_(u: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """-log(1 - u) in place, for u ~ Unif[0, 1), with the float64 tail below float64."""
    tail = u >= 1.0 - 2.0 ** -_TAIL_BITS if u.dtype != torch.float64 else None
    out = u.neg_().log1p_().neg_()
    if tail is not None:
        count = int(torch.count_nonzero(tail))
        if count:
            extra = standard_exponential(count, generator=generator, device=u.device,
                                         dtype=torch.float64)
            out[tail] = (extra + _TAIL_START).to(u.dtype)
    return out


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
    if shape == 1.0:
        return standard_exponential(size, generator=generator, device=device, dtype=dtype)
    if shape == 0.5:
        # Gamma(1/2) is the law of Z^2 / 2 for Z ~ N(0, 1)
        return _randn(size, generator, device, dtype).square_().mul_(0.5)
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


_SIGN_BITS = 62


def random_signs(size: int | tuple[int, ...], *, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """I.i.d. uniform signs in {-1, +1}.

    Each signed draw costs one bit: 62-bit uniform integers (exact, as 2^62 divides the
    generator's 64-bit range) are unpacked, about twice as fast as one randint per sign.
    """
    size = (size,) if isinstance(size, int) else tuple(size)
    n = 1
    for extent in size:
        n *= extent
    words = torch.randint(0, 1 << _SIGN_BITS, ((n + _SIGN_BITS - 1) // _SIGN_BITS, 1),
                          generator=generator, device=device, dtype=torch.int64)
    shifts = torch.arange(_SIGN_BITS, device=device, dtype=torch.int64)
    bits = ((words >> shifts) & 1).view(-1)[:n]
    return bits.to(dtype).mul_(2).sub_(1).view(size)


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
    e = standard_laplace((batch, dim), generator=generator, device=device, dtype=dtype)
    return e.div_(torch.linalg.vector_norm(e, ord=1, dim=1, keepdim=True))


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
