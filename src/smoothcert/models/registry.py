"""The registry of architectures and the shape checks they declare."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn

from smoothcert._registry import Registry

__all__ = ["ModelSpec", "register_model", "model_spec", "registered_names", "image_at_least",
           "exact_shape", "any_shape"]

Shape = tuple[int, int, int]
Builder = Callable[[Shape, int], nn.Module]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: ``build(shape, num_classes)`` returns the network (without
    the normalization layer); ``fits(shape)`` returns None or why the shape does not fit;
    ``normalize`` False makes the first layer the identity (mean 0, std 1)."""

    name: str
    build: Builder
    fits: Callable[[Shape], str | None]
    normalize: bool = True


_REGISTRY: Registry[ModelSpec] = Registry("architecture",
                                        same=lambda old, new: old.build is new.build)


def any_shape(shape: Shape) -> str | None:
    return None


def image_at_least(size: int) -> Callable[[Shape], str | None]:
    """A shape check: images at least ``size`` x ``size`` (any channel count)."""

    def fits(shape: Shape) -> str | None:
        if min(shape[1:]) < size:
            return f"it needs images of at least {size}x{size}"
        return None

    return fits


def exact_shape(expected: Shape) -> Callable[[Shape], str | None]:
    """A shape check: exactly ``expected``."""

    def fits(shape: Shape) -> str | None:
        return None if tuple(shape) == tuple(expected) else f"it needs inputs of shape {expected}"

    return fits


def register_model(name: str, *, fits: Callable[[Shape], str | None] = any_shape,
                   normalize: bool = True) -> Callable[[Builder], Builder]:
    """Decorator: register ``build(shape, num_classes) -> nn.Module`` as architecture ``name``."""

    def decorate(build: Builder) -> Builder:
        _REGISTRY.add(name, ModelSpec(name=name, build=build, fits=fits, normalize=normalize))
        return build

    return decorate


def registered_names() -> list[str]:
    return _REGISTRY.names()


def model_spec(name: str) -> ModelSpec:
    return _REGISTRY.get(name)
