"""Smoothing-noise families: one module per family, each registered by name.

Every module in this package except the infrastructure (``base``, ``samplers``, ``checks`` and the
``radii`` subpackage) defines a family and is imported here so that it registers itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from smoothcert.noises.base import Noise, noise_class, register_noise, registered_names

__all__ = ["Noise", "register_noise", "get_noise", "list_noises"]

_INFRASTRUCTURE = {"base", "samplers", "checks", "radii"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def get_noise(name: str, *, dim: int, sigma: float | None = None, scale: float | None = None,
              **shape: Any) -> Noise:
    """The registered noise ``name`` on R^dim, sized by exactly one of ``sigma`` and ``scale``.

    >>> get_noise("gaussian", dim=3072, sigma=0.5).scale
    0.5
    """
    return noise_class(name).create(dim=dim, sigma=sigma, scale=scale, **shape)


def list_noises() -> list[str]:
    """Names of all registered noise families."""
    return registered_names()
