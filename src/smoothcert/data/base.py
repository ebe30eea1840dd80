"""The dataset registry, the ``DatasetInfo`` record and the in-memory dataset base class.

A dataset family is a subclass of ``SmoothcertDataset`` registered with
``@register_dataset("name")``. It implements ``describe(**options)`` (the ``DatasetInfo`` without
loading anything) and ``__init__(split, root, **options)``; its options are the keyword-only
parameters of ``__init__``, and ``get_dataset`` rejects anything else by name. Every item is a
float32 image tensor of shape (C, H, W) in pixel units (images in [0, 1]) and an int label; every
dataset exposes ``targets`` (int64 labels, one per item) so class subsets can be taken generically.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from smoothcert._registry import Registry
from smoothcert.data.transforms import random_crop_flip

__all__ = [
    "DatasetInfo",
    "SmoothcertDataset",
    "ArrayDataset",
    "register_dataset",
    "dataset_class",
    "registered_names",
    "data_root",
    "item_rng",
    "SPLITS",
    "DATA_DIR_ENV",
]

#: the environment variable naming the data directory when no ``root`` is given
DATA_DIR_ENV = "SMOOTHCERT_DATA_DIR"
SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: input shape, classes and pixel statistics.

    ``mean``/``std`` (one value per channel) feed the model's first layer, the fixed
    normalization; noise is added before it, in pixel space. ``quantization``: the grid of the
    stored pixel values, k / quantization for integers k (255 for 8-bit images), or None where
    the inputs are not on a grid; a family with a ``quantization`` parameter (``dssn``) takes it
    as its default.
    """

    name: str
    shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] | None = None
    quantization: int | None = None

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(s) < 1 for s in self.shape):
            raise ValueError(f"shape must be (C, H, W) of positive sizes, got {self.shape!r}")
        if len(self.mean) != self.shape[0] or len(self.std) != self.shape[0]:
            raise ValueError(
                f"mean and std need one value per channel ({self.shape[0]}), got "
                f"mean={self.mean!r}, std={self.std!r}"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std!r}")
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.num_classes} classes")
        if self.quantization is not None and (isinstance(self.quantization, bool)
                                              or not isinstance(self.quantization, int)
                                              or self.quantization < 1):
            raise ValueError(f"quantization must be an integer >= 1 or None, got "
                             f"{self.quantization!r}")

    @property
    def dim(self) -> int:
        """Number of input coordinates C*H*W (the noise dimension)."""
        c, h, w = self.shape
        return c * h * w

    def with_classes(self, classes: Sequence[int]) -> DatasetInfo:
        """The info of the subset of ``classes``, relabelled 0..k-1 in the given order."""
        names = None if self.classes is None else tuple(self.classes[c] for c in classes)
        return dataclasses.replace(self, num_classes=len(classes), classes=names)


class SmoothcertDataset(Dataset):
    """Base of registered datasets: ``info`` (a ``DatasetInfo``), ``split`` and ``targets``."""

    name: ClassVar[str] = ""
    info: DatasetInfo
    split: str
    targets: torch.Tensor

    @classmethod
    def describe(cls, **options: Any) -> DatasetInfo:
        """The ``DatasetInfo`` for these options, without reading any data."""
        raise NotImplementedError

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        """Choose the random augmentation of an epoch; a no-op for datasets without one."""

    def select(self, keep: torch.Tensor, relabel: torch.Tensor | None = None) -> None:
        """Keep only the items ``keep`` (indices), optionally replacing their labels."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.targets)


D = TypeVar("D", bound=type[SmoothcertDataset])
_REGISTRY: Registry[type[SmoothcertDataset]] = Registry("dataset")


def register_dataset(name: str) -> Callable[[D], D]:
    """Class decorator: register a ``SmoothcertDataset`` subclass under ``name``."""

    def check(cls: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, SmoothcertDataset)):
            raise TypeError(f"{cls!r} must be a subclass of SmoothcertDataset")

    return _REGISTRY.class_decorator(name, check)


def registered_names() -> list[str]:
    return _REGISTRY.names()


def dataset_class(name: str) -> type[SmoothcertDataset]:
    return _REGISTRY.get(name)


def option_names(cls: type[SmoothcertDataset]) -> list[str]:
    """The options a dataset accepts: the keyword-only parameters of its ``__init__``."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def data_root(root: str | os.PathLike | None, dataset: str) -> Path:
    """The data directory: ``root`` if given, else ``$SMOOTHCERT_DATA_DIR``."""
    if root is None:
        env = os.environ.get(DATA_DIR_ENV)
        if not env:
            raise FileNotFoundError(
                f"dataset {dataset!r} is read from files, but no data directory was given: pass "
                f"root=... (--data-dir on the command line) or set {DATA_DIR_ENV}"
            )
        root = env
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {str(path)!r} for {dataset!r} does not exist")
    return path


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one item's augmentation in one epoch.

    Deriving it from (seed, epoch, index) rather than from a global stream makes augmentation
    reproducible whatever the order, batching or number of worker processes.
    """
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class ArrayDataset(SmoothcertDataset):
    """A dataset held in memory: ``data`` (N, C, H, W), divided by ``divisor`` on access.

    Images stored as uint8 use ``divisor = 255``. With ``augment``, each item gets a random crop
    (zero padding ``pad``) and a horizontal flip, drawn from ``item_rng`` for the current epoch.
    """

    def _set_arrays(self, data: torch.Tensor, targets: torch.Tensor, *, divisor: float = 1.0,
                    augment: bool = False, pad: int = 4) -> None:
        if data.dim() != 4 or data.shape[0] != targets.shape[0]:
            raise ValueError(
                f"data must be (N, C, H, W) with one target per item, got {tuple(data.shape)} "
                f"and {tuple(targets.shape)}"
            )
        self.data = data
        self.targets = targets.to(torch.int64)
        self.divisor = float(divisor)
        self.augment = bool(augment)
        self.pad = int(pad)
        self._seed = 0
        self._epoch = 0

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        self._epoch = int(epoch)
        self._seed = int(seed)

    def _convert(self, raw: torch.Tensor) -> torch.Tensor:
        # a copy, so callers may modify the item in place without touching the stored data
        x = raw.to(torch.float32, copy=True)
        return x.div_(self.divisor) if self.divisor != 1.0 else x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        x = self._convert(self.data[index])
        if self.augment:
            x = random_crop_flip(x, self.pad, item_rng(self._seed, self._epoch, index))
        return x, int(self.targets[index])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` stacked: (float32 (B, C, H, W), int64 (B,)), same as ``__getitem__``.

        One gather and one conversion for the whole batch instead of B Python-level calls.
        """
        indices = torch.as_tensor(indices, dtype=torch.int64)
        x = self._convert(self.data[indices])
        if self.augment:
            for row, index in enumerate(indices.tolist()):
                x[row] = random_crop_flip(x[row], self.pad,
                                          item_rng(self._seed, self._epoch, index))
        return x, self.targets[indices]

    def select(self, keep: torch.Tensor, relabel: torch.Tensor | None = None) -> None:
        """Keep only the items ``keep`` (indices), optionally replacing their labels."""
        self.data = self.data[keep]
        self.targets = self.targets[keep] if relabel is None else relabel.to(torch.int64)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return split
