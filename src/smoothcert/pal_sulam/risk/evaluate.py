"""The smoothed risk Delta-hat_{alpha,beta} of [PS23]: the error rate of a majority vote.

Delta-hat is the plain error rate of the Monte Carlo smoothed classifier: for each test input x,
``n`` noise draws delta_1..delta_n from the smoothing noise (size beta), the base classifier's hard
predictions f(x + delta_k) are counted, the vote is the most frequent class, and the input is an
error iff the vote differs from its label. There is no abstention and no confidence bound (unlike
CERTIFY): this estimates the risk of the smoothed classifier itself, up to the Monte Carlo error
of a majority of n draws. Ties in the vote go to the lowest class index (numpy's argmax rule, as
in the authors' evaluation). beta = 0 means no noise: the vote is f(x).

The votes are counted by the certification's Monte Carlo engine
(``smoothcert.certify.sampling``), which never holds more than ``batch_size`` noisy inputs at
once.

Reproducibility: the draws for the input with dataset index ``idx`` come from a torch generator
seeded by ``numpy.random.SeedSequence([seed, idx])`` (``input_seed``), so they do not depend on
which other inputs share a batch, on the batch size, or on the order of evaluation. For
``n * dim <= 2**24`` an input's n draws are one call ``noise.sample(n)`` of its generator, as
in earlier releases, so grids computed then are reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from smoothcert.certify.sampling import MonteCarlo, eval_mode
from smoothcert.noises import Noise
from smoothcert.seeds import stream_seed
from smoothcert.stats import clopper_pearson_interval
from smoothcert.validation import check_int

__all__ = ["input_seed", "majority_vote", "vote_counts", "decided", "curtailed_majority",
           "curtailed_vote", "RiskEstimate", "smoothed_risk"]


def input_seed(seed: int, index: int) -> int:
    """The 64-bit seed of the noise draws for input ``index`` under the run's ``seed``."""
    return stream_seed(check_int("seed", seed, minimum=0), check_int("index", index, minimum=0))


def majority_vote(counts: np.ndarray) -> np.ndarray:
    """The most frequent class of each row of ``counts`` (m, classes); ties to the lowest index."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 1:
        raise ValueError(f"counts must have shape (inputs, classes), got {counts.shape}")
    return np.argmax(counts, axis=1).astype(np.int64)


def _decisions(model: torch.nn.Module, num_classes: int):
    """The model's argmax decisions, refusing a class outside [0, num_classes)."""

    def classify(batch: torch.Tensor) -> torch.Tensor:
        predictions = model(batch).argmax(dim=1)
        if predictions.numel() and int(predictions.max()) >= num_classes:
            raise ValueError(f"the model predicts class {int(predictions.max())}, but "
                             f"num_classes={num_classes}")
        return predictions

    return classify


