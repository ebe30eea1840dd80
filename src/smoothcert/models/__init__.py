"""Classifier architectures by name, each built for a dataset's input shape and classes.

>>> model = get_model("mnist_cnn", dataset="mnist")
>>> type(model[0]).__name__
'Normalize'

Every model is ``nn.Sequential(normalize, network)``: the first layer is a fixed ``Normalize``
with the dataset's mean and std, so inputs (and smoothing noise) are in pixel space and certified
radii are in pixel units. An architecture that does not fit a dataset's input shape raises
ValueError naming both.

A new architecture is a function ``build(shape, num_classes) -> nn.Module`` (the network
without the normalization layer) decorated with ``@register_model("name", fits=...)``, where
``fits(shape)`` returns None or the reason a (C, H, W) shape does not fit (see ``registry``).
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from smoothcert.data import DatasetInfo, dataset_info
from smoothcert.models.normalize import Normalize
from smoothcert.models.registry import ModelSpec, model_spec, register_model, registered_names

__all__ = ["get_model", "list_models", "register_model", "Normalize", "ModelSpec"]

for _module in ("mlp", "mnist_cnn", "lenet", "cifar_resnet", "wide_resnet", "imagenet_resnet"):
    importlib.import_module(f"{__name__}.{_module}")


def list_models() -> list[str]:
    """Names of all registered architectures."""
    return registered_names()


def get_model(arch: str, *, dataset: str | DatasetInfo, num_classes: int | None = None,
              input_shape: Sequence[int] | None = None, **dataset_options: Any) -> nn.Sequential:
    """A freshly initialized ``arch`` for ``dataset`` (a registered name or a ``DatasetInfo``).

    ``num_classes`` defaults to the dataset's; ``input_shape`` (C, H, W) overrides its shape
    (the channel count must agree with its mean/std). ``dataset_options`` are passed to
    ``dataset_info`` (e.g. ``dim`` of ``gaussian_mixture``). Returns
    ``nn.Sequential(normalize=Normalize(mean, std), network=...)``; noise is added before
    ``normalize``, so radii are in pixel units.
    """
    spec = model_spec(arch)
    if isinstance(dataset, DatasetInfo):
        if dataset_options:
            raise ValueError(f"dataset options {sorted(dataset_options)} need a dataset name, "
                             f"not a DatasetInfo")
        info = dataset
    else:
        info = dataset_info(dataset, **dataset_options)
    shape = tuple(int(s) for s in (info.shape if input_shape is None else input_shape))
    if len(shape) != 3 or shape[0] != len(info.mean):
        raise ValueError(
            f"input_shape must be (C, H, W) with C = {len(info.mean)} channels of dataset "
            f"{info.name!r}, got {input_shape!r}"
        )
    classes = info.num_classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    problem = spec.fits(shape)
    if problem:
        raise ValueError(
            f"architecture {arch!r} does not fit dataset {info.name!r} of shape {shape}: "
            f"{problem}"
        )
    if spec.normalize:
        normalize = Normalize(info.mean, info.std)
    else:
        normalize = Normalize((0.0,) * shape[0], (1.0,) * shape[0])
    return nn.Sequential(OrderedDict(normalize=normalize,
                                     network=spec.build(shape, classes)))
