"""The Noise base class and the registry of smoothing-noise families.

A smoothing distribution is a random transformation T of the input x; the smoothed classifier is
g(x) = argmax_c P[f(T(x)) = c]. Additive noise, T(x) = x + delta with delta ~ q, is the usual kind
(every family of [YDH+20]); a family may transform x otherwise (``additive = False``, e.g.
splitting noise), and a *deterministic* family draws T uniformly from a finite set of
transformations that certification enumerates instead of sampling (``deterministic = True``).

A family is one frozen dataclass, registered with ``@register_noise("name")``, that implements
three small hooks at scale 1 (``_unit_sigma``, ``_sample_unit``, ``_unit_radius``) and, if it has
shape parameters, ``_validate``. The public methods here are final: they own validation, dtype and
device handling, the abstain rule (radius 0 for p_lower <= 1/2), the scale factor and the explicit
norm conversion. Do not override them.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from smoothcert._registry import Registry
from smoothcert.norms import Norm, convert_radius

__all__ = ["Noise", "register_noise", "noise_class", "registered_names"]

_REGISTRY: Registry[type[Noise]] = Registry("noise")

N = TypeVar("N", bound="type[Noise]")


def register_noise(name: str) -> Callable[[N], N]:
    """Class decorator: register a Noise subclass under ``name``."""

    def check(cls: Any) -> None:
        if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
            raise TypeError(f"{cls.__name__} must be a frozen dataclass")

    return _REGISTRY.class_decorator(name, check)


def registered_names() -> list[str]:
    return _REGISTRY.names()


def noise_class(name: str) -> type[Noise]:
    return _REGISTRY.get(name)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_positive_float(name: str, value: Any) -> None:
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, bool)
    if not numeric or not (float(value) > 0 and math.isfinite(float(value))):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Noise(abc.ABC):
    """A smoothing distribution q on R^dim of size ``sigma`` (sigma^2 = E||delta||_2^2 / dim).

    Every family has a natural scale lambda with ``sigma = scale * unit_sigma``; sampling and radii
    are computed at scale 1 and multiplied by ``scale`` (radii are linear in the scale).
    """

    dim: int
    sigma: float

    name: ClassVar[str] = ""
    #: T(x) = x + delta with delta ~ q (``sample`` draws delta); False for other transformations
    additive: ClassVar[bool] = True
    #: T is uniform over a finite set of transformations, enumerated rather than sampled
    deterministic: ClassVar[bool] = False
    #: norms certified directly by a theorem (not by the lp conversion)
    _direct_norms: ClassVar[tuple[Norm, ...]] = ()

    def __post_init__(self) -> None:
        _check_positive_int("dim", self.dim)
        _check_positive_float("sigma", self.sigma)
        object.__setattr__(self, "sigma", float(self.sigma))
        self._validate()

    # ------------------------------------------------------------------ hooks for families
    def _validate(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Check the shape parameters; raise ValueError naming the value and the valid range."""

    @abc.abstractmethod
    def _unit_sigma(self) -> float:
        """sigma at scale 1 (s_1 in the spec), exact."""

    def _sample_unit(
        self, batch: int, *, generator: torch.Generator | None, device: torch.device,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """``batch`` independent draws at scale 1, shape (batch, dim); additive families only."""
        raise TypeError(f"{self.name} is not additive noise: it has no delta to sample; use "
                        f"perturb(x) for draws of its transformation")

    def _perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One draw of T(x[i]) for each row of ``x`` (shape (batch, dim)), at this scale.

        The default is additive: x + delta. Families that transform x otherwise override it.
        """
        return x + self.sample(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)

    @abc.abstractmethod
    def _unit_radius(self, p_lower: np.ndarray, norm: Norm) -> np.ndarray:
        """Certified radius at scale 1 for a direct norm; p_lower is float64, 1-D, all in (1/2, 1].

        Must never exceed the true certified radius of the theorem it implements (round down).
        """

    # ------------------------------------------------------------------ public API (final)
    @classmethod
    def create(cls, *, dim: int, sigma: float | None = None, scale: float | None = None,
               **shape: Any) -> Noise:
        """Build a noise from exactly one of ``sigma`` and ``scale`` plus its shape parameters."""
        if (sigma is None) == (scale is None):
            raise ValueError(
                f"give exactly one of sigma and scale for noise {cls.name!r}, got "
                f"sigma={sigma!r}, scale={scale!r}"
            )
        known = {f.name for f in dataclasses.fields(cls)} - {"dim", "sigma"}
        unknown = set(shape) - known
        if unknown:
            raise ValueError(
                f"noise {cls.name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                f"its shape parameters are: {', '.join(sorted(known)) or 'none'}"
            )
        if sigma is not None:
            return cls(dim=dim, sigma=sigma, **shape)
        _check_positive_float("scale", scale)
        unit = cls(dim=dim, sigma=1.0, **shape)
        return dataclasses.replace(unit, sigma=float(scale) * unit._unit_sigma())

    @property
    def scale(self) -> float:
        """The natural scale lambda of the family (sigma / unit_sigma)."""
        return self.sigma / self._unit_sigma()

    @property
    def unit_sigma(self) -> float:
        """sigma at scale 1."""
        return self._unit_sigma()

    @property
    def direct_norms(self) -> tuple[Norm, ...]:
        """Norms this family certifies directly (others need ``convert=True``)."""
        return self._direct_norms

    @property
    def shape_params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("dim", "sigma")}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (name, dim, sigma, scale, shape parameters)."""
        return {"name": self.name, "dim": self.dim, "sigma": self.sigma, "scale": self.scale,
                **self.shape_params}

    def sample(self, batch: int, *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``batch`` independent draws of the noise, shape (batch, dim).

        With a ``generator`` (on ``device``) the draws are reproducible.
        """
        _check_positive_int("batch", batch)
        device = torch.device(device) if device is not None else torch.device("cpu")
        work = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        unit = self._sample_unit(batch, generator=generator, device=device, dtype=work)
        return (unit * self.scale).to(dtype)

    def sample_like(self, x: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """Noise with the shape, dtype and device of ``x`` (a batch: x[i] has ``dim`` entries).

        A tensor whose total size equals ``dim`` is treated as a single example.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        batch = self._rows(x)
        return self.sample(batch, generator=generator, device=x.device,
                           dtype=x.dtype).reshape(x.shape)

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """One independent draw of the random transformation T(x) for each example of ``x``.

        ``x`` is a batch (x[i] has ``dim`` entries) or a single example of ``dim`` entries; the
        result has its shape, dtype and device. For additive noise this is x + delta. The base
        classifier of the smoothed classifier sees exactly these inputs.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        rows = self._rows(x)
        return self._perturb(x.reshape(rows, self.dim), generator).reshape(x.shape)

    def _rows(self, x: torch.Tensor) -> int:
        """The number of examples in ``x`` (a batch, or one example of ``dim`` entries)."""
        if x.numel() == self.dim:
            return 1
        if x.dim() >= 1 and x.shape[0] > 0 and x[0].numel() == self.dim:
            return x.shape[0]
        per = x[0].numel() if x.dim() >= 1 and x.shape[0] > 0 else x.numel()
        raise ValueError(
            f"x of shape {tuple(x.shape)} has {per} entries per example, but this "
            f"{self.name} noise has dim={self.dim}"
        )

    def certifies(self, norm: Norm | str) -> bool:
        """Whether ``norm`` is certified directly (without the lp conversion)."""
        return Norm.parse(norm) in self.direct_norms

    def certified_radius(self, p_lower: Any, norm: Norm | str, *, convert: bool = False) -> Any:
        """The certified radius for a lower confidence bound ``p_lower`` on the top class.

        If P[f(x + delta) = c_A] >= p_lower for delta from this noise, the smoothed classifier
        returns c_A at every x + v with ||v||_norm < radius. Returns 0 where p_lower <= 1/2.
        ``p_lower`` may be a float, a numpy array or a tensor; the result has the same kind
        (float64). A norm that is not certified directly raises ValueError unless
        ``convert=True``, which takes the largest radius obtained from a direct norm by the lp
        inclusion rule (valid, loose).
        """
        norm = Norm.parse(norm)
        p, restore = _as_float64(p_lower)
        if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
            bad = p[np.isnan(p) | (p < 0) | (p > 1)].ravel()[0]
            raise ValueError(f"p_lower must lie in [0, 1], got {bad!r}")
        direct = self.direct_norms
        if norm not in direct and not convert:
            raise ValueError(
                f"{self.name} noise does not certify {norm.value} directly; it certifies "
                f"{', '.join(n.value for n in direct)}. Pass convert=True to use the lp "
                f"conversion (a valid but loose radius)"
            )
        out = np.zeros(p.shape, dtype=np.float64)
        mask = p > 0.5
        if mask.any():
            q = p[mask]
            if norm in direct:
                unit = self._unit_radius(q, norm)
            else:
                unit = np.max([convert_radius(self._unit_radius(q, a), a, norm, self.dim)
                               for a in direct], axis=0)
            out[mask] = np.asarray(unit, dtype=np.float64) * self.scale
        return restore(out)


def _as_float64(value: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Turn a float, array or tensor into a float64 array, and a function restoring the kind."""
    if isinstance(value, torch.Tensor):
        device = value.device
        arr = value.detach().to("cpu", torch.float64).numpy()
        return arr, lambda out: torch.from_numpy(out).to(device)
    if isinstance(value, np.ndarray):
        return value.astype(np.float64, copy=False), lambda out: out
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return np.array([float(value)]), lambda out: float(out[0])
    raise TypeError(
        f"p_lower must be a float, a numpy array or a torch.Tensor, got {type(value).__name__}"
    )
