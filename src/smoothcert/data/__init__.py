"""Datasets by name: MNIST, CIFAR-10, ImageNet folders, scikit-learn digits, and the synthetic
distributions of Pal and Sulam (2023).

>>> ds = get_dataset("digits", split="test")
>>> ds.info.shape, ds.info.num_classes, len(ds)
((1, 8, 8), 10, 355)

Every item is (float32 tensor of shape ``info.shape`` in pixel units, int label). File-based
datasets read from ``root`` or ``$SMOOTHCERT_DATA_DIR`` and never download. The option
``classes=(a, b, ...)`` keeps only those classes, relabelled 0..k-1 in the given order (binary
MNIST: ``classes=(0, 1)``).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch

from smoothcert.data.base import (
    DATA_DIR_ENV,
    SPLITS,
    ArrayDataset,
    DatasetInfo,
    SmoothcertDataset,
    check_split,
    dataset_class,
    option_names,
    register_dataset,
    registered_names,
)

__all__ = [
    "DatasetInfo",
    "SmoothcertDataset",
    "ArrayDataset",
    "get_dataset",
    "dataset_info",
    "list_datasets",
    "register_dataset",
    "dataset_options",
    "DATA_DIR_ENV",
    "SPLITS",
]

for _module in ("mnist", "cifar10", "imagenet", "digits", "synthetic"):
    importlib.import_module(f"{__name__}.{_module}")


def list_datasets() -> list[str]:
    """Names of all registered datasets."""
    return registered_names()


def dataset_options(name: str) -> list[str]:
    """The options ``get_dataset(name, ...)`` accepts (``classes`` is accepted by all)."""
    return [*option_names(dataset_class(name)), "classes"]


def _check_options(name: str, options: dict[str, Any]) -> None:
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"dataset {name!r} has no option(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )


def _check_classes(classes: Any, num_classes: int) -> tuple[int, ...]:
    try:
        chosen = tuple(int(c) for c in classes)
        ok = (all(float(c) == int(c) for c in classes) and len(chosen) >= 1
              and len(set(chosen)) == len(chosen) and all(0 <= c < num_classes for c in chosen))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"classes must be distinct labels in 0..{num_classes - 1}, got {classes!r}"
        )
    return chosen


def dataset_info(name: str, **options: Any) -> DatasetInfo:
    """The ``DatasetInfo`` (shape, classes, mean/std) of ``get_dataset(name, **options)``,
    without reading data."""
    cls = dataset_class(name)
    _check_options(name, options)
    classes = options.pop("classes", None)
    info = cls.describe(**options)
    return info if classes is None else info.with_classes(_check_classes(classes, info.num_classes))


def get_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                **options: Any) -> SmoothcertDataset:
    """The ``split`` ("train" or "test") of the registered dataset ``name``.

    Returns a torch Dataset of (float32 tensor (C, H, W), int label) with ``.info`` (a
    ``DatasetInfo``) and ``.targets``. ``root`` is the data directory (default
    ``$SMOOTHCERT_DATA_DIR``); missing or corrupt files raise FileNotFoundError / ValueError
    naming the file and where it was expected.
    """
    cls = dataset_class(name)
    check_split(split)
    _check_options(name, options)
    classes = options.pop("classes", None)
    dataset = cls(split, root, **options)
    if classes is not None:
        chosen = _check_classes(classes, dataset.info.num_classes)
        relabel = torch.full((dataset.info.num_classes,), -1, dtype=torch.int64)
        relabel[list(chosen)] = torch.arange(len(chosen))
        keep = torch.isin(dataset.targets, torch.tensor(chosen)).nonzero().flatten()
        dataset.select(keep, relabel[dataset.targets[keep]])
        dataset.info = dataset.info.with_classes(chosen)
    return dataset
