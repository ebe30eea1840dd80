"""Training base classifiers for randomized smoothing: noise augmentation and stability training.

The training noise is decoupled from the smoothing noise used at certification (Pal and Sulam
2023): a model is trained with one noise (family ``noise``, size ``train_sigma``; 0 means clean
training) and may be certified with any other. The training noise is recorded in the
checkpoint's ``train_noise`` and in the default output file name.

- Noise augmentation (Cohen et al. 2019; Yang et al. 2020, Section 6): every example gets a fresh
  draw delta of the noise, loss = CE(f(x + delta), y). Noise is added in pixel space, before the
  model's normalization layer, and is not clipped.
- ``noise_copies`` K (Pal and Sulam use 100): each example is repeated K times in its batch, each
  copy with its own draw, so a batch of B examples is B*K noisy inputs.
- Stability training (Li et al. 2019; Yang et al. 2020): two independent draws x1, x2;
  loss = CE(f(x1), y) + 6 * KL(softmax f(x1) || softmax f(x2)). Both draws go through the model
  in one forward pass (one batch of 2B inputs).

Reproducibility: every random choice of an epoch (example order, noise draws, augmentation) comes
from a stream derived from (seed, epoch), and the model is initialized from ``seed`` without
touching torch's global random state. A checkpoint is written atomically after every epoch with
the optimizer and scheduler states, so a killed run resumed with ``resume=True`` ends with the
same weights, bit for bit on CPU in one process, as an uninterrupted one. Several processes
(``torchrun``) train data-parallel: the same recipe, not the same bits (see ``train``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smoothcert.data import dataset_options, get_dataset
from smoothcert.models import get_model, list_models
from smoothcert.models.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from smoothcert.noises import Noise, get_noise
from smoothcert.runs.atomic import write_text_atomic
from smoothcert.runs.distributed import (
    SINGLE_PROCESS,
    World,
    all_reduce_sum,
    broadcast_object,
    rank_batch_size,
    rank_device,
    rank_order,
    wrap_model,
)

__all__ = [
    "TrainConfig",
    "TrainResult",
    "Recipe",
    "RECIPES",
    "TrainingDivergedError",
    "train",
    "stability_loss",
    "noisy_copies",
    "evaluate",
    "default_run_name",
    "output_files",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[Iterable[T], int, str], Iterable[T]]


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


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

_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                             nesterov=c.nesterov, weight_decay=c.weight_decay),
    "adadelta": lambda params, c: torch.optim.Adadelta(params, lr=c.lr,
                                                       weight_decay=c.weight_decay),
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
}
_SCHEDULERS: dict[str, Callable[..., torch.optim.lr_scheduler.LRScheduler]] = {
    "cosine": lambda opt, c: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs),
    "step": lambda opt, c: torch.optim.lr_scheduler.StepLR(opt, step_size=1,
                                                           gamma=c.step_gamma),
    "constant": lambda opt, c: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=1.0),
}

#: random streams of an epoch, derived from (seed, epoch, stream)
_SHUFFLE, _NOISE, _EVAL_NOISE, _TRAIN_SUBSET, _EVAL_SUBSET = range(5)
#: config fields that do not change the result (a resumed run may differ in them)
_SETTINGS = ("out", "resume", "device", "data_dir", "workers")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Fields left None come from the ``recipe``
    (default: ``DEFAULT_RECIPE`` of the architecture, else "yang2020").

    ``noise``/``train_sigma``/``noise_params``: the TRAINING noise (``train_sigma`` 0: clean).
    ``max_train``/``max_eval``: use a random subset (fixed by ``seed``) of the train/test split.
    ``out``: the checkpoint file (default ``runs/<default_run_name>.pt``); metrics (CSV, JSON)
    and the curves (PNG) go beside it. ``init_from``: a checkpoint of the same architecture to
    start from (fine-tuning, e.g. from a clean model). ``dataset_options``: passed to
    ``get_dataset`` (e.g. ``{"classes": [0, 1]}``).
    """

    dataset: str
    arch: str
    noise: str = "gaussian"
    train_sigma: float = 0.0
    noise_params: dict[str, Any] = dataclasses.field(default_factory=dict)
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

    def resolved(self) -> TrainConfig:
        """This config with the recipe's values filled in and every field checked."""
        if self.arch not in list_models():
            raise ValueError(f"unknown architecture {self.arch!r}; choose from "
                             f"{', '.join(list_models())}")
        recipe_name = self.recipe or DEFAULT_RECIPE.get(self.arch, "yang2020")
        if recipe_name not in RECIPES:
            raise ValueError(f"unknown recipe {recipe_name!r}; choose from "
                             f"{', '.join(sorted(RECIPES))}")
        recipe = dataclasses.asdict(RECIPES[recipe_name])
        filled = {key: recipe[key] if getattr(self, key) is None else getattr(self, key)
                  for key in recipe}
        if self.augment is None:
            # the recipe's augmentation only where the dataset has one
            filled["augment"] = recipe["augment"] and "augment" in dataset_options(self.dataset)
        out = self.out
        config = dataclasses.replace(self, recipe=recipe_name, **filled)
        if out is None:
            out = str(Path("runs") / f"{default_run_name(config)}.pt")
        config = dataclasses.replace(config, out=out,
                                     dataset_options=_plain(dict(self.dataset_options)),
                                     noise_params=_plain(dict(self.noise_params)))
        config._check()
        return config

    def _check(self) -> None:
        def positive_int(name: str, value: Any, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size)
        positive_int("noise_copies", self.noise_copies)
        positive_int("max_train", self.max_train, allow_none=True)
        positive_int("max_eval", self.max_eval, allow_none=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not (math.isfinite(self.train_sigma) and self.train_sigma >= 0):
            raise ValueError(f"train_sigma must be a finite number >= 0 (0: clean training), "
                             f"got {self.train_sigma!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from "
                             f"{', '.join(sorted(_OPTIMIZERS))}")
        if self.scheduler not in _SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose from "
                             f"{', '.join(sorted(_SCHEDULERS))}")
        if self.train_sigma == 0 and (self.stability or self.noise_copies > 1):
            raise ValueError("stability training and noise_copies > 1 need a training noise "
                             "(train_sigma > 0)")
        if not self.stability_weight >= 0:
            raise ValueError(f"stability_weight must be >= 0, got {self.stability_weight!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the fields."""
        return _plain(dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """The fields that determine the result (all but where and how it runs)."""
        return {k: v for k, v in self.to_dict().items() if k not in _SETTINGS}


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
    if config.train_sigma == 0:
        parts.append("clean")
    else:
        params = "".join(f"-{k}{v:g}" if isinstance(v, float) else f"-{k}{v}"
                         for k, v in sorted(config.noise_params.items()))
        parts.append(f"{config.noise}{params}-sigma{config.train_sigma:g}")
    if config.stability:
        parts.append("stability")
    if config.noise_copies > 1:
        parts.append(f"copies{config.noise_copies}")
    return "-".join(parts)


@dataclasses.dataclass
class TrainResult:
    """What ``train`` produced: the trained model (on the config's device, eval mode), the
    per-epoch metrics, the resolved config and the files written."""

    model: nn.Module
    config: TrainConfig
    train_noise: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    checkpoint: Path
    metrics_csv: Path
    metrics_json: Path
    plot: Path


# ------------------------------------------------------------------------------------ losses
def stability_loss(logits1: torch.Tensor, logits2: torch.Tensor, target: torch.Tensor,
                   weight: float = 6.0) -> torch.Tensor:
    """CE(f(x1), y) + weight * KL(softmax f(x1) || softmax f(x2)), averaged over the batch.

    KL(p || q) = sum_c p_c (log p_c - log q_c); gradients flow through both draws.
    """
    log_p1 = F.log_softmax(logits1, dim=1)
    log_p2 = F.log_softmax(logits2, dim=1)
    kl = F.kl_div(log_p2, log_p1, log_target=True, reduction="batchmean")
    return F.nll_loss(log_p1, target) + weight * kl


def noisy_copies(x: torch.Tensor, y: torch.Tensor, copies: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example repeated ``copies`` times in a row (x0, x0, ..., x1, x1, ...), labels alike;
    the caller adds an independent noise draw to every row."""
    if copies == 1:
        return x, y
    return x.repeat_interleave(copies, dim=0), y.repeat_interleave(copies, dim=0)


# ------------------------------------------------------------------------------------ helpers
def _stream_seed(seed: int, epoch: int, stream: int, rank: int | None = None) -> int:
    key = [seed, epoch, stream] + ([] if rank is None else [rank])
    state = np.random.SeedSequence(key).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))  # 63 bits: any torch generator accepts it


def _generator(seed: int, epoch: int, stream: int, device: torch.device,
               rank: int | None = None) -> torch.Generator:
    """The generator of one random stream; ``rank`` (a process of a distributed run) gives
    each process its own noise."""
    generator = torch.Generator(device=device)
    generator.manual_seed(_stream_seed(seed, epoch, stream, rank))
    return generator


def _subset(n: int, limit: int | None, seed: int, stream: int) -> torch.Tensor:
    if limit is None or limit >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=_generator(seed, 0, stream, torch.device("cpu")))
    return perm[:limit].sort().values


def _batches(dataset: Any, indices: torch.Tensor, batch_size: int, workers: int,
             pin: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    chunks = indices.split(batch_size)
    if hasattr(dataset, "get_batch") and workers == 0:
        for chunk in chunks:
            yield dataset.get_batch(chunk)
        return
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks],
                                         num_workers=workers, pin_memory=pin)
    yield from loader


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {name!r} is not available here ({exc})") from None
    return device


def _train_noise(config: TrainConfig, dim: int) -> Noise | None:
    if config.train_sigma == 0:
        return None
    return get_noise(config.noise, dim=dim, sigma=config.train_sigma, **config.noise_params)


def output_files(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """The files written beside checkpoint ``out``: metrics CSV, metrics JSON, curves PNG."""
    out = Path(out)
    return (out.with_suffix(".metrics.csv"), out.with_suffix(".metrics.json"),
            out.with_suffix(".curves.png"))


_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "test_accuracy",
            "test_noisy_accuracy", "seconds")


def _write_metrics(out: Path, metrics: list[dict[str, Any]], config: TrainConfig,
                   train_noise: dict[str, Any] | None) -> None:
    csv_path, json_path, _ = output_files(out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row.get(k)) for k in _COLUMNS}
                     for row in metrics)
    write_text_atomic(csv_path, buffer.getvalue())
    record = {"config": config.to_dict(), "train_noise": train_noise, "metrics": metrics}
    write_text_atomic(json_path, json.dumps(record, indent=2) + "\n")


def _plot_curves(path: Path, metrics: list[dict[str, Any]], title: str) -> Path:
    from matplotlib.figure import Figure  # not pyplot: no global backend or state
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in metrics]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [row["train_loss"] for row in metrics], marker="o")
    loss_ax.set(xlabel="epoch", ylabel="training loss")
    acc_ax.plot(epochs, [row["train_accuracy"] for row in metrics], marker="o",
                label="train (noisy)")
    acc_ax.plot(epochs, [row["test_accuracy"] for row in metrics], marker="o", label="test")
    noisy = [row["test_noisy_accuracy"] for row in metrics]
    if any(v is not None for v in noisy):
        acc_ax.plot(epochs, [math.nan if v is None else v for v in noisy], marker="o",
                    label="test (noisy)")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


@torch.no_grad()
def _evaluation_counts(model: nn.Module, dataset: Any, indices: torch.Tensor, batch_size: int,
                       device: torch.device, noise: Noise | None,
                       generator: torch.Generator | None, workers: int
                       ) -> tuple[int, int, int]:
    """(correct on clean inputs, correct with one noise draw each, number of inputs)."""
    was_training = model.training
    model.eval()
    correct = correct_noisy = total = 0
    try:
        for x, y in _batches(dataset, indices, batch_size, workers, device.type == "cuda"):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += int((model(x).argmax(1) == y).sum())
            if noise is not None:
                noisy = noise.perturb(x, generator)
                correct_noisy += int((model(noisy).argmax(1) == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    return correct, correct_noisy, total


def evaluate(model: nn.Module, dataset: Any, *, indices: torch.Tensor | None = None,
             batch_size: int = 256, device: torch.device | str = "cpu",
             noise: Noise | None = None, generator: torch.Generator | None = None,
             workers: int = 0) -> tuple[float, float | None]:
    """Accuracy of ``model`` on ``dataset`` (items ``indices``, default all): on clean inputs,
    and with one draw of ``noise`` per input (None when no noise is given). The model is put in
    eval mode and its mode restored afterwards."""
    indices = torch.arange(len(dataset)) if indices is None else indices
    correct, correct_noisy, total = _evaluation_counts(
        model, dataset, indices, batch_size, torch.device(device), noise, generator, workers)
    return correct / total, (correct_noisy / total if noise is not None else None)


# ------------------------------------------------------------------------------------ training
def _run_epoch(model: nn.Module, dataset: Any, indices: torch.Tensor, config: TrainConfig,
               optimizer: torch.optim.Optimizer, noise: Noise | None, epoch: int,
               device: torch.device, progress: Progress | None, world: World
               ) -> tuple[float, float]:
    """One pass over ``indices`` in a random order; returns (mean loss, accuracy) over the noisy
    training inputs of all processes. ``model`` may be wrapped for data-parallel training."""
    model.train()
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch, config.seed)
    order = indices[torch.randperm(len(indices), generator=_generator(
        config.seed, epoch, _SHUFFLE, torch.device("cpu")))]
    order = rank_order(order, world)
    batch_size = rank_batch_size(config.batch_size, world)
    noise_gen = _generator(config.seed, epoch, _NOISE, device,
                           world.rank if world.distributed else None)
    batches: Iterable = _batches(dataset, order, batch_size, config.workers,
                                 device.type == "cuda")
    if progress is not None:
        batches = progress(batches, math.ceil(len(order) / batch_size),
                           f"epoch {epoch + 1}/{config.epochs}")
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    for step, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x, y = noisy_copies(x, y, config.noise_copies)
        if noise is None:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        elif config.stability:
            both = torch.cat([noise.perturb(x, noise_gen), noise.perturb(x, noise_gen)])
            logits, logits2 = model(both).chunk(2)
            loss = stability_loss(logits, logits2, y, config.stability_weight)
        else:
            logits = model(noise.perturb(x, noise_gen))
            loss = F.cross_entropy(logits, y)
        # summed over the processes before the check, so that all of them stop together
        step_loss, step_correct, step_seen = all_reduce_sum(np.array(
            [loss.item() * len(y), int((logits.argmax(1) == y).sum()), len(y)],
            dtype=np.float64), device).tolist()
        if not math.isfinite(step_loss):
            kept = (f"the last good checkpoint ({epoch} epochs) is kept at {config.out!r}"
                    if epoch else "no checkpoint was written")
            raise TrainingDivergedError(
                f"training loss is {step_loss / step_seen} at epoch {epoch + 1}, batch "
                f"{step + 1} (lr {optimizer.param_groups[0]['lr']:g}); training stopped, "
                f"{kept}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += step_loss
        correct += step_correct
        seen += step_seen
    return loss_sum / seen, correct / seen


def _check_init_checkpoint(path: str, config: TrainConfig, num_classes: int,
                           shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    problems = []
    if checkpoint.arch != config.arch:
        problems.append(f"architecture {checkpoint.arch!r}, not {config.arch!r}")
    if checkpoint.num_classes != num_classes:
        problems.append(f"{checkpoint.num_classes} classes, not {num_classes}")
    if tuple(checkpoint.input_shape) != tuple(shape):
        problems.append(f"input shape {tuple(checkpoint.input_shape)}, not {tuple(shape)}")
    if problems:
        raise ValueError(f"cannot start from checkpoint {path!r}: it has "
                         f"{'; '.join(problems)}")
    return checkpoint.model.state_dict()


def _read_resume(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    """The state to resume from ``path``: None if there is no checkpoint yet; FileExistsError
    if there is one and ``config.resume`` is False; ValueError if it does not match."""
    if not path.exists():
        return None
    if not config.resume:
        raise FileExistsError(f"checkpoint {str(path)!r} already exists; resume it "
                              f"(resume=True, --resume) or choose another out")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"cannot resume from {str(path)!r}: not readable ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"cannot resume from {str(path)!r}: not a smoothcert checkpoint")
    saved = {k: v for k, v in (raw.get("config") or {}).items() if k not in _SETTINGS}
    wanted = config.identity()
    differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differ:
        details = ", ".join(f"{k}: {saved.get(k)!r} in the checkpoint vs {wanted.get(k)!r}"
                            for k in differ)
        raise ValueError(f"cannot resume {str(path)!r} with a different configuration "
                         f"({details}); choose another out")
    for key in ("optimizer", "scheduler", "metrics"):
        if key not in raw:
            raise ValueError(f"cannot resume from {str(path)!r}: it has no {key} state")
    return raw


def _shared_resume_state(path: Path, config: TrainConfig, world: World,
                         device: torch.device) -> dict[str, Any] | None:
    """``_read_resume`` on rank 0, its outcome (state or error) handed to every process."""
    outcome: tuple[dict[str, Any] | None, Exception | None] = (None, None)
    if world.is_main:
        try:
            outcome = (_read_resume(path, config), None)
        except (FileExistsError, ValueError) as exc:
            outcome = (None, exc)
    state, error = broadcast_object(outcome, device)
    if error is not None:
        raise error
    return state


def train(config: TrainConfig, *, progress: Progress | None = None,
          on_epoch_end: Callable[[dict[str, Any], nn.Module], None] | None = None,
          world: World | None = None) -> TrainResult:
    """Train ``config.arch`` on ``config.dataset`` with the training noise, checkpointing every
    epoch; see the module docstring for the losses and the reproducibility guarantee.

    ``progress(batches, total, description)`` may wrap the batch iterator (a progress bar);
    ``on_epoch_end(metrics_row, model)`` is called after each epoch's checkpoint is written.
    Raises FileExistsError if ``out`` exists and ``resume`` is False, ValueError for a bad
    config or a checkpoint that does not match it, and TrainingDivergedError (keeping the last
    good checkpoint) if the loss becomes NaN or infinite.

    ``world``: this process's place in a data-parallel run (call ``train`` in every process,
    inside ``smoothcert.runs.distributed.process_group``). Each process takes ``batch_size / N``
    examples of every batch and draws its own noise; DistributedDataParallel averages the
    gradients, so a step is the single-process step on the same examples. Rank 0 reads the
    checkpoint to resume and writes the checkpoint, metrics and curves; the metrics and the
    per-epoch evaluation (split between the processes) cover all of them.
    """
    world = SINGLE_PROCESS if world is None else world
    config = config.resolved()
    device = rank_device(_device(config.device), world)
    rank_batch_size(config.batch_size, world)  # fail early if the batch cannot be split
    out = Path(config.out)
    resume_state = _shared_resume_state(out, config, world, device)
    options = {**config.dataset_options}
    if "augment" in dataset_options(config.dataset):
        options["augment"] = config.augment
    elif config.augment:
        raise ValueError(f"dataset {config.dataset!r} has no training augmentation; "
                         f"set augment=False")
    train_set = get_dataset(config.dataset, "train", root=config.data_dir, **options)
    test_options = {k: v for k, v in options.items() if k != "augment"}
    test_set = get_dataset(config.dataset, "test", root=config.data_dir, **test_options)
    info = train_set.info
    noise = _train_noise(config, info.dim)
    train_noise = noise.describe() if noise is not None else None
    train_idx = _subset(len(train_set), config.max_train, config.seed, _TRAIN_SUBSET)
    eval_idx = _subset(len(test_set), config.max_eval, config.seed, _EVAL_SUBSET)
    eval_idx = eval_idx[world.rank::world.size]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = get_model(config.arch, dataset=info)
    if resume_state is not None:
        model.load_state_dict(resume_state["state_dict"])
    elif config.init_from is not None:
        model.load_state_dict(_check_init_checkpoint(config.init_from, config,
                                                     info.num_classes, info.shape))
    model.to(device)
    net = wrap_model(model, world, device)  # train through it; evaluate and save ``model``
    optimizer = _OPTIMIZERS[config.optimizer](model.parameters(), config)
    scheduler = _SCHEDULERS[config.scheduler](optimizer, config)
    metrics: list[dict[str, Any]] = []
    start = 0
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        metrics = list(resume_state["metrics"])
        start = int(resume_state["epoch"])
        if world.is_main:
            logger.info("resuming %s after epoch %d of %d", out, start, config.epochs)

    eval_rank = world.rank if world.distributed else None
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        loss, train_acc = _run_epoch(net, train_set, train_idx, config, optimizer, noise,
                                     epoch, device, progress, world)
        counts = _evaluation_counts(
            model, test_set, eval_idx, config.batch_size, device, noise,
            _generator(config.seed, 0, _EVAL_NOISE, device, eval_rank), config.workers)
        correct, correct_noisy, total = all_reduce_sum(np.array(counts), device).tolist()
        scheduler.step()
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss, "train_accuracy": train_acc,
               "test_accuracy": correct / total,
               "test_noisy_accuracy": correct_noisy / total if noise is not None else None,
               "seconds": time.perf_counter() - began}
        metrics.append(row)
        if world.is_main:
            save_checkpoint(out, model=model, arch=config.arch, dataset=config.dataset,
                            num_classes=info.num_classes, input_shape=info.shape,
                            train_noise=train_noise, config=config.to_dict(), epoch=epoch + 1,
                            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                            rng={"seed": config.seed,
                                 "streams": "numpy SeedSequence([seed, epoch, stream, (rank)])"},
                            metrics=metrics)
            _write_metrics(out, metrics, config, train_noise)
            logger.info("epoch %d/%d: loss %.4f, train accuracy %.4f, test accuracy %.4f%s, "
                        "lr %.3g, %.1f s", epoch + 1, config.epochs, loss, train_acc,
                        row["test_accuracy"],
                        "" if noise is None else
                        f", noisy test accuracy {row['test_noisy_accuracy']:.4f}",
                        lr, row["seconds"])
        if on_epoch_end is not None:
            on_epoch_end(row, model)

    csv_path, json_path, png_path = output_files(out)
    if world.is_main:
        if start >= config.epochs:  # a finished run resumed: nothing trained, refresh the files
            _write_metrics(out, metrics, config, train_noise)
        _plot_curves(png_path, metrics, default_run_name(config))
    model.eval()
    return TrainResult(model=model, config=config, train_noise=train_noise, metrics=metrics,
                       checkpoint=out, metrics_csv=csv_path, metrics_json=json_path,
                       plot=png_path)
