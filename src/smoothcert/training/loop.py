"""Training base classifiers for randomized smoothing: noise augmentation and stability training.

The training noise is decoupled from the smoothing noise used at certification (Pal and Sulam
2023): a model is trained with one noise (``TrainConfig.noise``; None or size 0 means clean
training) and may be certified with any other. The training noise is recorded in the
checkpoint's ``train_noise`` and in the default output file name. The losses are described in
``smoothcert.training.steps``.

Reproducibility: every random choice of an epoch (example order, noise draws, augmentation) comes
from a stream derived from (seed, epoch), and the model is initialized from ``seed`` without
touching torch's global random state. A checkpoint is written atomically after every epoch with
the optimizer and scheduler states, so a killed run resumed with ``resume=True`` ends with the
same weights, bit for bit on CPU in one process, as an uninterrupted one. Several processes
(``torchrun``) train data-parallel: the same recipe, not the same bits (see ``train``).

Files: the checkpoint ``out`` and, beside it, the metrics (``output_files``: CSV and JSON). The
library draws no figure; ``smoothcert.plots.training.plot_training_curves`` draws the curves.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smoothcert.data import dataset_info, dataset_options, get_dataset
from smoothcert.models import get_model
from smoothcert.models.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from smoothcert.runs.atomic import write_text_atomic
from smoothcert.runs.distributed import (
    SINGLE_PROCESS,
    World,
    all_reduce_sum,
    broadcast_object,
    rank_batch_size,
    rank_device,
    wrap_model,
)
from smoothcert.training.config import (
    OPTIMIZERS,
    SCHEDULERS,
    SETTINGS,
    TrainConfig,
    build_training_noise,
    training_noise,
    upgrade_config,
)
from smoothcert.training.steps import (
    EVAL_NOISE,
    EVAL_SUBSET,
    TRAIN_SUBSET,
    Progress,
    evaluation_counts,
    run_epoch,
    stream,
    subset,
)

__all__ = ["TrainResult", "train", "output_files"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What ``train`` produced: the trained model (on the config's device, eval mode), the
    per-epoch metrics, the resolved config and the files written (checkpoint, metrics)."""

    model: nn.Module
    config: TrainConfig
    train_noise: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    checkpoint: Path
    metrics_csv: Path
    metrics_json: Path


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ValueError(f"device {name!r} is not available here ({exc})") from None
    return device



def output_files(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """The files beside checkpoint ``out``: the metrics CSV and JSON ``train`` writes, and the
    curves figure the command line draws (``plots.training.plot_training_curves``)."""
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
    saved = {k: v for k, v in _canonical(raw.get("config") or {}, config).items()
             if k not in SETTINGS}
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


def _canonical(recorded: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """A recorded configuration in the current form, its training noise described as
    ``TrainConfig.resolved`` describes it (so a noise recorded with only the shape parameters
    that were given compares equal to the same noise with its defaults spelled out)."""
    recorded = upgrade_config(recorded)
    if recorded.get("noise") is not None:
        dim = dataset_info(config.dataset, **config.dataset_options).dim
        try:
            recorded["noise"] = training_noise(build_training_noise(recorded["noise"], dim))
        except (TypeError, ValueError):
            pass  # not a noise of this version: compared as recorded, so the run is refused
    return recorded


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
    noise = build_training_noise(config.noise, info.dim)
    train_noise = noise.describe() if noise is not None else None
    train_idx = subset(len(train_set), config.max_train, config.seed, TRAIN_SUBSET)
    eval_idx = subset(len(test_set), config.max_eval, config.seed, EVAL_SUBSET)
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
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config)
    scheduler = SCHEDULERS[config.scheduler](optimizer, config)
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
        loss, train_acc = run_epoch(net, train_set, train_idx, config, optimizer, noise,
                                     epoch, device, progress, world)
        counts = evaluation_counts(
            model, test_set, eval_idx, config.batch_size, device, noise,
            stream(config.seed, 0, EVAL_NOISE, device, eval_rank), config.workers)
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

    csv_path, json_path, _ = output_files(out)
    if world.is_main and start >= config.epochs:
        # a finished run resumed: nothing trained, refresh the files
        _write_metrics(out, metrics, config, train_noise)
    model.eval()
    return TrainResult(model=model, config=config, train_noise=train_noise, metrics=metrics,
                       checkpoint=out, metrics_csv=csv_path, metrics_json=json_path)
