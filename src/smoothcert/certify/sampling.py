"""The Monte Carlo engine: draws of T(x), the base classifier's decisions, class counts.

Every way to certify or predict by sampling (fixed-n, adaptive, split-sample, and the smoothed
risk of ``smoothcert.pal_sulam.risk``) counts classes here. Noisy copies are drawn in batches on
the device of the input, classified, and counted there with ``torch.bincount``; the counts come
back to the host once per group of inputs. Inputs with few samples each share forward batches,
so small models and small n are not dominated by per-batch overhead.

Reproducibility: each input's noise comes from its own ``torch.Generator``, drawn in pieces whose
sizes depend only on the number of samples and the input dimension (``NoiseStream``). An input's
counts therefore depend on its generator alone, not on the batch size or on which inputs share
its batches (up to the floating-point behaviour of the base classifier for different batch
shapes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from smoothcert.noises.base import Noise
from smoothcert.stats import check_sample_count

__all__ = ["eval_mode", "NoiseStream", "MonteCarlo", "check_generators", "check_inputs",
           "PIECE_ELEMENTS"]

#: noise is drawn in pieces of at most this many numbers (64 MiB in float32), independent of the
#: batch size, so that a given generator yields the same noise however the samples are batched
PIECE_ELEMENTS = 1 << 24


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put every submodule of ``model`` in eval mode; afterwards (also on an exception) restore
    each submodule's own mode, so a model whose parts were in mixed modes gets them back as they
    were (``model.train(was_training)`` would set them all alike)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


class NoiseStream:
    """One input's noisy copies T(x), served in slices of any size from pieces of a fixed size.

    The pieces have ``min(piece_rows, remaining)`` rows, a function of the total and the
    dimension only (``piece_rows = PIECE_ELEMENTS // dim``), so the same generator gives the same
    noisy inputs for every slicing. A stream of ``total <= piece_rows`` copies draws them all in
    one call ``noise.perturb(x.expand(total, dim), generator)``.
    """

    def __init__(self, noise: Noise, x: torch.Tensor, total: int,
                 generator: torch.Generator | None) -> None:
        self._noise = noise
        self._x = x.reshape(1, noise.dim)
        self._remaining = total
        self._generator = generator
        self._piece_rows = max(1, PIECE_ELEMENTS // noise.dim)
        self._piece: torch.Tensor | None = None
        self._used = 0

    def take(self, rows: int) -> torch.Tensor:
        """The next ``rows`` noisy copies of x, shape (rows, dim)."""
        out = torch.empty((rows, self._noise.dim), dtype=self._x.dtype, device=self._x.device)
        self.take_into(out)
        return out

    def take_into(self, out: torch.Tensor) -> None:
        """Write the next ``out.shape[0]`` noisy copies of x into ``out`` (rows of ``dim``
        entries, any memory format). Additive noise is added into ``out`` in one pass, so the
        stream keeps only the draws of delta, never a second copy of x + delta."""
        rows, done = out.shape[0], 0
        while done < rows:
            if self._piece is None or self._used == self._piece.shape[0]:
                size = min(self._piece_rows, self._remaining)
                if size < 1:
                    raise RuntimeError("noise stream exhausted")
                if self._noise.additive:
                    # the same draws perturb() makes: x + sample(size) is perturb's default
                    self._piece = self._noise.sample(size, generator=self._generator,
                                                     device=self._x.device,
                                                     dtype=self._x.dtype)
                else:
                    self._piece = self._noise.perturb(self._x.expand(size, -1),
                                                      self._generator)
                self._remaining -= size
                self._used = 0
            step = min(rows - done, self._piece.shape[0] - self._used)
            part = self._piece[self._used:self._used + step]
            target = out[done:done + step]
            if self._noise.additive:
                torch.add(self._x.view(1, *target.shape[1:]), part.view(target.shape),
                          out=target)
            else:
                target.copy_(part.view(target.shape))
            self._used += step
            done += step


def check_inputs(xs: torch.Tensor, noise: Noise) -> torch.Tensor:
    """A batch (N, *shape) of finite floating-point inputs with ``noise.dim`` entries each."""
    if not isinstance(xs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(xs).__name__}")
    if not xs.is_floating_point():
        raise TypeError(f"inputs must be a floating-point tensor, got dtype {xs.dtype}")
    if xs.dim() < 2 or xs.shape[0] < 1:
        raise ValueError(f"expected a non-empty batch of inputs, got shape {tuple(xs.shape)}")
    per = xs[0].numel()
    if per != noise.dim:
        raise ValueError(f"each input has {per} entries (shape {tuple(xs.shape[1:])}), but "
                         f"the {noise.name} noise has dim={noise.dim}")
    if not bool(torch.isfinite(xs).all()):
        raise ValueError("inputs contain NaN or infinite values")
    return xs


def check_generators(generators: Sequence[torch.Generator | None] | None, count: int,
                     device: torch.device) -> list[torch.Generator | None]:
    """One generator (or None) per input, each on the inputs' device type."""
    if generators is None:
        return [None] * count
    gens = list(generators)
    if len(gens) != count:
        raise ValueError(f"got {len(gens)} generators for {count} inputs; give one each")
    for gen in gens:
        if gen is not None and gen.device.type != device.type:
            raise ValueError(f"a generator on {gen.device} cannot draw noise for inputs on "
                             f"{device}; create it with torch.Generator(device=...)")
    return gens


class MonteCarlo:
    """Class counts of ``classify`` (a batch of inputs -> int64 class indices in
    [0, num_classes)) on draws of ``noise.perturb``, at most ``batch_size`` draws per call.

    ``model`` is the module behind ``classify``: counting puts it in eval mode (``eval_mode``)
    and under ``torch.inference_mode``. With ``channels_last``, 4-D batches are built in the
    channels-last memory format.
    """

    def __init__(self, model: torch.nn.Module, classify: Callable[[torch.Tensor], torch.Tensor],
                 noise: Noise, num_classes: int, batch_size: int, *,
                 channels_last: bool = False) -> None:
        self.model = model
        self.classify = classify
        self.noise = noise
        self.num_classes = int(num_classes)
        self.batch_size = check_sample_count("batch_size", batch_size)
        self.channels_last = bool(channels_last)

    def inputs_per_batch(self, n: int) -> int:
        """How many inputs share each forward batch when each needs ``n`` samples."""
        return max(1, self.batch_size // check_sample_count("n", n))

    def groups(self, xs: torch.Tensor, gens: list[torch.Generator | None], n: int
               ) -> Iterator[tuple[torch.Tensor, list[torch.Generator | None]]]:
        """Consecutive groups of inputs (with their generators) that share forward batches."""
        k = self.inputs_per_batch(n)
        for start in range(0, xs.shape[0], k):
            yield xs[start:start + k], gens[start:start + k]

    def streams(self, xs: torch.Tensor, num: int, gens: Sequence[torch.Generator | None]
                ) -> list[NoiseStream]:
        """A stream of ``num`` draws of T(x) for each input, from its own generator."""
        return [NoiseStream(self.noise, x, num, gen) for x, gen in zip(xs, gens, strict=True)]

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Eval mode (each submodule's mode restored after) and inference mode."""
        with eval_mode(self.model), torch.inference_mode():
            yield

    def group_counts(self, xs: torch.Tensor, num: int, gens: Sequence[torch.Generator | None]
                     ) -> torch.Tensor:
        """Class counts (k, num_classes), int64 on the inputs' device, of ``num`` draws for each
        of the k inputs ``xs`` (each from its generator); the inputs share every forward batch
        equally. Call it inside ``counting()``."""
        streams = self.streams(xs, num, gens)
        k, shape, device = xs.shape[0], xs.shape[1:], xs.device
        classes = self.num_classes
        counts = torch.zeros((k, classes), dtype=torch.int64, device=device)
        # row i of a batch's predictions is shifted by i * classes, so that one bincount
        # counts all k inputs at once
        offsets = (torch.arange(k, device=device) * classes).unsqueeze(1)
        per_input = max(1, self.batch_size // k)
        memory_format = (torch.channels_last if self.channels_last and len(shape) == 3
                         else torch.contiguous_format)
        done = 0
        while done < num:
            m = min(per_input, num - done)
            batch = torch.empty((k * m, *shape), dtype=xs.dtype, device=device,
                                memory_format=memory_format)
            for i, stream in enumerate(streams):
                # copying into the batch also converts to its memory format, in one pass
                stream.take_into(batch[i * m:(i + 1) * m])
            predictions = self.classify(batch)
            counts += torch.bincount((predictions.view(k, m) + offsets).view(-1),
                                     minlength=k * classes).view(k, classes)
            done += m
        return counts

    def class_counts(self, xs: torch.Tensor, num: int,
                     gens: Sequence[torch.Generator | None]) -> np.ndarray:
        """Host int64 counts (N, num_classes) of ``num`` draws for each input of ``xs``
        (checked), input i drawing from ``gens[i]``; several inputs per forward batch."""
        xs = check_inputs(xs, self.noise)
        num = check_sample_count("num", num)
        gens = check_generators(gens, xs.shape[0], xs.device)
        parts = []
        for group, group_gens in self.groups(xs, gens, num):
            with self.counting():
                parts.append(self.group_counts(group, num, group_gens).cpu().numpy())
        return np.concatenate(parts)
