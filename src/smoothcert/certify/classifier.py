"""The smoothed classifier g(x) = argmax_c P[f(x + delta) = c], delta ~ noise ([CRK19], [YDH+20]).

``SmoothedClassifier`` estimates g by Monte Carlo: PREDICT (a top class with a hypothesis test)
and CERTIFY (a top class with a certified radius in one or more norms). Noisy samples are drawn in
batches on the device of the input, classified by the base classifier, and counted there with
``torch.bincount``; the counts come back to the host once per group of inputs. Inputs with few
samples each are certified several at a time, so small models and small n are not dominated by
per-batch overhead.

Reproducibility: each input's noise comes from its own ``torch.Generator``, drawn in pieces whose
sizes depend only on the number of samples and the input dimension. An input's result therefore
depends on its generator alone, not on the batch size or on which inputs share its batches (up to
the floating-point behaviour of the base classifier for different batch shapes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from smoothcert.noises.base import Noise
from smoothcert.norms import Norm
from smoothcert.stats import (
    check_alpha,
    check_sample_count,
    lower_confidence_bound,
    top_two_p_value,
)

__all__ = ["SmoothedClassifier", "Certificate", "Prediction", "ABSTAIN", "CERTIFY_MODES"]

log = logging.getLogger(__name__)

#: the prediction returned when the smoothed classifier abstains
ABSTAIN = -1

#: certification modes: all n samples ([CRK19]), or as many as the goal needs
#: (``smoothcert.certify.adaptive``)
CERTIFY_MODES = ("fixed", "adaptive")

#: noise is drawn in pieces of at most this many numbers (64 MiB in float32), independent of the
#: batch size, so that a given generator yields the same noise however the samples are batched
_PIECE_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Prediction:
    """Result of PREDICT: ``prediction`` is a class or ``ABSTAIN`` (-1); ``p_value`` is the
    two-sided binomial test of the top two counts; ``samples`` noisy forward passes were used,
    ``counts`` holds them per class."""

    prediction: int
    p_value: float
    samples: int
    counts: np.ndarray

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


@dataclass(frozen=True)
class Certificate:
    """Result of CERTIFY.

    ``prediction`` is the selected class or ``ABSTAIN`` (-1, when p_lower <= 1/2); ``p_lower`` the
    lower confidence bound on P[f(x + delta) = selected class] (reported also when abstaining);
    ``radius`` the certified radius for every requested norm, all from the same p_lower (0.0 when
    abstaining); ``samples`` = n0 + n noisy forward passes; ``counts`` the n estimation counts
    per class.
    """

    prediction: int
    p_lower: float
    radius: dict[Norm, float]
    samples: int
    counts: np.ndarray

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


class _NoiseStream:
    """One input's noisy copies T(x), served in slices of any size from pieces of a fixed size.

    The pieces have ``min(piece_rows, remaining)`` rows, a function of the total and the
    dimension only, so the same generator gives the same noisy inputs for every slicing.
    """

    def __init__(self, noise: Noise, x: torch.Tensor, total: int,
                 generator: torch.Generator | None) -> None:
        self._noise = noise
        self._x = x.reshape(1, noise.dim)
        self._remaining = total
        self._generator = generator
        self._piece_rows = max(1, _PIECE_ELEMENTS // noise.dim)
        self._piece: torch.Tensor | None = None
        self._used = 0

    def take(self, rows: int) -> torch.Tensor:
        """The next ``rows`` noisy copies of x, shape (rows, dim)."""
        parts = []
        while rows > 0:
            if self._piece is None or self._used == self._piece.shape[0]:
                size = min(self._piece_rows, self._remaining)
                if size < 1:
                    raise RuntimeError("noise stream exhausted")
                self._piece = self._noise.perturb(self._x.expand(size, -1), self._generator)
                self._remaining -= size
                self._used = 0
            step = min(rows, self._piece.shape[0] - self._used)
            parts.append(self._piece[self._used:self._used + step])
            self._used += step
            rows -= step
        return parts[0] if len(parts) == 1 else torch.cat(parts)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode and restore each one's own mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


class SmoothedClassifier:
    """The smoothed classifier g of a base classifier f under ``noise``.

    ``base_classifier`` maps a batch of inputs (B, *x.shape) to logits (B, num_classes); it must
    live on the device of the inputs given to ``predict``/``certify`` (nothing here moves it).
    Noise is added in input space, before any normalization inside the model, and noisy inputs
    are not clipped. At most ``batch_size`` noisy samples go through the model at once (on a
    CPU, large batches can spend much of their time mapping fresh memory for activations, see
    ``bench/README.md``).

    Faster numerics, each off by default and each changing the base classifier being smoothed
    (its floating-point results, rarely its decisions), so that certificates hold for f as run
    with these settings:

    - ``autocast``: a lower-precision dtype (``torch.bfloat16``) for ``torch.autocast``;
    - ``channels_last``: run 4-D inputs in the channels-last memory format; converts the
      model's parameters to that format in place (their values are unchanged);
    - ``compile``: run the model through ``torch.compile``.
    """

    def __init__(self, base_classifier: torch.nn.Module, noise: Noise, num_classes: int,
                 batch_size: int = 1000, *, autocast: torch.dtype | None = None,
                 channels_last: bool = False, compile: bool = False) -> None:
        if not isinstance(base_classifier, torch.nn.Module):
            raise TypeError(
                f"base_classifier must be a torch.nn.Module, got {type(base_classifier).__name__}")
        if not isinstance(noise, Noise):
            raise TypeError(f"noise must be a smoothcert Noise, got {type(noise).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.base_classifier = base_classifier
        self.noise = noise
        self.num_classes = int(num_classes)
        self.batch_size = check_sample_count("batch_size", batch_size)
        if autocast is not None and not (isinstance(autocast, torch.dtype)
                                         and autocast.is_floating_point):
            raise ValueError(f"autocast must be a floating-point torch.dtype or None, "
                             f"got {autocast!r}")
        self.autocast = autocast
        self.channels_last = bool(channels_last)
        if self.channels_last:
            base_classifier.to(memory_format=torch.channels_last)
        self.compile = bool(compile)
        self._forward = torch.compile(base_classifier) if compile else base_classifier

    @property
    def numerics(self) -> dict[str, object]:
        """The settings that change the base classifier being smoothed (JSON-ready)."""
        return {"autocast": str(self.autocast).removeprefix("torch.") if self.autocast else None,
                "channels_last": self.channels_last, "compile": self.compile}

    # ------------------------------------------------------------------ public API
    def inputs_per_batch(self, n: int) -> int:
        """How many inputs share each forward batch when each needs ``n`` samples."""
        return max(1, self.batch_size // check_sample_count("n", n))

    def class_counts(self, x: torch.Tensor, num: int,
                     generator: torch.Generator | None = None) -> np.ndarray:
        """Counts of f(x + delta) per class over ``num`` independent noise draws (int64)."""
        xs = self._check_inputs(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x)
        num = check_sample_count("num", num)
        streams = self._streams(xs, num, self._check_generators([generator], 1, xs.device))
        with _eval_mode(self.base_classifier), torch.inference_mode():
            return self._group_counts(xs, num, streams).cpu().numpy()[0]

    def class_counts_batch(self, xs: torch.Tensor, num: int,
                           generators: Sequence[torch.Generator | None] | None = None
                           ) -> np.ndarray:
        """``class_counts`` of each input of ``xs`` (shape (N, *x.shape)), shape (N, classes),
        several inputs per forward batch when num is small; input i draws from generators[i]
        exactly as ``class_counts`` would."""
        xs = self._check_inputs(xs)
        num = check_sample_count("num", num)
        gens = self._check_generators(generators, xs.shape[0], xs.device)
        parts = []
        for group, group_gens in self._groups(xs, gens, num):
            with _eval_mode(self.base_classifier), torch.inference_mode():
                parts.append(self._group_counts(group, num, self._streams(group, num, group_gens))
                             .cpu().numpy())
        return np.concatenate(parts)

    def predict(self, x: torch.Tensor, n: int, alpha: float, *,
                generator: torch.Generator | None = None) -> Prediction:
        """[CRK19] PREDICT: the top class of n noisy samples, unless the two-sided binomial
        test of the top two counts has p-value > alpha, in which case ``ABSTAIN``.

        Guarantee: with probability at least 1 - alpha over the noise, the returned class (if
        not ``ABSTAIN``) equals g(x).
        """
        return self.predict_batch(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x, n,
                                  alpha, generators=[generator])[0]

    def predict_batch(self, xs: torch.Tensor, n: int, alpha: float, *,
                      generators: Sequence[torch.Generator | None] | None = None
                      ) -> list[Prediction]:
        """``predict`` for each of the inputs ``xs`` (shape (N, *x.shape)), several per forward
        batch when n is small; ``generators`` gives each input its own generator."""
        n = check_sample_count("n", n)
        alpha = check_alpha(alpha)
        xs = self._check_inputs(xs)
        gens = self._check_generators(generators, xs.shape[0], xs.device)
        out: list[Prediction] = []
        for group, group_gens in self._groups(xs, gens, n):
            with _eval_mode(self.base_classifier), torch.inference_mode():
                counts = self._group_counts(group, n, self._streams(group, n, group_gens))
            for row in counts.cpu().numpy():
                # stable sort, so ties go to the lower class index as with argmax
                order = np.argsort(-row, kind="stable")
                top, second = int(order[0]), int(order[1])
                p_value = top_two_p_value(row[top], row[second])
                out.append(Prediction(prediction=top if p_value <= alpha else ABSTAIN,
                                      p_value=p_value, samples=n, counts=row))
        return out

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float,
                norms: Sequence[Norm | str] = ("l2",), *,
                generator: torch.Generator | None = None, convert: bool = False,
                bound: str = "one-sided", mode: str = "fixed",
                radii: Mapping[Norm | str, Sequence[float]] | Sequence[float] | None = None,
                tolerance: float | str | None = None) -> Certificate:
        """[CRK19] CERTIFY: select the top class c_A from n0 noisy samples, estimate a lower
        confidence bound p_lower on P[f(x + delta) = c_A] from n fresh, independent samples, and
        certify the radius R_norm(p_lower) of this noise for each norm; abstain if p_lower <= 1/2.

        Guarantee ([CRK19] Theorem 1 and Proposition 2, generalized to any noise with a valid
        radius function by [YDH+20]): with probability at least 1 - alpha over the noise, if the
        result is not ``ABSTAIN``, then g(x) = c_A and g(x + v) = c_A for every ||v||_norm <
        radius[norm], simultaneously for all requested norms (they come from one p_lower).
        ``bound`` names the confidence-bound convention (``smoothcert.stats.BOUNDS``); norms not
        certified directly by the noise need ``convert=True`` (the lp conversion, valid but loose).

        ``mode="adaptive"`` draws the n estimation samples in pre-declared stages and stops once
        the goal is decided: ``radii`` (certify or give up each radius) and/or ``tolerance``
        (the radius is within it of the best n samples could give; a number, or "1%"). Same
        guarantee at level alpha, far fewer samples (``Certificate.samples``); see
        ``smoothcert.certify.adaptive``.
        """
        return self.certify_batch(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x, n0, n,
                                  alpha, norms, generators=[generator], convert=convert,
                                  bound=bound, mode=mode, radii=radii, tolerance=tolerance)[0]

    def certify_batch(self, xs: torch.Tensor, n0: int, n: int, alpha: float,
                      norms: Sequence[Norm | str] = ("l2",), *,
                      generators: Sequence[torch.Generator | None] | None = None,
                      convert: bool = False, bound: str = "one-sided", mode: str = "fixed",
                      radii: Mapping[Norm | str, Sequence[float]] | Sequence[float] | None = None,
                      tolerance: float | str | None = None) -> list[Certificate]:
        """``certify`` for each of the inputs ``xs`` (shape (N, *x.shape)), several per forward
        batch when n is small; ``generators`` gives each input its own generator (selection and
        estimation draws come one after the other from it, so they are independent)."""
        if mode == "adaptive":
            # adaptive certification builds on this class, hence the import here
            from smoothcert.certify.adaptive import certify_adaptive

            return list(certify_adaptive(self, xs, n0, n, alpha, norms, radii=radii,
                                         tolerance=tolerance, generators=generators,
                                         convert=convert, bound=bound))
        if mode != "fixed":
            raise ValueError(f"unknown certification mode {mode!r}; choose from "
                             f"{', '.join(CERTIFY_MODES)}")
        if radii is not None or tolerance is not None:
            raise ValueError("radii and tolerance are goals of mode='adaptive'; fixed-n "
                             "certification always uses all n samples")
        n0 = check_sample_count("n0", n0)
        n = check_sample_count("n", n)
        alpha = check_alpha(alpha)
        norms = self.check_norms(norms, convert)
        # fail on a bad bound name before spending any samples
        lower_confidence_bound(1, 1, alpha, bound)
        xs = self._check_inputs(xs)
        gens = self._check_generators(generators, xs.shape[0], xs.device)
        out: list[Certificate] = []
        for group, group_gens in self._groups(xs, gens, n):
            with _eval_mode(self.base_classifier), torch.inference_mode():
                selection = self._group_counts(group, n0, self._streams(group, n0, group_gens))
                estimation = self._group_counts(group, n, self._streams(group, n, group_gens))
            selection = selection.cpu().numpy()
            estimation = estimation.cpu().numpy()
            top = selection.argmax(axis=1)
            n_a = estimation[np.arange(len(top)), top]
            p_lower = np.atleast_1d(lower_confidence_bound(n_a, n, alpha, bound))
            radii = {norm: np.asarray(self.noise.certified_radius(p_lower, norm,
                                                                  convert=convert))
                     for norm in norms}
            for i in range(len(top)):
                certified = bool(p_lower[i] > 0.5)
                out.append(Certificate(
                    prediction=int(top[i]) if certified else ABSTAIN,
                    p_lower=float(p_lower[i]),
                    radius={norm: float(r[i]) if certified else 0.0
                            for norm, r in radii.items()},
                    samples=n0 + n, counts=estimation[i]))
        return out

    # ------------------------------------------------------------------ internals
    def check_norms(self, norms: Sequence[Norm | str], convert: bool) -> list[Norm]:
        """The distinct norms named by ``norms``; ValueError for a norm this noise does not
        certify directly unless ``convert``."""
        if isinstance(norms, (str, Norm)):
            norms = [norms]
        parsed = list(dict.fromkeys(Norm.parse(v) for v in norms))
        if not parsed:
            raise ValueError("norms must name at least one norm (l1, l2, linf)")
        for norm in parsed:
            if not (convert or self.noise.certifies(norm)):
                raise ValueError(
                    f"{self.noise.name} noise does not certify {norm.value} directly; it "
                    f"certifies {', '.join(v.value for v in self.noise.direct_norms)}. Pass "
                    f"convert=True to use the lp conversion (a valid but loose radius)")
        return parsed

    def _check_inputs(self, xs: torch.Tensor) -> torch.Tensor:
        """A batch (N, *shape) of finite floating-point inputs with ``noise.dim`` entries each."""
        if not isinstance(xs, torch.Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(xs).__name__}")
        if not xs.is_floating_point():
            raise TypeError(f"inputs must be a floating-point tensor, got dtype {xs.dtype}")
        if xs.dim() < 2 or xs.shape[0] < 1:
            raise ValueError(f"expected a non-empty batch of inputs, got shape "
                             f"{tuple(xs.shape)}")
        per = xs[0].numel()
        if per != self.noise.dim:
            raise ValueError(f"each input has {per} entries (shape {tuple(xs.shape[1:])}), but "
                             f"the {self.noise.name} noise has dim={self.noise.dim}")
        if not bool(torch.isfinite(xs).all()):
            raise ValueError("inputs contain NaN or infinite values")
        return xs

    @staticmethod
    def _check_generators(generators: Sequence[torch.Generator | None] | None, count: int,
                          device: torch.device) -> list[torch.Generator | None]:
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

    def _groups(self, xs: torch.Tensor, gens: list[torch.Generator | None], n: int
                ) -> Iterator[tuple[torch.Tensor, list[torch.Generator | None]]]:
        k = self.inputs_per_batch(n)
        for start in range(0, xs.shape[0], k):
            yield xs[start:start + k], gens[start:start + k]

    def _streams(self, xs: torch.Tensor, num: int, gens: list[torch.Generator | None]
                 ) -> list[_NoiseStream]:
        return [_NoiseStream(self.noise, x, num, gen) for x, gen in zip(xs, gens, strict=True)]

    def _group_counts(self, xs: torch.Tensor, num: int, streams: list[_NoiseStream]
                      ) -> torch.Tensor:
        """Class counts (k, num_classes), int64 on the inputs' device, of ``num`` noisy samples
        of each of the k inputs ``xs``; the k inputs share every forward batch equally."""
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
                batch[i * m:(i + 1) * m].copy_(stream.take(m).view(m, *shape))
            predictions = self._classify(batch)
            counts += torch.bincount((predictions.view(k, m) + offsets).view(-1),
                                     minlength=k * classes).view(k, classes)
            done += m
        return counts

    def _classify(self, batch: torch.Tensor) -> torch.Tensor:
        if self.autocast is not None:
            with torch.autocast(device_type=batch.device.type, dtype=self.autocast):
                logits = self._forward(batch)
        else:
            logits = self._forward(batch)
        if logits.dim() != 2 or logits.shape[0] != batch.shape[0] \
                or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"the base classifier returned shape {tuple(logits.shape)} for a batch of "
                f"{batch.shape[0]}; expected ({batch.shape[0]}, {self.num_classes}) logits")
        return logits.argmax(dim=1)
