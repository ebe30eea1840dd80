"""Sweeps: grids of ``smoothcert train`` and ``smoothcert certify`` jobs described in TOML.

A sweep file (the schema is documented with examples in ``experiments/README.md``)::

    [sweep]
    out = "runs/cifar10-l1"          # root folder of all outputs (relative: to the working dir)

    [common]                         # options of both train and certify
    dataset = "cifar10"

    [train]                          # options of every `smoothcert train` job
    arch = "wrn40_2"
    epochs = 120

    [certify]                        # options of every `smoothcert certify` job
    norms = ["l1"]
    n0 = 64

    [[grid]]                         # a block of jobs: the product of its list-valued keys
    noise = "uniform"                # plain keys go to both commands (training = smoothing noise)
    sigma = [0.25, 0.5]
    train.stability = [false, true]  # train.* / certify.* keys go to one command only

Each grid point is one training job, in a folder named after the point (for instance
``uniform-sigma0.25-stability``), and one certification job that reads the trained checkpoint.
Points that differ only in ``certify.*`` keys share one training job. An option ``key = value``
becomes the command-line flag ``--key value`` (underscores become dashes); ``true`` becomes a bare
``--key``, ``false`` is left out, and a list becomes one comma-separated value.

A job is skipped when its outputs are complete: a training job when its checkpoint was trained
with the job's options and has all its epochs; a certification job when its run record (``.json``)
is beside the TSV, matches the job's options, and the TSV has a row for every input the job
selects. Other outputs are not complete: the job runs, and ``train``/``certify`` refuse to
overwrite them, naming the difference.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import logging
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from smoothcert.runs.reading import read_run_record, read_table, run_json_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

logger = logging.getLogger(__name__)

__all__ = [
    "Sweep",
    "Job",
    "load_sweep",
    "parse_sweep",
    "select_jobs",
    "run_jobs",
    "CHECKPOINT_NAME",
]

#: file names inside a training job's folder
CHECKPOINT_NAME = "checkpoint.pt"
_SECTIONS = {"sweep", "common", "train", "certify", "grid"}
_SWEEP_KEYS = {"out", "name", "certify_name"}
_SCOPES = ("train", "certify")


@dataclass(frozen=True)
class Job:
    """One command of a sweep: its name, the ``smoothcert`` arguments and its outputs."""

    name: str
    kind: str  # "train" or "certify"
    args: tuple[str, ...]
    output: Path
    #: the options of the job as given in the sweep (after merging sections and the grid point)
    options: Mapping[str, Any] = field(default_factory=dict)
    needs: str | None = None

    def command(self, program: Sequence[str] = ("smoothcert",)) -> list[str]:
        return [*program, *self.args]

    def command_line(self, program: Sequence[str] = ("smoothcert",)) -> str:
        """The command as one shell line (quoted where needed)."""
        return shlex.join(self.command(program))

    def is_complete(self) -> bool:
        """Whether the job's outputs are complete, so it can be skipped."""
        if self.kind == "train":
            return _checkpoint_complete(self.output, self.options)
        return _results_complete(self.output, self.options)


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file: its jobs in run order (each training job before its certifications)."""

    source: str
    out: Path
    jobs: tuple[Job, ...]


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and expand a sweep TOML file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid TOML: {exc}") from exc
    return parse_sweep(data, source=str(path))


def parse_sweep(data: Mapping[str, Any], source: str = "<sweep>") -> Sweep:
    """Expand a sweep given as a (TOML-shaped) mapping into its jobs."""
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; the sections are "
                         f"{sorted(_SECTIONS)}")
    settings = _table(data, "sweep", source)
    bad = set(settings) - _SWEEP_KEYS
    if bad:
        raise ValueError(f"{source}: unknown key(s) {sorted(bad)} in [sweep]; valid: "
                         f"{sorted(_SWEEP_KEYS)}")
    if "out" not in settings or not isinstance(settings["out"], str):
        raise ValueError(f"{source}: [sweep] needs out = \"folder\" for the outputs")
    out = Path(settings["out"])
    common = _table(data, "common", source)
    sections = {scope: _table(data, scope, source) for scope in _SCOPES}
    train_enabled = "train" in data
    blocks = data.get("grid", [{}])
    if isinstance(blocks, Mapping):
        blocks = [blocks]
    if not isinstance(blocks, list) or not all(isinstance(b, Mapping) for b in blocks):
        raise ValueError(f"{source}: grid must be written as [[grid]] tables")

    jobs: dict[str, Job] = {}
    order: list[str] = []
    for number, block in enumerate(blocks, start=1):
        for point in _expand(block, f"{source}, grid block {number}"):
            shared = {k: v for k, v in point.items() if k not in _SCOPES}
            scoped = {scope: dict(point.get(scope, {})) for scope in _SCOPES}
            train_opts = {**common, **sections["train"], **shared, **scoped["train"]}
            certify_opts = {**common, **sections["certify"], **shared, **scoped["certify"]}
            names = _names(settings, shared, scoped, source)
            folder = out / names["train"]
            new: list[Job] = []
            if train_enabled:
                checkpoint = folder / CHECKPOINT_NAME
                new.append(Job(name=f"{names['train']}/train", kind="train",
                               args=("train", *_flags(train_opts), "--out", str(checkpoint),
                                     "--resume"),
                               output=checkpoint, options=train_opts))
                certify_opts = {"checkpoint": str(checkpoint), **certify_opts}
            elif "checkpoint" not in certify_opts:
                raise ValueError(f"{source}: without a [train] section, certify needs a "
                                 f"checkpoint = \"path\" option")
            results = folder / f"{names['certify']}.tsv"
            new.append(Job(name=f"{names['train']}/{names['certify']}", kind="certify",
                           args=("certify", *_flags(certify_opts), "--out", str(results)),
                           output=results, options=certify_opts,
                           needs=f"{names['train']}/train" if train_enabled else None))
            for job in new:
                if job.name in jobs:
                    if jobs[job.name].args != job.args:
                        raise ValueError(
                            f"{source}: two different jobs are both named {job.name!r}; add the "
                            f"option that tells them apart to the grid or to the name template")
                    continue
                jobs[job.name] = job
                order.append(job.name)
    return Sweep(source=source, out=out, jobs=tuple(jobs[name] for name in order))


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{source}: [{key}] must be a table")
    return dict(value)


def _expand(block: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The grid points of a block: the product of its list-valued keys (in the order written)."""
    axes: list[tuple[tuple[str, ...], list[Any]]] = []
    for key, value in block.items():
        if key in _SCOPES:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: {key} must hold options ({key}.name = value)")
            for sub, subvalue in value.items():
                axes.append(((key, sub), _axis(subvalue, f"{where}: {key}.{sub}")))
        else:
            axes.append(((key,), _axis(value, f"{where}: {key}")))
    points = []
    for values in itertools.product(*(values for _, values in axes)):
        point: dict[str, Any] = {}
        for (keys, _), value in zip(axes, values, strict=True):
            if len(keys) == 2:
                point.setdefault(keys[0], {})[keys[1]] = value
            else:
                point[keys[0]] = value
        points.append(point)
    return points


