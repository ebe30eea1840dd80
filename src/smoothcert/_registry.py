"""A name -> object registry, shared by the noise families, datasets and architectures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Objects registered under unique names; ``kind`` ("noise", "dataset", ...) names them in
    error messages. Registering a second, different object under a taken name is refused
    (``same(old, new)`` decides what counts as the same object; default: identity), so that a
    module imported twice does not trip it but a real clash does."""

    def __init__(self, kind: str, same: Callable[[T, T], bool] | None = None) -> None:
        self.kind = kind
        self._same = same or (lambda old, new: old is new)
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T, describe: Callable[[T], str] | None = None) -> None:
        """Register ``item`` as ``name``; registering the same object again keeps the first."""
        old = self._items.get(name)
        if old is None:
            self._items[name] = item
        elif not self._same(old, item):
            by = f" by {describe(old)}" if describe else ""
            raise ValueError(f"{self.kind} {name!r} is already registered{by}")

    def class_decorator(self, name: str, check: Callable[[Any], None]) -> Callable[[C], C]:
        """A class decorator that runs ``check(cls)`` (raising if the class does not belong
        here), registers the class under ``name`` and sets its ``name`` attribute."""

        def decorate(cls: C) -> C:
            check(cls)
            self.add(name, cls, describe=lambda old: old.__name__)
            cls.name = name
            return cls

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
