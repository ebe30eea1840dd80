"""Model checkpoints: weights plus everything needed to rebuild and interpret the model.

A checkpoint is a ``torch.save`` dictionary of tensors and plain Python values only, so it loads
with ``weights_only=True`` (no pickled code runs on load). Keys:

- ``format`` ("smoothcert-checkpoint"), ``format_version`` (1), ``smoothcert`` (library version)
- ``arch``, ``dataset``, ``num_classes``, ``input_shape`` ([C, H, W]): rebuild with
  ``get_model(arch, dataset=dataset, num_classes=num_classes)``
- ``state_dict``: the model's weights
- ``train_noise``: ``Noise.describe()`` of the training noise (None for clean training); this is
  the training noise only, the smoothing noise is chosen at certification time
- ``config``: the training configuration (JSON-ready dict)
- ``epoch``: completed epochs; ``optimizer``, ``scheduler``, ``rng``, ``metrics``: for resuming
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from smoothcert._version import __version__
from smoothcert.runs.atomic import atomic_writer

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "smoothcert-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode) and its metadata."""

    model: torch.nn.Module
    arch: str
    dataset: str
    num_classes: int
    input_shape: tuple[int, ...]
    train_noise: dict[str, Any] | None
    config: dict[str, Any]
    epoch: int
    raw: dict[str, Any] = field(repr=False)


def save_checkpoint(path: str | os.PathLike, *, model: torch.nn.Module, arch: str, dataset: str,
                    num_classes: int, input_shape: tuple[int, ...] | list[int],
                    train_noise: dict[str, Any] | None, config: dict[str, Any], epoch: int,
                    **extra: Any) -> Path:
    """Write a checkpoint atomically (a temporary file in the same folder, then a rename), so a
    crash mid-write never leaves a truncated checkpoint behind; the file gets the permissions
    ``open`` would give it (umask honoured). ``extra`` holds resume state
    (``optimizer``, ``scheduler``, ``rng``, ``metrics``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "smoothcert": __version__,
        "arch": arch, "dataset": dataset, "num_classes": int(num_classes),
        "input_shape": [int(s) for s in input_shape], "state_dict": state,
        "train_noise": train_noise, "config": config, "epoch": int(epoch), **extra,
    }
    with atomic_writer(path) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> Checkpoint:
    """Load a checkpoint written by ``save_checkpoint`` and rebuild its model (eval mode)."""
    from smoothcert.models import get_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{str(path)!r} is not a readable smoothcert checkpoint ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a smoothcert checkpoint (no format marker); "
                         f"your own model's weights load with --arch NAME --weights FILE")
    model = get_model(raw["arch"], dataset=raw["dataset"], num_classes=raw["num_classes"],
                      input_shape=raw["input_shape"])
    try:
        model.load_state_dict(raw["state_dict"])
    except RuntimeError as exc:
        raise ValueError(
            f"checkpoint {str(path)!r} does not match architecture {raw['arch']!r}: {exc}"
        ) from exc
    model.to(map_location).eval()
    return Checkpoint(model=model, arch=raw["arch"], dataset=raw["dataset"],
                      num_classes=int(raw["num_classes"]),
                      input_shape=tuple(raw["input_shape"]), train_noise=raw.get("train_noise"),
                      config=raw.get("config") or {}, epoch=int(raw.get("epoch", 0)), raw=raw)
