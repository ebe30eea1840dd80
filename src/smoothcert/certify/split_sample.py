"""Certifying one input with its n samples split between processes ([CRK19] CERTIFY, distributed).

Sharding the inputs (``smoothcert.runs.shards``) keeps every process busy only while there are at
least as many inputs as processes. For a few expensive inputs (ImageNet, n = 100,000 and more),
``certify_split`` splits the samples of each input instead: the n0 selection samples and the n
estimation samples are cut into chunks of ``chunk`` samples, chunk c of a phase drawing its noise
from a generator seeded by (seed, idx, phase, c); process r classifies the chunks c = r, r + N,
...; the class counts are summed over the processes (an all-reduce) before the top class is
chosen and before the confidence bound is computed, so every process returns the same
certificate.

What holds:

- the samples are independent draws of the noise (distinct streams of
  ``numpy.random.SeedSequence``), so the certificate carries [CRK19]'s guarantee at level alpha;
- the certificate depends on (seed, idx, chunk) and the base classifier alone, not on the number
  of processes (up to the floating-point behaviour of the model on different devices): one
  process gives the same result as eight;
- it is not the certificate of ``SmoothedClassifier.certify`` with ``input_generator(seed, idx)``
  (one stream per input); runs of the two kinds are different runs, equally valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from smoothcert.certify.certificate import Certificate, certificates_from_counts, check_norms
from smoothcert.norms import Norm
from smoothcert.runs.distributed import SINGLE_PROCESS, World, all_reduce_sum
from smoothcert.seeds import torch_generator
from smoothcert.stats import check_alpha, check_sample_count, lower_confidence_bound
from smoothcert.validation import check_int

if TYPE_CHECKING:
    from smoothcert.certify.classifier import SmoothedClassifier

__all__ = ["certify_split", "chunk_generator", "split_counts", "SELECTION", "ESTIMATION",
           "DEFAULT_CHUNK"]

#: the phases of CERTIFY, each with its own noise streams
SELECTION, ESTIMATION = 0, 1
#: samples per chunk: a few forward batches, many chunks per process for n = 100,000
DEFAULT_CHUNK = 10_000


def chunk_generator(seed: int, idx: int, phase: int, chunk: int,
                    device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of chunk ``chunk`` of ``phase`` for input ``idx`` of a run with ``seed``."""
    key = [check_int(name, value, minimum=0) for name, value in
           (("seed", seed), ("idx", idx), ("phase", phase), ("chunk", chunk))]
    return torch_generator(*key, device=device)


def split_counts(smoothed: SmoothedClassifier, x: torch.Tensor, num: int, *, seed: int,
                 idx: int, phase: int, chunk: int = DEFAULT_CHUNK,
                 world: World = SINGLE_PROCESS) -> np.ndarray:
    """Class counts (int64) of ``num`` noisy samples of ``x``, in chunks of ``chunk`` samples
    shared round robin between the processes of ``world`` and summed over them; every process
    returns the same counts."""
    num = check_sample_count("num", num)
    chunk = check_sample_count("chunk", chunk)
    counts = np.zeros(smoothed.num_classes, dtype=np.int64)
    for c in range(world.rank, math.ceil(num / chunk), world.size):
        size = min(chunk, num - c * chunk)
        counts += smoothed.class_counts(
            x, size, generator=chunk_generator(seed, idx, phase, c, x.device))
    return all_reduce_sum(counts, x.device)


def certify_split(smoothed: SmoothedClassifier, x: torch.Tensor, n0: int, n: int, alpha: float,
                  norms: Sequence[Norm | str] = ("l2",), *, seed: int, idx: int,
                  chunk: int = DEFAULT_CHUNK, world: World = SINGLE_PROCESS,
                  convert: bool = False, bound: str = "one-sided") -> Certificate:
    """[CRK19] CERTIFY of input ``x`` (number ``idx`` of a run with ``seed``), its samples
    split between the processes of ``world`` (see the module docstring), which must all call it
    with the same arguments.

    Guarantee, as ``SmoothedClassifier.certify``: with probability at least 1 - alpha over the
    noise, if the result is not ``ABSTAIN``, the smoothed classifier returns the selected class
    c_A at x and at every x + v with ||v||_norm < radius[norm].
    """
    n0 = check_sample_count("n0", n0)
    n = check_sample_count("n", n)
    alpha = check_alpha(alpha)
    norm_list = check_norms(smoothed.noise, norms, convert)
    lower_confidence_bound(1, 1, alpha, bound)  # a bad convention fails before any sampling
    common = {"seed": seed, "idx": idx, "chunk": chunk, "world": world}
    selection = split_counts(smoothed, x, n0, phase=SELECTION, **common)
    estimation = split_counts(smoothed, x, n, phase=ESTIMATION, **common)
    top = int(selection.argmax())  # ties go to the lower class, as in certify
    (certificate,) = certificates_from_counts(smoothed.noise, [top], estimation[None], n, alpha,
                                              norm_list, convert=convert, bound=bound,
                                              samples=n0 + n)
    return certificate