def vote_counts(model: torch.nn.Module, inputs: torch.Tensor, indices: Sequence[int], *,
                noise: Noise | None, n: int, num_classes: int, seed: int,
                batch_size: int = 1000) -> np.ndarray:
    """Counts of the base classifier's predictions under ``n`` noise draws per input.

    ``inputs`` is a batch (m, ...) on the model's device, ``indices`` their dataset indices (which
    seed their draws). ``noise=None`` (beta = 0) evaluates each input once and gives it all ``n``
    votes. The model runs on at most ``batch_size`` noisy inputs at a time. Returns int64 (m,
    num_classes). Every submodule is put in eval mode and gets its own mode back afterwards.
    """
    n = check_int("n (noise draws per input)", n, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    m = inputs.shape[0]
    indices = [int(i) for i in indices]
    if len(indices) != m:
        raise ValueError(f"got {len(indices)} indices for {m} inputs")
    classify = _decisions(model, num_classes)
    if noise is None:
        with eval_mode(model), torch.inference_mode():
            predictions = torch.cat([classify(inputs[k:k + batch_size])
                                     for k in range(0, m, batch_size)])
        counts = torch.bincount(torch.arange(m, device=inputs.device) * num_classes
                                + predictions, minlength=m * num_classes)
        return (counts.reshape(m, num_classes) * n).cpu().numpy().astype(np.int64)
    engine = MonteCarlo(model, classify, noise, num_classes, batch_size)
    generators = [torch.Generator(device=inputs.device).manual_seed(input_seed(seed, idx))
                  for idx in indices]
    return engine.class_counts(inputs, n, generators)


def decided(counts: np.ndarray, remaining: int) -> np.ndarray:
    """Which rows of ``counts`` already have the majority vote they will have after
    ``remaining`` more draws, whatever those draws are.

    The leader (``majority_vote``: ties to the lowest index) keeps the vote iff no other class
    can overtake it or tie it from a higher index: for every other class c, even if all
    ``remaining`` draws go to c, c's count stays below the leader's, or equals it with c's index
    above the leader's.
    """
    counts = np.asarray(counts, dtype=np.int64)
    remaining = check_int("remaining", remaining, minimum=0)
    leader = majority_vote(counts)
    rows = np.arange(counts.shape[0])
    margin = counts[rows, leader][:, None] - counts - remaining
    classes = np.arange(counts.shape[1])[None, :]
    safe = (margin > 0) | ((margin == 0) & (classes > leader[:, None]))
    safe[rows, leader] = True
    return safe.all(axis=1)


def curtailed_majority(draw: Any, m: int, n: int, *, first: int | None = None,
                       step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The majority vote of ``n`` draws per input, stopping each input once its vote is decided.

    ``draw(k, active)`` must return the counts (len(active), classes) of ``k`` further draws for
    the inputs ``active`` (an int array of positions in 0..m-1), each input continuing its own
    stream of draws. The first round draws ``first`` (default ``n // 2 + 1``, the fewest that
    can decide a vote) for every input, each later round ``step`` more for the undecided ones,
    until each input is decided (``decided``) or has all ``n``. Curtailment changes no vote: the
    result is exactly the majority vote (ties to the lowest index) of the input's first ``n``
    draws of its stream, which the full count would give. Returns the votes (m,) and the draws
    each input used (m,).
    """
    m = check_int("m (inputs)", m, minimum=0)
    n = check_int("n (noise draws per input)", n, minimum=1)
    step = check_int("step", step, minimum=1)
    first = n // 2 + 1 if first is None else check_int("first", first, minimum=1)
    first = min(first, n)
    used = np.zeros(m, dtype=np.int64)
    votes = np.zeros(m, dtype=np.int64)
    counts: np.ndarray | None = None
    active = np.arange(m)
    drawn, take = 0, first   # every active input has drawn the same number so far
    while active.size:
        new = np.asarray(draw(take, active), dtype=np.int64)
        if new.shape[0] != active.size:
            raise ValueError(f"draw returned {new.shape[0]} rows for {active.size} inputs")
        if counts is None:
            counts = np.zeros((m, new.shape[1]), dtype=np.int64)
        counts[active] += new
        drawn += take
        used[active] = drawn
        stop = decided(counts[active], n - drawn) if drawn < n else np.ones(active.size, bool)
        votes[active[stop]] = majority_vote(counts[active[stop]])
        active = active[~stop]
        take = min(step, n - drawn)
    return votes, used


@dataclass(frozen=True)
class RiskEstimate:
    """``n_errors`` wrong votes among ``n`` test inputs."""

    n_errors: int
    n: int

    @property
    def error(self) -> float:
        return self.n_errors / self.n if self.n else float("nan")

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The two-sided Clopper-Pearson interval for the risk."""
        low, high = clopper_pearson_interval(self.n_errors, self.n, 1.0 - confidence)
        return float(low), float(high)


def smoothed_risk(model: torch.nn.Module, dataset: Any, *, noise: Noise | None, n: int,
                  num_classes: int, seed: int, indices: Iterable[int] | None = None,
                  device: torch.device | str = "cpu", batch_size: int = 1000) -> RiskEstimate:
    """Delta-hat: the error rate of the majority vote of ``n`` draws over ``dataset``.

    ``dataset[i]`` must return (input tensor, integer label); ``indices`` selects the inputs
    (default: all). The model must already be on ``device``. Several inputs share each forward
    pass (``batch_size // n`` of them), which does not change the result (see the module doc).
    """
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    per_batch = max(1, batch_size // (1 if noise is None else n))
    errors = 0
    for start in range(0, len(indices), per_batch):
        chunk = indices[start:start + per_batch]
        items = [dataset[i] for i in chunk]
        inputs = torch.stack([torch.as_tensor(x) for x, _ in items]).to(device)
        labels = np.asarray([int(y) for _, y in items], dtype=np.int64)
        counts = vote_counts(model, inputs, chunk, noise=noise, n=n, num_classes=num_classes,
                             seed=seed, batch_size=batch_size)
        errors += int(np.sum(majority_vote(counts) != labels))
    return RiskEstimate(n_errors=errors, n=len(indices))


def curtailed_vote(model: torch.nn.Module, inputs: torch.Tensor, indices: Sequence[int], *,
                   noise: Noise, n: int, num_classes: int, seed: int, batch_size: int = 1000,
                   step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The majority vote of ``n`` noise draws per input, as ``majority_vote(vote_counts(...))``
    gives it, but drawing only until each input's vote is decided (``curtailed_majority``).

    Each input draws from its own generator seeded by ``input_seed(seed, index)``, in rounds; the
    vote is that of the first ``n`` draws of this stream, so it is the same random variable as
    the full count's (a majority of ``n`` independent draws), for a fraction of the forward
    passes when most votes are lopsided (at least ``n // 2 + 1`` per input). Returns the votes
    (m,) and the draws used (m,).
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    indices = [int(i) for i in indices]
    if len(indices) != inputs.shape[0]:
        raise ValueError(f"got {len(indices)} indices for {inputs.shape[0]} inputs")
    engine = MonteCarlo(model, _decisions(model, num_classes), noise, num_classes, batch_size)
    generators = [torch.Generator(device=inputs.device).manual_seed(input_seed(seed, idx))
                  for idx in indices]

    def draw(k: int, active: np.ndarray) -> np.ndarray:
        return engine.class_counts(inputs[torch.as_tensor(active, device=inputs.device)], k,
                                   [generators[i] for i in active])

    return curtailed_majority(draw, inputs.shape[0], n, step=step)   # each round in eval mode
