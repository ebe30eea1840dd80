"""Whether a sweep job's outputs are complete, so that the job can be skipped.

A training job is complete when its checkpoint was trained with the job's options and has all its
epochs; a certification job when its run record (``.json``) is beside the TSV, matches the job's
options, and the TSV has a row for every input the job selects. Outputs written with other options
are not complete (a warning names the difference): the job then runs, and ``train``/``certify``
refuse to overwrite them. These checks only read files; they never write one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smoothcert.runs.reading import read_run_record, read_table, run_json_path

logger = logging.getLogger(__name__)

__all__ = ["checkpoint_complete", "results_complete"]

#: training options that do not change the trained model
_TRAIN_SETTINGS = {"out", "resume", "device", "data_dir", "workers"}
#: training options recorded under another name in a checkpoint's config
_TRAIN_CONFIG_NAMES = {"sigma": "train_sigma"}


def checkpoint_complete(path: Path, options: Mapping[str, Any]) -> bool:
    """A checkpoint is complete when it was trained with this job's options and has run all the
    epochs its configuration asks for."""
    if not path.is_file():
        return False
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # checkpoints are written atomically, so an unreadable one is not a half-written file
        # that a rerun would fix: leave the decision to the user
        raise ValueError(f"checkpoint {str(path)!r} is not readable ({exc}); delete it to "
                         f"train again") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("config"), Mapping):
        raise ValueError(f"{str(path)!r} is not a smoothcert checkpoint")
    from smoothcert.training.config import recorded_training_options

    config = recorded_training_options(raw["config"])
    differences = []
    for key, value in options.items():
        name = _TRAIN_CONFIG_NAMES.get(key, key)
        if key in _TRAIN_SETTINGS:
            continue
        recorded = (config.get("dataset_options") or {}).get(key) if key == "classes" \
            else config.get(name, value)
        if _normalized(recorded) != _normalized(value):
            differences.append(f"{key}: {recorded!r} recorded, {value!r} asked")
    if differences:
        # not complete for this job: running it makes `train --resume` refuse the checkpoint
        logger.warning("%s was trained with another configuration (%s)", path,
                       "; ".join(differences))
        return False
    epoch, epochs = raw.get("epoch"), config.get("epochs")
    return isinstance(epoch, int) and isinstance(epochs, int) and epoch >= epochs


def _normalized(value: Any) -> Any:
    """A value as a comma-separated command-line string would give it back."""
    if isinstance(value, str) and "," in value:
        return [_normalized(v.strip()) for v in value.split(",")]
    if isinstance(value, (list, tuple)):
        return [_normalized(v) for v in value]
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                continue
    return value


def results_complete(path: Path, options: Mapping[str, Any]) -> bool:
    """A results TSV is complete when its run record is beside it, the record describes the run
    this job asks for, and the TSV has a row for every input the job selects."""
    record = read_run_record(path) if path.is_file() else None
    if record is None:
        return False
    configuration = record.get("configuration")
    if not isinstance(configuration, Mapping):
        raise ValueError(f"run record {str(run_json_path(path))!r} has no configuration")
    differences = _record_differences(configuration, options)
    if differences:
        # not complete for this job: running it makes `certify` refuse the file with a message
        logger.warning("%s was written by another configuration (%s)", path,
                       "; ".join(differences))
        return False
    data_dir = options.get("data_dir", record.get("data_dir"))
    length = _dataset_length(str(configuration["dataset"]), str(configuration["split"]),
                             None if data_dir is None else str(data_dir),
                             _classes(configuration.get("classes")))
    from smoothcert.runs.selection import select_indices

    wanted = select_indices(length, int(options.get("skip", 1)), int(options.get("max", -1)))
    done = set(read_table(path).idx)
    return done.issuperset(wanted)


def _classes(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(int(v) for v in value.split(","))
    return tuple(int(v) for v in value)


@functools.lru_cache(maxsize=32)
def _dataset_length(name: str, split: str, root: str | None,
                    classes: tuple[int, ...] | None) -> int:
    from smoothcert.data import get_dataset

    options = {} if classes is None else {"classes": classes}
    return len(get_dataset(name, split=split, root=root, **options))


def _record_differences(configuration: Mapping[str, Any], options: Mapping[str, Any]
                        ) -> list[str]:
    """Options of the job that disagree with the configuration recorded with its results."""
    problems = []
    for key in ("n0", "n", "alpha", "skip", "seed", "bound", "split", "dataset"):
        if key in options and key in configuration and configuration[key] != options[key]:
            problems.append(f"{key}: {configuration[key]!r} recorded, {options[key]!r} asked")
    if "classes" in options and _classes(options["classes"]) != _classes(
            configuration.get("classes")):
        problems.append(f"classes: {configuration.get('classes')!r} recorded, "
                        f"{options['classes']!r} asked")
    if "norms" in options:
        asked = options["norms"]
        asked = asked.split(",") if isinstance(asked, str) else list(asked)
        if [str(v).strip().lower() for v in asked] != list(configuration.get("norms", [])):
            problems.append(f"norms: {configuration.get('norms')!r} recorded, {asked!r} asked")
    if bool(options.get("convert", False)) != bool(configuration.get("convert", False)):
        problems.append(f"convert: {configuration.get('convert')!r} recorded, "
                        f"{bool(options.get('convert', False))!r} asked")
    noise = configuration.get("noise") or {}
    for key, recorded in (("noise", noise.get("name")), ("sigma", noise.get("sigma")),
                          ("scale", noise.get("scale"))):
        if key in options and recorded != options[key]:
            problems.append(f"{key}: {recorded!r} recorded, {options[key]!r} asked")
    return problems
