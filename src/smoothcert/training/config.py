"""The configuration of a training run: the recipes, ``TrainConfig`` and the training noise.

The training noise is held as its description, ``{"name": family, "sigma": size, **shape
parameters}`` (what ``Noise.describe()`` gives, less the dimension, which the dataset fixes), or
None for clean training. ``training_noise`` is the one place that turns what a caller gives (a
``Noise``, a description, or None) into that description, and the one place that decides that a
training noise of size 0 means clean training (the clean end of a grid of training noises).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smoothcert.data import dataset_info, dataset_options
from smoothcert.models import list_models
from smoothcert.noises import Noise, get_noise
from smoothcert.validation import check_choice, check_float, check_int

__all__ = [
    "Recipe",
    "RECIPES",
    "DEFAULT_RECIPE",
    "TrainConfig",
    "training_noise",
    "build_training_noise",
    "default_run_name",
    "upgrade_config",
    "recorded_training_options",
]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An optimization recipe: optimizer, learning-rate schedule (stepped once per epoch),
    batch size and whether to use the dataset's training augmentation."""

    optimizer: str
    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    scheduler: str = "constant"
    step_gamma: float = 1.0
    batch_size: int = 64
    augment: bool = False


RECIPES: dict[str, Recipe] = {
    # Yang et al. (2020), Appendix D, after Cohen et al. (2019): CIFAR-10 and ImageNet
    "yang2020": Recipe("sgd", 0.1, momentum=0.9, nesterov=True, weight_decay=1e-4,
                       scheduler="cosine", batch_size=64, augment=True),
    # Pal and Sulam (2023), MNIST: Adadelta, learning rate times 0.7 after every epoch
    "pal_sulam2023": Recipe("adadelta", 1.0, scheduler="step", step_gamma=0.7, batch_size=64),
    # small networks on small data
    "adam": Recipe("adam", 1e-3, batch_size=64),
}
#: the recipe an architecture gets unless one is named; others get "yang2020"
DEFAULT_RECIPE = {"mnist_cnn": "pal_sulam2023", "mlp": "adam", "lenet": "adam"}

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                             nesterov=c.nesterov, weight_decay=c.weight_decay),
    "adadelta": lambda params, c: torch.optim.Adadelta(params, lr=c.lr,
                                                       weight_decay=c.weight_decay),
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
}
SCHEDULERS: dict[str, Callable[..., torch.optim.lr_scheduler.LRScheduler]] = {
    "cosine": lambda opt, c: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs),
    "step": lambda opt, c: torch.optim.lr_scheduler.StepLR(opt, step_size=1,
                                                           gamma=c.step_gamma),
    "constant": lambda opt, c: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=1.0),
}

#: config fields that do not change the result (a resumed run may differ in them)
SETTINGS = ("out", "resume", "device", "data_dir", "workers")
#: keys of a description that are not the noise's constructor arguments
_DERIVED = ("dim",)


