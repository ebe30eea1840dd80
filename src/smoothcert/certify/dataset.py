"""Certify or predict every selected input of a dataset, streaming one result row per input.

This is the loop of [CRK19]'s ``certify.py``/``predict.py`` as a library function: inputs
``0, skip, 2*skip, ...`` (at most ``max_examples`` of them), each certified (or predicted) by a
``SmoothedClassifier`` and written to a results file (``smoothcert.runs.results``) as soon as it is
done, so an interrupted run resumes where it stopped.

Seeding: input ``idx`` draws its noise from a generator seeded by ``(seed, idx)`` alone
(``input_generator``), so a row depends neither on which inputs were certified before it nor on
how inputs are grouped into batches or split between processes; a resumed run writes the same
rows as an uninterrupted one.

Side effects: the results file ``out`` (and its run record) and nothing else. Progress is
reported to an optional callback ``progress(done, total)``; the command line draws the bar.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from smoothcert.certify.adaptive_rule import AdaptiveRule, stage_plan
from smoothcert.certify.certificate import (
    ABSTAIN,
    CERTIFY_MODES,
    Certificate,
    Prediction,
    check_sampling_arguments,
)
from smoothcert.norms import Norm
from smoothcert.runs.results import PREDICT_COLUMNS, ResultsWriter, certify_columns
from smoothcert.runs.selection import select_indices
from smoothcert.runs.shards import SELECTED_KEY, SHARD_KEY, Shard
from smoothcert.seeds import torch_generator
from smoothcert.stats import check_alpha, check_sample_count, lower_confidence_bound
from smoothcert.validation import check_choice, check_int

if TYPE_CHECKING:
    from smoothcert.certify.classifier import SmoothedClassifier

__all__ = [
    "input_generator",
    "select_indices",
    "check_dataset_matches",
    "file_sha256",
    "certify_dataset",
    "predict_dataset",
    "RunSummary",
    "Progress",
]

log = logging.getLogger(__name__)


class _LabelledDataset(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]: ...


#: ``progress(done, total)``: called once when a run starts (``done`` = inputs already in the
#: file) and after every group of inputs; ``done == total`` at the end of a complete run
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunSummary:
    """What a run did: ``selected`` inputs in all (in this shard, for a shard), ``resumed`` of
    them already in the file, ``written`` now; ``correct`` and ``abstained`` count the rows
    written now."""

    path: Path
    selected: int
    resumed: int
    written: int
    correct: int
    abstained: int


def input_generator(seed: int, idx: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for input ``idx`` of a run with ``seed``: seeded from
    ``numpy.random.SeedSequence([seed, idx])``, which gives well-separated streams for
    neighbouring (seed, idx) pairs."""
    return torch_generator(check_int("seed", seed, minimum=0), check_int("idx", idx, minimum=0),
                           device=device)


def _check_progress(progress: Progress | bool | None) -> Progress | None:
    if progress is None or progress is False:
        return None
    if not callable(progress):
        raise TypeError(f"progress must be a callable progress(done, total) or None, got "
                        f"{progress!r}; the library draws no progress bar itself")
    return progress


def check_dataset_matches(checkpoint: Any, info: Any) -> None:
    """Refuse a dataset whose name, input shape or number of classes differ from those the
    checkpoint's model was trained for (``checkpoint``: a ``smoothcert.models.checkpoint.Checkpoint``;
    ``info``: a dataset's ``DatasetInfo``)."""
    problems = []
    if checkpoint.dataset != info.name:
        problems.append(f"dataset {info.name!r} vs {checkpoint.dataset!r}")
    if tuple(checkpoint.input_shape) != tuple(info.shape):
        problems.append(f"input shape {tuple(info.shape)} vs {tuple(checkpoint.input_shape)}")
    if int(checkpoint.num_classes) != int(info.num_classes):
        problems.append(f"{info.num_classes} classes vs {checkpoint.num_classes}")
    if problems:
        raise ValueError("the dataset does not match the checkpoint's model (dataset given vs "
                         "checkpoint): " + "; ".join(problems))


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file: identifies a checkpoint in a run's configuration, wherever it lies."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(task: str, smoothed: SmoothedClassifier, dataset: _LabelledDataset,
         out: str | os.PathLike, *, columns: Sequence[str], protocol: Mapping[str, Any],
         evaluate: Callable[[torch.Tensor, list[torch.Generator]], list[Any]],
         row_values: Callable[[Any], dict[str, Any]], group_size: int, skip: int,
         max_examples: int, seed: int, device: torch.device | str,
         configuration: Mapping[str, Any] | None, settings: Mapping[str, Any] | None,
         command: Sequence[str] | None, progress: Progress | None,
         shard: Shard | None, cohen_norm: str | None = None) -> RunSummary:
    device = torch.device(device)
    selected = select_indices(len(dataset), skip, max_examples)
    # selection first, sharding second, so --skip/--max mean what they mean for one process
    indices = selected if shard is None else shard.select(selected)
    full_configuration = {
        "task": task, "noise": smoothed.noise.describe(), "num_classes": smoothed.num_classes,
        **protocol, "skip": int(skip), "seed": int(seed), "device_type": device.type,
        **smoothed.numerics, **(configuration or {}),
        **({} if shard is None else {SHARD_KEY: shard.describe()}),
    }
    full_settings = {"batch_size": smoothed.batch_size, "max_examples": int(max_examples),
                     "device": str(device), SELECTED_KEY: len(selected), **(settings or {})}
    with ResultsWriter(out, columns, full_configuration, full_settings, command,
                       cohen_norm=cohen_norm) as writer:
        pending = [idx for idx in indices if idx not in writer.completed]
        resumed = len(indices) - len(pending)
        if resumed:
            log.info("%s: %d of %d inputs already done, resuming", out, resumed, len(indices))
        if progress is not None:
            progress(resumed, len(indices))
        correct = abstained = 0
        for start in range(0, len(pending), group_size):
            group = pending[start:start + group_size]
            items = [dataset[idx] for idx in group]
            xs = torch.stack([x for x, _ in items]).to(device)
            generators = [input_generator(seed, idx, device) for idx in group]
            began = time.perf_counter()
            results = evaluate(xs, generators)
            # evaluate returns host values, so the device work is finished here
            seconds = (time.perf_counter() - began) / len(group)
            for idx, (_, label), result in zip(group, items, results, strict=True):
                label = int(label)
                is_correct = result.prediction == label
                correct += is_correct
                abstained += result.prediction == ABSTAIN
                writer.write({"idx": idx, "label": label, "prediction": result.prediction,
                              **row_values(result), "correct": int(is_correct),
                              "samples": result.samples, "seconds": round(seconds, 4)})
            if progress is not None:
                progress(resumed + start + len(group), len(indices))
    return RunSummary(path=Path(out), selected=len(indices), resumed=resumed,
                      written=len(pending), correct=correct, abstained=abstained)