def _axis(value: Any, where: str) -> list[Any]:
    values = list(value) if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where} is an empty list; give at least one value")
    for item in values:
        _check_value(item, where)
    return values


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, Mapping) or (isinstance(value, list)
                                      and any(isinstance(v, (list, Mapping)) for v in value)):
        raise ValueError(f"{where}: option values must be strings, numbers, booleans or lists "
                         f"of them, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")


def _render(value: Any) -> str:
    """An option value on the command line."""
    if isinstance(value, list):
        return ",".join(_render(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _flags(options: Mapping[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        _check_value(value, f"option {key}")
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is False:
            continue
        else:
            args += [flag, _render(value)]
    return args


def _name_part(key: str, value: Any) -> str:
    if value is True:
        return key
    if value is False:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{key}{value:g}"
    if isinstance(value, list):
        return f"{key}{'+'.join(_name_part('', v) for v in value)}"
    return f"{key}{value}"


def _auto_name(parts: Iterable[tuple[str, Any]]) -> str:
    return "-".join(p for p in (_name_part(k, v) for k, v in parts) if p)


def _names(settings: Mapping[str, Any], shared: Mapping[str, Any],
           scoped: Mapping[str, Mapping[str, Any]], source: str) -> dict[str, str]:
    """Folder name of the training job and file stem of the certification job of a point."""
    if "name" in settings:
        fields = {**shared, **{scope: SimpleNamespace(**opts) for scope, opts in scoped.items()}}
        try:
            train_name = str(settings["name"]).format(**fields)
        except (KeyError, AttributeError, IndexError, ValueError) as exc:
            raise ValueError(f"{source}: [sweep] name {settings['name']!r} cannot be filled from "
                             f"the grid point {dict(shared)} ({exc!r})") from None
    else:
        train_name = _auto_name([*shared.items(), *scoped["train"].items()]) or "default"
    if "certify_name" in settings:
        fields = {**shared, **{scope: SimpleNamespace(**opts) for scope, opts in scoped.items()}}
        try:
            certify_name = str(settings["certify_name"]).format(**fields)
        except (KeyError, AttributeError, IndexError, ValueError) as exc:
            raise ValueError(f"{source}: [sweep] certify_name {settings['certify_name']!r} "
                             f"cannot be filled from the grid point ({exc!r})") from None
    else:
        certify_name = "-".join(p for p in ["certify", _auto_name(scoped["certify"].items())]
                                if p)
    for name in (train_name, certify_name):
        if not name or name.startswith(".") or "\\" in name or ".." in Path(name).parts:
            raise ValueError(f"{source}: job name {name!r} is not a usable folder/file name")
    return {"train": train_name, "certify": certify_name}


# ---------------------------------------------------------------------------------- completion
#: training options that do not change the trained model
_TRAIN_SETTINGS = {"out", "resume", "device", "data_dir", "workers"}
#: training options recorded under another name in a checkpoint's config
_TRAIN_CONFIG_NAMES = {"sigma": "train_sigma"}


def _checkpoint_complete(path: Path, options: Mapping[str, Any]) -> bool:
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


def _results_complete(path: Path, options: Mapping[str, Any]) -> bool:
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


# ---------------------------------------------------------------------------------- running
def select_jobs(jobs: Sequence[Job], only: Sequence[str] | None = None) -> list[Job]:
    """The jobs whose name matches one of the shell-style patterns ``only`` (all without), plus
    the training jobs they need."""
    if not only:
        return list(jobs)
    chosen = {job.name for job in jobs if any(fnmatch.fnmatchcase(job.name, p) for p in only)}
    chosen |= {job.needs for job in jobs if job.name in chosen and job.needs}
    return [job for job in jobs if job.name in chosen]


def run_jobs(jobs: Sequence[Job], *, program: Sequence[str] | None = None,
             runner: Callable[[list[str]], int] | None = None,
             keep_going: bool = False) -> dict[str, str]:
    """Run the jobs in order, skipping complete ones; returns each job's status
    ("done", "skipped", "failed", "blocked": its training job failed).

    ``runner`` runs one command and returns its exit code (default: a subprocess of this Python
    running ``smoothcert``).
    """
    program = list(program) if program is not None else [sys.executable, "-m",
                                                         "smoothcert.cli.main"]
    runner = runner or _subprocess_runner
    status: dict[str, str] = {}
    for number, job in enumerate(jobs, start=1):
        if job.needs and status.get(job.needs) in ("failed", "blocked"):
            status[job.name] = "blocked"
            logger.warning("[%d/%d] %s: not run, %s failed", number, len(jobs), job.name,
                           job.needs)
            continue
        if job.is_complete():
            status[job.name] = "skipped"
            logger.info("[%d/%d] %s: complete, skipped", number, len(jobs), job.name)
            continue
        logger.info("[%d/%d] %s: %s", number, len(jobs), job.name, job.command_line(program))
        code = runner(job.command(program))
        status[job.name] = "done" if code == 0 else "failed"
        if code != 0:
            logger.error("[%d/%d] %s failed with exit code %d", number, len(jobs), job.name,
                         code)
            if not keep_going:
                break
    return status


def _subprocess_runner(command: list[str]) -> int:
    return subprocess.run(command, check=False).returncode
