"""The smoothed classifier g(x) = argmax_c P[f(T(x)) = c] ([CRK19], [YDH+20]).

``SmoothedClassifier`` is the facade over the ways to evaluate g; ``certify_batch`` and
``predict_batch`` decide, in one place, which one runs:

- a random noise (``noise.deterministic`` False), ``mode="fixed"``: Monte Carlo PREDICT and
  [CRK19] CERTIFY with all n samples (``smoothcert.certify.fixed``);
- a random noise, ``mode="adaptive"``: CERTIFY with staged sampling that stops once the goal is
  decided (``smoothcert.certify.adaptive``);
- a deterministic smoothing (``noise.deterministic`` True): T is uniform over a finite set of
  transformations that are enumerated, not sampled (``smoothcert.certify.deterministic``); no
  n0, n or alpha.

Layering: ``sampling`` (the Monte Carlo engine) and ``certificate`` (results and the abstain rule)
are at the bottom; ``fixed``, ``adaptive``, ``split_sample`` and ``deterministic`` build on them
and see this class only as an annotation; this module imports them; ``dataset`` (the dataset
runner) drives this class. Nothing below imports this module at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from smoothcert.certify.adaptive import certify_adaptive
from smoothcert.certify.certificate import (
    ABSTAIN,
    CERTIFY_MODES,
    Certificate,
    Prediction,
    check_norms,
    check_sampling_arguments,
)
from smoothcert.certify.deterministic import certify_deterministic, predict_deterministic
from smoothcert.certify.fixed import certify_fixed, predict_fixed
from smoothcert.certify.sampling import MonteCarlo, check_inputs
from smoothcert.noises.base import Noise
from smoothcert.norms import Norm
from smoothcert.stats import check_sample_count
from smoothcert.validation import check_choice, check_int

__all__ = ["SmoothedClassifier", "Certificate", "Prediction", "ABSTAIN", "CERTIFY_MODES"]

_Radii = Mapping[Norm | str, Sequence[float]] | Sequence[float] | None


class SmoothedClassifier:
    """The smoothed classifier g of a base classifier f under ``noise`` (a random transformation
    T(x); x + delta for the additive families).

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
        self.base_classifier = base_classifier
        self.noise = noise
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
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
        #: the Monte Carlo engine counting this classifier's decisions on draws of T(x)
        self.sampler = MonteCarlo(base_classifier, self.classify, noise, self.num_classes,
                                  self.batch_size, channels_last=self.channels_last)

    @property
    def numerics(self) -> dict[str, object]:
        """The settings that change the base classifier being smoothed (JSON-ready)."""
        return {"autocast": str(self.autocast).removeprefix("torch.") if self.autocast else None,
                "channels_last": self.channels_last, "compile": self.compile}

    # ------------------------------------------------------------------ building blocks
    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """The base classifier's decisions (int64 class indices) on a batch, with this
        classifier's numerics; ValueError unless it returns (B, num_classes) logits. The caller
        chooses the mode (``sampling.eval_mode``) and the grad mode."""
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

    _classify = classify

    def inputs_per_batch(self, n: int) -> int:
        """How many inputs share each forward batch when each needs ``n`` samples."""
        return self.sampler.inputs_per_batch(n)

    def check_norms(self, norms: Sequence[Norm | str], convert: bool) -> list[Norm]:
        """The distinct norms named by ``norms``; ValueError for a norm this noise does not
        certify directly unless ``convert``."""
        return check_norms(self.noise, norms, convert)

    def check_inputs(self, xs: torch.Tensor) -> torch.Tensor:
        """A batch (N, *shape) of finite floating-point inputs with ``noise.dim`` entries."""
        return check_inputs(xs, self.noise)

    def class_counts(self, x: torch.Tensor, num: int,
                     generator: torch.Generator | None = None) -> np.ndarray:
        """Counts of f(T(x)) per class over ``num`` independent draws (int64)."""
        xs = x.unsqueeze(0) if isinstance(x, torch.Tensor) else x
        return self.class_counts_batch(xs, num, [generator])[0]

    def class_counts_batch(self, xs: torch.Tensor, num: int,
                           generators: Sequence[torch.Generator | None] | None = None
                           ) -> np.ndarray:
        """``class_counts`` of each input of ``xs`` (shape (N, *x.shape)), shape (N, classes),
        several inputs per forward batch when num is small; input i draws from generators[i]
        exactly as ``class_counts`` would."""
        return self.sampler.class_counts(xs, num, generators)

    # ------------------------------------------------------------------ PREDICT / CERTIFY
    def predict(self, x: torch.Tensor, n: int | None = None, alpha: float | None = None, *,
                generator: torch.Generator | None = None) -> Prediction:
        """[CRK19] PREDICT: the top class of n noisy samples, unless the two-sided binomial
        test of the top two counts has p-value > alpha, in which case ``ABSTAIN``.

        Guarantee: with probability at least 1 - alpha over the noise, the returned class (if
        not ``ABSTAIN``) equals g(x). A deterministic smoothing takes no n and alpha: g(x) is
        computed exactly.
        """
        return self.predict_batch(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x, n,
                                  alpha, generators=[generator])[0]

    def predict_batch(self, xs: torch.Tensor, n: int | None = None, alpha: float | None = None,
                      *, generators: Sequence[torch.Generator | None] | None = None
                      ) -> list[Prediction]:
        """``predict`` for each of the inputs ``xs`` (shape (N, *x.shape)), several per forward
        batch when n is small; ``generators`` gives each input its own generator (unused by a
        deterministic smoothing)."""
        check_sampling_arguments(self.noise, "predict", n=n, alpha=alpha)
        if self.noise.deterministic:
            return list(predict_deterministic(self, xs))
        return predict_fixed(self, xs, n, alpha, generators=generators)

    def certify(self, x: torch.Tensor, n0: int | None = None, n: int | None = None,
                alpha: float | None = None, norms: Sequence[Norm | str] = ("l2",), *,
                generator: torch.Generator | None = None, convert: bool = False,
                bound: str = "one-sided", mode: str = "fixed", radii: _Radii = None,
                tolerance: float | str | None = None) -> Certificate:
        """[CRK19] CERTIFY: select the top class c_A from n0 noisy samples, estimate a lower
        confidence bound p_lower on P[f(T(x)) = c_A] from n fresh, independent samples, and
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

        A deterministic smoothing (``noise.deterministic``) takes no n0, n, alpha or mode: its
        certificate holds with certainty (``smoothcert.certify.deterministic``).
        """
        return self.certify_batch(x.unsqueeze(0) if isinstance(x, torch.Tensor) else x, n0, n,
                                  alpha, norms, generators=[generator], convert=convert,
                                  bound=bound, mode=mode, radii=radii, tolerance=tolerance)[0]

    def certify_batch(self, xs: torch.Tensor, n0: int | None = None, n: int | None = None,
                      alpha: float | None = None, norms: Sequence[Norm | str] = ("l2",), *,
                      generators: Sequence[torch.Generator | None] | None = None,
                      convert: bool = False, bound: str = "one-sided", mode: str = "fixed",
                      radii: _Radii = None, tolerance: float | str | None = None
                      ) -> list[Certificate]:
        """``certify`` for each of the inputs ``xs`` (shape (N, *x.shape)), several per forward
        batch when n is small; ``generators`` gives each input its own generator (selection and
        estimation draws come one after the other from it, so they are independent).

        The one place that decides the procedure: deterministic smoothing, fixed-n or adaptive
        (see the module docstring)."""
        if self.noise.deterministic:
            check_sampling_arguments(self.noise, "certify", n0=n0, n=n, alpha=alpha,
                                     mode=None if mode == "fixed" else mode, radii=radii,
                                     tolerance=tolerance)
            return list(certify_deterministic(self, xs, norms, convert=convert))
        check_sampling_arguments(self.noise, "certify", n0=n0, n=n, alpha=alpha)
        mode = check_choice("certification mode", mode, CERTIFY_MODES)
        if mode == "adaptive":
            return list(certify_adaptive(self, xs, n0, n, alpha, norms, radii=radii,
                                         tolerance=tolerance, generators=generators,
                                         convert=convert, bound=bound))
        if radii is not None or tolerance is not None:
            raise ValueError("radii and tolerance are goals of mode='adaptive'; fixed-n "
                             "certification always uses all n samples")
        return certify_fixed(self, xs, n0, n, alpha, norms, generators=generators,
                             convert=convert, bound=bound)
