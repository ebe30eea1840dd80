"""A noise family defined outside the package, in one file, as a user would write it.

``logistic``: i.i.d. coordinates y_i = logit(u_i) / 2 with u_i ~ Beta(b, b), density proportional
to prod_i sech(y_i)^(2b); b = 1 is the logistic distribution of scale 1/2. Its new shape
parameter ``b`` (an integer >= 1, so that Beta(b, b) is the b-th smallest of 2b - 1 uniforms)
becomes the command-line flag ``--b``. Certified in l1 by the differential method of [YDH+20]:
psi(y) = 2b sum_i log cosh(y_i), and for the l1 ball the worst direction is a coordinate, so
Phi(t) = f(F^-1(1 - t)) with f, F the 1-D density and CDF (the tail integral of psi' f = -f'),
i.e. Phi(t) = 2 (u (1 - u))^b / B(b, b) with u = I^-1_{1-t}(b, b).

Imported by ``smoothcert --noise-module _toy_noise ...`` or by a test.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy import special

from smoothcert.noises.base import Noise, register_noise
from smoothcert.noises.radii.differential import differential_radius
from smoothcert.norms import Norm


@register_noise("logistic")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Logistic(Noise):
    """Density proportional to prod_i sech(y_i / scale)^(2b); l1 by the differential method."""

    b: int = 1

    _direct_norms = (Norm.L1,)

    def _validate(self) -> None:
        if isinstance(self.b, bool) or not isinstance(self.b, int) or self.b < 1:
            raise ValueError(f"b must be an integer >= 1, got {self.b!r}")

    def _unit_sigma(self) -> float:
        # Var(logit(u)) = 2 psi_1(b) for u ~ Beta(b, b)
        return math.sqrt(float(special.polygamma(1, self.b)) / 2.0)

    def _sample_unit(self, batch, *, generator, device, dtype):
        uniforms = torch.rand(batch, self.dim, 2 * self.b - 1, generator=generator,
                              device=device, dtype=torch.float64)
        u = uniforms.sort(dim=-1).values[..., self.b - 1].clamp(1e-300, 1 - 1e-16)
        return (0.5 * torch.log(u / (1 - u))).to(dtype)

    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        b = self.b
        log_beta = special.betaln(b, b)

        def phi(t: np.ndarray) -> np.ndarray:
            u = special.betaincinv(b, b, 1.0 - np.asarray(t))
            return 2.0 * np.exp(b * np.log(u * (1.0 - u)) - log_beta)

        key = {"family": "toy-logistic", "norm": norm.value, "dim": self.dim, "b": b}
        return differential_radius(p_lower, phi, key)
