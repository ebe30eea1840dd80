"""One epoch of training and the per-epoch evaluation: losses, noisy copies, batches, streams.

- Noise augmentation (Cohen et al. 2019; Yang et al. 2020, Section 6): every example gets a fresh
  draw of the training noise's transformation T(x) (x + delta for additive noise), loss =
  CE(f(T(x)), y). The noise acts in pixel space, before the model's normalization layer, and
  the result is not clipped.
- ``noise_copies`` K (Pal and Sulam use 100): each example is repeated K times in its batch, each
  copy with its own draw, so a batch of B examples is B*K noisy inputs.
- Stability training (Li et al. 2019; Yang et al. 2020): two independent draws x1, x2;
  loss = CE(f(x1), y) + 6 * KL(softmax f(x1) || softmax f(x2)). Both draws go through the model
  in one forward pass (one batch of 2B inputs).

Every random choice of an epoch (example order, noise draws) comes from the stream
``smoothcert.seeds.torch_generator(seed, epoch, stream[, rank], bits=63)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smoothcert.certify.sampling import eval_mode
from smoothcert.noises import Noise
from smoothcert.runs.distributed import World, all_reduce_sum, rank_batch_size, rank_order
from smoothcert.seeds import torch_generator
from smoothcert.training.config import TrainConfig

__all__ = [
    "Progress",
    "TrainingDivergedError",
    "stability_loss",
    "noisy_copies",
    "evaluate",
]

T = TypeVar("T")
#: ``progress(batches, total, description)`` may wrap the batch iterator (a progress bar)
Progress = Callable[[Iterable[T], int, str], Iterable[T]]

#: random streams of an epoch, derived from (seed, epoch, stream)
SHUFFLE, NOISE, EVAL_NOISE, TRAIN_SUBSET, EVAL_SUBSET = range(5)


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


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
    the caller draws the noise independently for every row."""
    if copies == 1:
        return x, y
    return x.repeat_interleave(copies, dim=0), y.repeat_interleave(copies, dim=0)


def stream(seed: int, epoch: int, kind: int, device: torch.device,
           rank: int | None = None) -> torch.Generator:
    """The generator of one random stream; ``rank`` (a process of a distributed run) gives
    each process its own noise. 63-bit seeds, as every checkpoint so far was trained with."""
    key = (seed, epoch, kind) if rank is None else (seed, epoch, kind, rank)
    return torch_generator(*key, device=device, bits=63)


def subset(n: int, limit: int | None, seed: int, kind: int) -> torch.Tensor:
    """A random subset of ``limit`` of the indices 0..n-1 (all when ``limit`` is None), sorted."""
    if limit is None or limit >= n:
        return torch.arange(n)
    perm = torch.randperm(n, generator=stream(seed, 0, kind, torch.device("cpu")))
    return perm[:limit].sort().values


def batches(dataset: Any, indices: torch.Tensor, batch_size: int, workers: int,
            pin: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The items ``indices`` of ``dataset`` in batches, in this order."""
    chunks = indices.split(batch_size)
    if hasattr(dataset, "get_batch") and workers == 0:
        for chunk in chunks:
            yield dataset.get_batch(chunk)
        return
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks],
                                         num_workers=workers, pin_memory=pin)
    yield from loader


@torch.no_grad()
def evaluation_counts(model: nn.Module, dataset: Any, indices: torch.Tensor, batch_size: int,
                      device: torch.device, noise: Noise | None,
                      generator: torch.Generator | None, workers: int
                      ) -> tuple[int, int, int]:
    """(correct on clean inputs, correct with one noise draw each, number of inputs)."""
    correct = correct_noisy = total = 0
    with eval_mode(model):
        for x, y in batches(dataset, indices, batch_size, workers, device.type == "cuda"):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += int((model(x).argmax(1) == y).sum())
            if noise is not None:
                correct_noisy += int((model(noise.perturb(x, generator)).argmax(1) == y).sum())
            total += len(y)
    return correct, correct_noisy, total


def evaluate(model: nn.Module, dataset: Any, *, indices: torch.Tensor | None = None,
             batch_size: int = 256, device: torch.device | str = "cpu",
             noise: Noise | None = None, generator: torch.Generator | None = None,
             workers: int = 0) -> tuple[float, float | None]:
    """Accuracy of ``model`` on ``dataset`` (items ``indices``, default all): on clean inputs,
    and with one draw of ``noise`` per input (None when no noise is given). The model is put in
    eval mode and every submodule's own mode restored afterwards."""
    indices = torch.arange(len(dataset)) if indices is None else indices
    correct, correct_noisy, total = evaluation_counts(
        model, dataset, indices, batch_size, torch.device(device), noise, generator, workers)
    return correct / total, (correct_noisy / total if noise is not None else None)


def run_epoch(model: nn.Module, dataset: Any, indices: torch.Tensor, config: TrainConfig,
              optimizer: torch.optim.Optimizer, noise: Noise | None, epoch: int,
              device: torch.device, progress: Progress | None, world: World
              ) -> tuple[float, float]:
    """One pass over ``indices`` in a random order; returns (mean loss, accuracy) over the noisy
    training inputs of all processes. ``model`` may be wrapped for data-parallel training."""
    model.train()
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch, config.seed)
    order = indices[torch.randperm(len(indices), generator=stream(
        config.seed, epoch, SHUFFLE, torch.device("cpu")))]
    order = rank_order(order, world)
    batch_size = rank_batch_size(config.batch_size, world)
    noise_gen = stream(config.seed, epoch, NOISE, device,
                       world.rank if world.distributed else None)
    items: Iterable = batches(dataset, order, batch_size, config.workers, device.type == "cuda")
    if progress is not None:
        items = progress(items, math.ceil(len(order) / batch_size),
                         f"epoch {epoch + 1}/{config.epochs}")
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    for step, (x, y) in enumerate(items):
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
