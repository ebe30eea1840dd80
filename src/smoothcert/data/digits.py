"""scikit-learn's 8x8 handwritten digits: a tiny image dataset that needs no download."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from smoothcert.data.base import ArrayDataset, DatasetInfo, check_split, register_dataset

__all__ = ["Digits"]

#: every TEST_EVERY-th image of each class (in file order) is a test image
TEST_EVERY = 5


def split_indices(targets: np.ndarray, split: str) -> np.ndarray:
    """The deterministic, class-stratified split: within each class, images number
    TEST_EVERY-1, 2*TEST_EVERY-1, ... (0-based, in file order) are the test split."""
    is_test = np.zeros(len(targets), dtype=bool)
    for label in np.unique(targets):
        is_test[np.flatnonzero(targets == label)[TEST_EVERY - 1::TEST_EVERY]] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


@register_dataset("digits")
class Digits(ArrayDataset):
    """The UCI optical digits as shipped with scikit-learn (1,797 images, 1x8x8), pixel values
    (0..16) divided by 16 into [0, 1]; 1,442 training and 355 test images (see
    ``split_indices``). Mean/std are those of the training images."""

    @classmethod
    def describe(cls, **options: Any) -> DatasetInfo:
        return DatasetInfo(name="digits", shape=(1, 8, 8), num_classes=10, mean=(0.3051,),
                           std=(0.3762,), classes=tuple(str(i) for i in range(10)),
                           quantization=16)

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None) -> None:
        from sklearn.datasets import load_digits  # imported here: it is slow to import

        check_split(split)
        bunch = load_digits()
        targets = np.asarray(bunch.target, dtype=np.int64)
        keep = split_indices(targets, split)
        images = np.asarray(bunch.images, dtype=np.float32)[keep] / np.float32(16)
        self.info = self.describe()
        self.split = split
        self._set_arrays(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(targets[keep]))
