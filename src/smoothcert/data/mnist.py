"""MNIST from the original IDX files (LeCun, Cortes and Burges), gzip-compressed or not.

Each file is verified after decompression against the MD5 of the original uncompressed file, so
a re-compressed copy of the official data is accepted and a corrupt one is rejected by name.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoothcert.data.base import ArrayDataset, DatasetInfo, check_split, data_root, register_dataset
from smoothcert.data.integrity import check_digest

__all__ = ["MNIST", "read_idx"]

#: split -> (images file, labels file, number of items), names without ".gz"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
#: MD5 of the uncompressed original files
_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: folders under the data directory searched in order (ours, torchvision's, the root itself)
_FOLDERS = ("mnist", os.path.join("MNIST", "raw"), "")
#: IDX magic numbers: unsigned bytes, with 3 dimensions (images) or 1 (labels)
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}


def _find(root: Path, stem: str) -> Path:
    looked = []
    for folder in _FOLDERS:
        for name in (stem + ".gz", stem):
            path = root / folder / name
            if path.is_file():
                return path
        looked.append(str(root / folder))
    raise FileNotFoundError(
        f"MNIST file {stem}.gz (or {stem}) not found; looked in: {', '.join(looked)}"
    )


@functools.lru_cache(maxsize=8)
def _read_idx_cached(path: str, _mtime_ns: int, _size: int, ndim: int, md5: str | None,
                     count: int) -> np.ndarray:
    raw = Path(path).read_bytes()
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"MNIST file {path!r} is corrupt: cannot decompress ({exc})") from exc
    if md5 is not None:
        check_digest(raw, md5, "md5", what=f"MNIST file {path!r} (uncompressed)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"MNIST file {path!r} is truncated: {len(raw)} bytes")
    magic, *dims = np.frombuffer(raw, dtype=">u4", count=1 + ndim).tolist()
    if magic != _IDX_MAGIC[ndim] or dims[0] != count or len(raw) != header + int(np.prod(dims)):
        raise ValueError(
            f"MNIST file {path!r} is not an IDX file of {count} items with {ndim} dimension(s): "
            f"magic {magic:#010x}, dimensions {dims}, {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    array.flags.writeable = False
    return array


def read_idx(path: Path, *, ndim: int, count: int, md5: str | None) -> np.ndarray:
    """The uint8 array in the IDX file ``path`` (``.gz`` is decompressed), checked against the
    MD5 of the uncompressed bytes when ``md5`` is given. Decoded arrays are cached in memory,
    keyed by the file's path, modification time and size."""
    stat = path.stat()
    return _read_idx_cached(str(path), stat.st_mtime_ns, stat.st_size, ndim, md5, count)


@register_dataset("mnist")
class MNIST(ArrayDataset):
    """MNIST handwritten digits: 60,000 training and 10,000 test images, 1x28x28 in [0, 1].

    Files are looked for in ``<root>/mnist``, ``<root>/MNIST/raw`` and ``<root>``, where root is
    the ``root`` argument or ``$SMOOTHCERT_DATA_DIR``. ``verify`` checks the MD5s of the
    uncompressed files. The info's mean/std (0.1307, 0.3081) are those of the training images.
    """

    @classmethod
    def describe(cls, **options: Any) -> DatasetInfo:
        return DatasetInfo(name="mnist", shape=(1, 28, 28), num_classes=10, mean=(0.1307,),
                           std=(0.3081,), classes=tuple(str(i) for i in range(10)),
                           quantization=255)

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *,
                 verify: bool = True) -> None:
        check_split(split)
        base = data_root(root, "mnist")
        images_stem, labels_stem, count = _FILES[split]
        images = read_idx(_find(base, images_stem), ndim=3, count=count,
                          md5=_MD5[images_stem] if verify else None)
        labels = read_idx(_find(base, labels_stem), ndim=1, count=count,
                          md5=_MD5[labels_stem] if verify else None)
        if labels.max() > 9:
            raise ValueError(f"MNIST labels for {split!r} contain {int(labels.max())}; "
                             f"expected 0..9")
        self.info = self.describe()
        self.split = split
        self._set_arrays(torch.from_numpy(images.copy()).unsqueeze(1),
                         torch.from_numpy(labels.astype(np.int64)), divisor=255)
