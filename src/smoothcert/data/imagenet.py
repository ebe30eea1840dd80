"""ImageNet (or any image-classification folder tree) read from class folders of JPEG/PNG files.

Layout: ``<root>/imagenet/train/<class>/*.JPEG`` and ``<root>/imagenet/val/<class>/...`` (or the
same without ``imagenet/``; ``test`` may stand for ``val``). Classes are the sorted folder names
of the training folder, as torchvision's ImageFolder numbers them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from smoothcert.data.base import (
    DatasetInfo,
    SmoothcertDataset,
    check_split,
    data_root,
    item_rng,
    register_dataset,
)
from smoothcert.data.transforms import pil_to_tensor, random_resized_crop, resize_center_crop

__all__ = ["ImageFolderDataset"]

_EXTENSIONS = {".jpg", ".jpeg", ".png"}
_SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}


def _split_folder(root: Path, split: str) -> Path:
    looked = []
    for base in (root / "imagenet", root):
        for name in _SPLIT_FOLDERS[split]:
            if (base / name).is_dir():
                return base / name
            looked.append(str(base / name))
    raise FileNotFoundError(
        f"ImageNet {split!r} folder not found; expected class folders in one of: "
        f"{', '.join(looked)}"
    )


def _class_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@register_dataset("imagenet")
class ImageFolderDataset(SmoothcertDataset):
    """ImageNet-style folders, 3 x image_size x image_size in [0, 1].

    Training images (``augment``, default on for the train split) get RandomResizedCrop to
    ``image_size`` and a horizontal flip, drawn per item and epoch; test images are resized
    (shorter side ``resize``) and centre-cropped to ``image_size``, as in Cohen et al. (2019) and
    Yang et al. (2020). The info declares 1000 classes (ImageNet); a loaded dataset reports the
    classes it actually found.
    """

    @classmethod
    def describe(cls, *, image_size: int = 224, **options: Any) -> DatasetInfo:
        return DatasetInfo(name="imagenet", shape=(3, image_size, image_size), num_classes=1000,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

    def __init__(self, split: str = "train", root: str | os.PathLike | None = None, *,
                 image_size: int = 224, resize: int = 256, augment: bool | None = None) -> None:
        check_split(split)
        if image_size < 1 or resize < image_size:
            raise ValueError(f"need 1 <= image_size <= resize, got image_size={image_size}, "
                             f"resize={resize}")
        base = data_root(root, "imagenet")
        folder = _split_folder(base, split)
        train_folder = folder if split == "train" else None
        if train_folder is None:
            try:
                train_folder = _split_folder(base, "train")
            except FileNotFoundError:
                train_folder = folder
        classes = _class_names(train_folder)
        if not classes:
            raise FileNotFoundError(f"no class folders in {str(train_folder)!r}")
        index = {name: i for i, name in enumerate(classes)}
        samples: list[tuple[Path, int]] = []
        for name in _class_names(folder):
            if name not in index:
                raise ValueError(f"class folder {str(folder / name)!r} has no counterpart in "
                                 f"the training folder {str(train_folder)!r}")
            files = sorted(p for p in (folder / name).iterdir()
                           if p.suffix.lower() in _EXTENSIONS and p.is_file())
            samples.extend((p, index[name]) for p in files)
        if not samples:
            raise FileNotFoundError(f"no JPEG/PNG images under {str(folder)!r}")
        self.samples = samples
        self.targets = torch.tensor([t for _, t in samples], dtype=torch.int64)
        self.image_size = int(image_size)
        self.resize = int(resize)
        self.augment = (split == "train") if augment is None else bool(augment)
        self.split = split
        self.info = DatasetInfo(name="imagenet", shape=(3, image_size, image_size),
                                num_classes=len(classes), mean=(0.485, 0.456, 0.406),
                                std=(0.229, 0.224, 0.225), classes=tuple(classes))
        self._seed = 0
        self._epoch = 0

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        self._epoch = int(epoch)
        self._seed = int(seed)

    def select(self, keep: torch.Tensor, relabel: torch.Tensor | None = None) -> None:
        keep_list = torch.as_tensor(keep, dtype=torch.int64).tolist()
        self.targets = self.targets[keep_list] if relabel is None else relabel.to(torch.int64)
        self.samples = [(self.samples[i][0], int(t)) for i, t in zip(keep_list, self.targets.tolist(), strict=True)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = range(len(self.samples))[index]  # negative indices, and IndexError past the end
        path, target = self.samples[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"image {str(path)!r} is unreadable ({exc})") from exc
        if self.augment:
            rng = item_rng(self._seed, self._epoch, index)
            img = random_resized_crop(img, self.image_size, rng)
            if rng.integers(0, 2):
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = resize_center_crop(img, self.resize, self.image_size)
        return pil_to_tensor(img), target