def certify_dataset(smoothed: SmoothedClassifier, dataset: _LabelledDataset,
                    out: str | os.PathLike, *, n0: int | None = None, n: int | None = None,
                    alpha: float | None = None, norms: Sequence[Norm | str] = ("l2",),
                    convert: bool = False, bound: str = "one-sided", skip: int = 1,
                    max_examples: int = -1, seed: int = 0, device: torch.device | str = "cpu",
                    configuration: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None,
                    command: Sequence[str] | None = None, progress: Progress | None = None,
                    shard: Shard | None = None, mode: str = "fixed",
                    radii: Mapping[Norm | str, Sequence[float]] | Sequence[float] | None = None,
                    tolerance: float | str | None = None,
                    results_format: str = "smoothcert") -> RunSummary:
    """Certify the selected inputs of ``dataset`` (items: (image tensor, int label)) with
    ``smoothed.certify_batch`` and stream the rows to the results file ``out`` (columns
    ``idx, label, prediction, p_lower, radius_<norm>..., correct, samples, seconds``; ``seconds``
    is the certification time per input, shared equally among inputs certified together).

    Each certificate carries [CRK19]'s guarantee at level alpha for its own input (see
    ``SmoothedClassifier.certify``). ``configuration`` adds identifying entries (the model, the
    dataset) to the run's configuration, which a resumed run must match; ``settings`` adds
    entries that do not affect results. Inputs are moved to ``device``, where the model must be.
    With a ``shard`` (``smoothcert.runs.shards.Shard``) only that shard's part of the selected inputs
    is certified; the shard is recorded in the configuration and the number of inputs selected
    before sharding in the settings, for ``smoothcert.runs.shards.merge_shards``.
    ``mode="adaptive"`` stops each input once its goal (``radii``: one list for every norm, or a
    mapping norm -> list; and/or ``tolerance``) is decided, with the same guarantee
    (``smoothcert.certify.adaptive``); the ``samples`` column records what each input used. A
    deterministic smoothing takes no n0, n, alpha or mode (its certificates are exact).
    ``progress(done, total)`` is told how far the run is (see ``Progress``).
    ``results_format="cohen"`` writes the file in [CRK19]'s six columns instead
    (``smoothcert.runs.cohen``; exactly one norm).
    """
    # validate everything before a results file is opened
    progress = _check_progress(progress)
    norm_list = smoothed.check_norms(norms, convert)
    cohen_norm = _cohen_norm(results_format, norm_list)
    if smoothed.noise.deterministic:
        check_sampling_arguments(smoothed.noise, "certify", n0=n0, n=n, alpha=alpha,
                                 mode=None if mode == "fixed" else mode, radii=radii,
                                 tolerance=tolerance)
        protocol: dict[str, Any] = {"norms": [v.value for v in norm_list],
                                    "convert": bool(convert), "mode": "deterministic"}
        # inputs share forward batches by their number of transformations
        group_size = smoothed.inputs_per_batch(smoothed.noise.num_transforms)
    else:
        check_sampling_arguments(smoothed.noise, "certify", n0=n0, n=n, alpha=alpha)
        check_sample_count("n0", n0)
        check_sample_count("n", n)
        check_alpha(alpha)
        lower_confidence_bound(1, 1, alpha, bound)
        protocol = {"n0": n0, "n": n, "alpha": alpha, "norms": [v.value for v in norm_list],
                    "convert": bool(convert), "bound": bound}
        # inputs share forward batches by the samples each draws at once
        samples_per_input = n
        if check_choice("certification mode", mode, CERTIFY_MODES) == "adaptive":
            plan = stage_plan(n, alpha)
            # checks the goal before any file is opened
            rule = AdaptiveRule(smoothed.noise, norm_list, plan, radii=radii,
                                tolerance=tolerance, convert=convert)
            protocol.update(mode=mode, stages=list(plan.sizes), radii=_recorded_radii(radii, rule),
                            tolerance=None if rule.tolerance is None else str(rule.tolerance))
            samples_per_input = min(n0, plan.sizes[0])
        elif radii is not None or tolerance is not None:
            raise ValueError("radii and tolerance are goals of mode='adaptive'; fixed-n "
                             "certification always uses all n samples")
        group_size = smoothed.inputs_per_batch(samples_per_input)
    if cohen_norm is not None:
        protocol["format"] = "cohen"

    def evaluate(xs: torch.Tensor, generators: list[torch.Generator]) -> list[Certificate]:
        return smoothed.certify_batch(xs, n0, n, alpha, norm_list, generators=generators,
                                      convert=convert, bound=bound, mode=mode, radii=radii,
                                      tolerance=tolerance)

    def row_values(cert: Certificate) -> dict[str, Any]:
        return {"p_lower": cert.p_lower,
                **{f"radius_{norm.value}": r for norm, r in cert.radius.items()}}

    return _run("certify", smoothed, dataset, out,
                columns=certify_columns([v.value for v in norm_list]), protocol=protocol,
                evaluate=evaluate, row_values=row_values, group_size=group_size,
                skip=skip, max_examples=max_examples, seed=seed, device=device,
                configuration=configuration, settings=settings, command=command,
                progress=progress, shard=shard, cohen_norm=cohen_norm)


