"""Seeded random streams: one rule for every generator the library creates.

A stream is named by a tuple of non-negative integers (a run's seed, an input's index, a phase,
...). ``numpy.random.SeedSequence`` turns the tuple into a 64-bit seed, which gives well-separated
streams for neighbouring tuples, so a result depends on its own key only, never on which other
inputs ran before it or on how the work was split between processes.
"""

from __future__ import annotations

import numpy as np
import torch

from smoothcert.validation import check_int

__all__ = ["stream_seed", "torch_generator", "numpy_generator"]


def stream_seed(*key: int, bits: int = 64) -> int:
    """The seed of the stream named by ``key`` (non-negative integers), ``bits`` wide (<= 64)."""
    if not key:
        raise ValueError("a stream needs at least one key (e.g. the run's seed)")
    values = [check_int(f"seed key {i}", k, minimum=0) for i, k in enumerate(key)]
    state = int(np.random.SeedSequence(values).generate_state(1, dtype=np.uint64)[0])
    return state >> (64 - check_int("bits", bits, minimum=1, maximum=64))


def torch_generator(*key: int, device: torch.device | str = "cpu", bits: int = 64
                    ) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``stream_seed(*key, bits=bits)``."""
    return torch.Generator(device=device).manual_seed(stream_seed(*key, bits=bits))


def numpy_generator(*key: int) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) for the stream named by ``key``."""
    values = [check_int(f"seed key {i}", k, minimum=0) for i, k in enumerate(key)]
    return np.random.default_rng(np.random.SeedSequence(values))
