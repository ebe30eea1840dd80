"""Image transforms used by the datasets, written with torch and PIL (no torchvision).

Random transforms take a ``numpy.random.Generator`` so that each item's augmentation is
reproducible (see ``base.item_rng``). The geometry follows torchvision's ``RandomCrop(padding)``,
``RandomHorizontalFlip``, ``RandomResizedCrop``, ``Resize`` and ``CenterCrop``, the transforms
used by Cohen et al. (2019) and Yang et al. (2020).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["random_crop_flip", "random_resized_crop", "resize_center_crop", "pil_to_tensor"]


def random_crop_flip(x: torch.Tensor, pad: int, rng: np.random.Generator) -> torch.Tensor:
    """A random (H, W) crop of ``x`` (C, H, W) zero-padded by ``pad``, then a horizontal flip
    with probability 1/2."""
    _, h, w = x.shape
    top, left = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
    flip = bool(rng.integers(0, 2))
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))[:, top:top + h, left:left + w]
    if flip:
        x = x.flip(-1)
    return x.contiguous()


def random_resized_crop(img: Image.Image, size: int, rng: np.random.Generator, *,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Image.Image:
    """A crop of random area (fraction ``scale`` of the image) and aspect ratio (log-uniform in
    ``ratio``) resized to ``size`` x ``size``; ten tries, then a central crop clamped to
    ``ratio`` (torchvision's RandomResizedCrop)."""
    width, height = img.size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            break
    else:
        in_ratio = width / height
        if in_ratio < ratio[0]:
            w, h = width, round(width / ratio[0])
        elif in_ratio > ratio[1]:
            w, h = round(height * ratio[1]), height
        else:
            w, h = width, height
        top, left = (height - h) // 2, (width - w) // 2
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))


def resize_center_crop(img: Image.Image, resize: int, size: int) -> Image.Image:
    """Resize the shorter side to ``resize`` (keeping the aspect ratio), then take the central
    ``size`` x ``size`` crop."""
    width, height = img.size
    if width <= height:
        new_w, new_h = resize, max(1, int(resize * height / width))
    else:
        new_w, new_h = max(1, int(resize * width / height)), resize
    img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    if size > min(new_w, new_h):
        raise ValueError(f"crop size {size} exceeds the resized image {new_w}x{new_h}")
    left = int(round((new_w - size) / 2.0))
    top = int(round((new_h - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float32 tensor (3, H, W) in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)