def training_noise(noise: Noise | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The description of a training noise, or None for clean training.

    ``noise`` is a ``Noise``, a description ``{"name": family, "sigma": size, **shape}`` (or
    ``"scale"`` instead of ``"sigma"``; ``Noise.describe()`` dictionaries are accepted, their
    ``dim`` is dropped and ``scale`` kept only without ``sigma``; None values are dropped), or
    None. A size of 0 (sigma or scale) means clean training and gives None. Raises ValueError
    naming the value for a missing or negative size, or a noise of positive size without a
    family name. The family and its parameters are checked when the dimension is known
    (``build_training_noise``).
    """
    if noise is None:
        return None
    if isinstance(noise, Noise):
        return _plain({"name": noise.name, "sigma": noise.sigma, **noise.shape_params})
    if not isinstance(noise, Mapping):
        raise TypeError(f"the training noise must be a Noise, a description such as "
                        f"{{'name': 'gaussian', 'sigma': 0.5}} or None, got {noise!r}")
    description = {str(k): v for k, v in noise.items() if v is not None and k not in _DERIVED}
    if "sigma" in description:
        description.pop("scale", None)
    sizes = [k for k in ("sigma", "scale") if k in description]
    if not sizes:
        raise ValueError(f"the training noise {dict(noise)!r} needs a size: sigma (0 for clean "
                         f"training) or scale")
    size = check_float(f"training noise {sizes[0]}", description[sizes[0]], minimum=0.0)
    if size == 0:
        return None  # the one place where size 0 means clean training
    name = description.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a training noise of {sizes[0]} {size:g} needs a family name "
                         f"('name', --noise), got {dict(noise)!r}")
    return _plain(description)


def build_training_noise(description: Mapping[str, Any] | None, dim: int) -> Noise | None:
    """The ``Noise`` on R^dim of a description of ``training_noise`` (None: clean)."""
    if description is None:
        return None
    params = dict(description)
    return get_noise(params.pop("name"), dim=dim, **params)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Fields left None come from the ``recipe``
    (default: ``DEFAULT_RECIPE`` of the architecture, else "yang2020").

    ``noise``: the TRAINING noise, a ``Noise``, its description or None for clean training (see
    ``training_noise``; kept as the description ``{"name", "sigma", **shape}``).
    ``max_train``/``max_eval``: use a random subset (fixed by ``seed``) of the train/test split.
    ``out``: the checkpoint file (default ``runs/<default_run_name>.pt``); the metrics (CSV,
    JSON) go beside it. ``init_from``: a checkpoint of the same architecture to start from
    (fine-tuning, e.g. from a clean model). ``dataset_options``: passed to ``get_dataset``
    (e.g. ``{"classes": [0, 1]}``).
    """

    dataset: str
    arch: str
    noise: Any = None
    epochs: int = 1
    recipe: str | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    scheduler: str | None = None
    step_gamma: float | None = None
    augment: bool | None = None
    stability: bool = False
    stability_weight: float = 6.0
    noise_copies: int = 1
    init_from: str | None = None
    seed: int = 0
    max_train: int | None = None
    max_eval: int | None = None
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    out: str | None = None
    resume: bool = False
    device: str = "cpu"
    data_dir: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise", training_noise(self.noise))

    def resolved(self) -> TrainConfig:
        """This config with the recipe's values filled in, the training noise in its canonical
        description (checked on the dataset's dimension) and every field checked."""
        check_choice("architecture", self.arch, list_models())
        recipe_name = self.recipe or DEFAULT_RECIPE.get(self.arch, "yang2020")
        check_choice("recipe", recipe_name, sorted(RECIPES))
        recipe = dataclasses.asdict(RECIPES[recipe_name])
        filled = {key: recipe[key] if getattr(self, key) is None else getattr(self, key)
                  for key in recipe}
        if self.augment is None:
            # the recipe's augmentation only where the dataset has one
            filled["augment"] = recipe["augment"] and "augment" in dataset_options(self.dataset)
        options = _plain(dict(self.dataset_options))
        noise = self.noise
        if noise is not None:
            dim = dataset_info(self.dataset, **options).dim
            noise = training_noise(build_training_noise(noise, dim))
        config = dataclasses.replace(self, recipe=recipe_name, noise=noise,
                                     dataset_options=options, **filled)
        if config.out is None:
            config = dataclasses.replace(
                config, out=str(Path("runs") / f"{default_run_name(config)}.pt"))
        config._check()
        return config

    def _check(self) -> None:
        for name in ("epochs", "batch_size", "noise_copies"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("max_train", "max_eval"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_float("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_float("stability_weight", self.stability_weight, minimum=0.0)
        check_choice("optimizer", self.optimizer, sorted(OPTIMIZERS))
        check_choice("scheduler", self.scheduler, sorted(SCHEDULERS))
        if self.noise is None and (self.stability or self.noise_copies > 1):
            raise ValueError("stability training and noise_copies > 1 need a training noise "
                             "(of size > 0)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return _plain(dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """The fields that determine the result (all but where and how it runs)."""
        return {k: v for k, v in self.to_dict().items() if k not in SETTINGS}


def upgrade_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration recorded in a checkpoint, in the current form: configurations written
    before the training noise was held as its description (fields ``noise`` (family name),
    ``train_sigma`` and ``noise_params``) get the description (None when ``train_sigma`` is 0)."""
    config = dict(config)
    if "train_sigma" in config:
        sigma = config.pop("train_sigma")
        name = config.pop("noise", None)
        params = config.pop("noise_params", None) or {}
        config["noise"] = training_noise({"name": name, "sigma": sigma, **params})
    return config


def recorded_training_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's configuration (current or earlier form) with the training noise spread
    into flat options, as a sweep or the command line names them: ``noise`` (family name; absent
    for clean training), ``train_sigma`` (0 for clean training) and the shape parameters."""
    config = upgrade_config(config)
    noise = config.pop("noise", None)
    if noise is None:
        return {**config, "train_sigma": 0.0}
    params = dict(noise)
    return {**config, "noise": params.pop("name"), "train_sigma": params.pop("sigma"), **params}


def _plain(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python, recursively: values JSON and weights_only
    torch.load both accept."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def default_run_name(config: TrainConfig) -> str:
    """``<dataset>[-classes..]-<arch>-<training noise>[-stability][-copiesK]``, e.g.
    ``cifar10-wrn40_2-uniform-sigma0.5-stability`` or ``mnist-mnist_cnn-clean``."""
    parts = [config.dataset]
    classes = config.dataset_options.get("classes")
    if classes is not None:
        parts.append("classes" + "_".join(str(c) for c in classes))
    parts.append(config.arch)
    if config.noise is None:
        parts.append("clean")
    else:
        shape = {k: v for k, v in config.noise.items() if k not in ("name", "sigma", "scale")}
        params = "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{k}{v}"
                         for k, v in sorted(shape.items()))
        size = (f"sigma{config.noise['sigma']:g}" if "sigma" in config.noise
                else f"scale{config.noise['scale']:g}")
        parts.append(f"{config.noise['name']}{params}-{size}")
    if config.stability:
        parts.append("stability")
    if config.noise_copies > 1:
        parts.append(f"copies{config.noise_copies}")
    return "-".join(parts)