def _recorded_radii(radii: Any, rule: AdaptiveRule) -> list[float] | dict[str, list[float]]:
    """The goal radii as the run record keeps them (a resumed run must match): one sorted list
    when one list was given for every norm, else a sorted list per norm."""
    if radii is None:
        return []
    if not isinstance(radii, Mapping):
        return sorted({r for values in rule.radii.values() for r in values})
    return {norm.value: list(rule.radii[norm]) for norm in rule.norms if norm in rule.radii}


def _cohen_norm(results_format: str, norms: Sequence[Norm]) -> str | None:
    """The one norm of a [CRK19]-format file (None for smoothcert's format)."""
    if results_format == "smoothcert":
        return None
    if results_format != "cohen":
        raise ValueError(f"unknown results format {results_format!r}; choose from smoothcert, "
                         f"cohen")
    if len(norms) != 1:
        raise ValueError(f"[CRK19]'s format has one radius column; certify one norm with it, "
                         f"not {', '.join(n.value for n in norms)}")
    return norms[0].value


def predict_dataset(smoothed: SmoothedClassifier, dataset: _LabelledDataset,
                    out: str | os.PathLike, *, n: int | None = None, alpha: float | None = None,
                    skip: int = 1, max_examples: int = -1, seed: int = 0,
                    device: torch.device | str = "cpu",
                    configuration: Mapping[str, Any] | None = None,
                    settings: Mapping[str, Any] | None = None,
                    command: Sequence[str] | None = None, progress: Progress | None = None,
                    shard: Shard | None = None) -> RunSummary:
    """Run [CRK19] PREDICT on the selected inputs of ``dataset`` and stream the rows to ``out``
    (columns ``idx, label, prediction, p_value, correct, samples, seconds``); otherwise as
    ``certify_dataset``."""
    progress = _check_progress(progress)
    check_sampling_arguments(smoothed.noise, "predict", n=n, alpha=alpha)
    if smoothed.noise.deterministic:
        protocol: dict[str, Any] = {"mode": "deterministic"}
        group_size = smoothed.inputs_per_batch(smoothed.noise.num_transforms)
    else:
        check_sample_count("n", n)
        check_alpha(alpha)
        protocol = {"n": n, "alpha": alpha}
        group_size = smoothed.inputs_per_batch(n)

    def evaluate(xs: torch.Tensor, generators: list[torch.Generator]) -> list[Prediction]:
        return smoothed.predict_batch(xs, n, alpha, generators=generators)

    def row_values(prediction: Prediction) -> dict[str, Any]:
        return {"p_value": prediction.p_value}

    return _run("predict", smoothed, dataset, out, columns=PREDICT_COLUMNS, protocol=protocol,
                evaluate=evaluate, row_values=row_values, group_size=group_size, skip=skip,
                max_examples=max_examples, seed=seed, device=device,
                configuration=configuration, settings=settings, command=command,
                progress=progress, shard=shard)
