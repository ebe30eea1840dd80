"""CIFAR-10 from the official "python version" batches (Krizhevsky 2009).

Checks: a folder with a ``SHA256SUMS`` list (as for a published subset) is verified against it;
otherwise every file must have the MD5 of the official release. Either way the pickles are read
without running code and their structure (uint8 rows of 3072 values, labels 0..9) is checked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoothcert.data.base import ArrayDataset, DatasetInfo, check_split, data_root, register_dataset
from smoothcert.data.integrity import check_digest, read_sha256sums, safe_unpickle

__all__ = ["CIFAR10"]

_FOLDER = "cifar-10-batches-py"
_SEARCH = (os.path.join("cifar10", _FOLDER), _FOLDER, "")
_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_META = "batches.meta"
#: MD5s of the official release (https://www.cs.toronto.edu/~kriz/cifar.html)
_OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
            "truck")


def _folder(root: Path) -> Path:
    for sub in _SEARCH:
        if (root / sub / _META).is_file():
            return root / sub
    looked = ", ".join(str(root / sub) for sub in _SEARCH)
    raise FileNotFoundError(
        f"CIFAR-10 python batches not found: expected {_META} and data_batch_1..5, test_batch "
        f"in one of: {looked}"
    )


def _verify(folder: Path, names: tuple[str, ...]) -> None:
    sums_file = folder / "SHA256SUMS"
    sums = read_sha256sums(sums_file) if sums_file.is_file() else None
    for name in names:
        path = folder / name
        if sums is not None:
            if name not in sums:
                raise ValueError(f"CIFAR-10 file {name!r} is not listed in {str(sums_file)!r}")
            check_digest(path, sums[name], "sha256", what=f"CIFAR-10 file {str(path)!r}")
        else:
            check_digest(path, _OFFICIAL_MD5[name], "md5",
                         what=f"CIFAR-10 file {str(path)!r} (official release)")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"CIFAR-10 file {str(path)!r} has no data/labels entries")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"], dtype=np.int64)
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072 or labels.shape != (data.shape[0],)
            or (labels.size and not 0 <= labels.min() <= labels.max() <= 9)):
        raise ValueError(
            f"CIFAR-10 file {str(path)!r} does not hold uint8 rows of 3072 values with labels "
            f"0..9 (data {getattr(data, 'shape', None)}, {len(labels)} labels)"
        )
    return data, labels


@register_dataset("cifar10")
class CIFAR10(ArrayDataset):
    """CIFAR-10: 32x32 colour images of 10 classes (50,000 train, 10,000 test in the official
    release), 3x32x32 in [0, 1].

    Files are looked for in ``<root>/cifar10/cifar-10-batches-py``, ``<root>/cifar-10-batches-py``
    and ``<root>``. ``augment`` applies the standard training augmentation (random 32x32 crop of
    the image zero-padded by 4, horizontal flip with probability 1/2), drawn per item and epoch.
    Normalization statistics are those of Cohen et al. (2019) and Yang et al. (2020).
    """

    @classmethod
    def describe(cls, **options: Any) -> DatasetInfo:
        return DatasetInfo(name="cifar10", shape=(3, 32, 32), num_classes=10,
                           mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010),
                           classes=_CLASSES, quantization=255)

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *,
                 augment: bool = False, verify: bool = True) -> None:
        check_split(split)
        folder = _folder(data_root(root, "cifar10"))
        names = _FILES[split]
        for name in names:
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"CIFAR-10 file {name!r} expected at {str(folder / name)!r}")
        if verify:
            _verify(folder, (_META, *names))
        meta = safe_unpickle(folder / _META)
        label_names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if label_names is None or [n.decode() for n in label_names] != list(_CLASSES):
            raise ValueError(f"CIFAR-10 file {str(folder / _META)!r} does not list the 10 "
                             f"CIFAR-10 classes")
        parts = [_read_batch(folder / name) for name in names]
        data = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([p[1] for p in parts])
        self.info = self.describe()
        self.split = split
        self._set_arrays(torch.from_numpy(data), torch.from_numpy(labels), divisor=255,
                         augment=augment, pad=4)
