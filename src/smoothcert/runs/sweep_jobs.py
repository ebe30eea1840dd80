"""Sweep files expanded into jobs: the TOML schema, grid products, job names and command lines.

The schema is described in ``smoothcert.runs.sweep`` (and with examples in
``experiments/README.md``). This module turns a sweep file into ``Job``s, each with its
``smoothcert`` arguments and output path; it runs nothing and reads no output. Whether a job's
outputs are complete is decided by ``smoothcert.runs.sweep_complete``.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from smoothcert.runs.sweep_complete import checkpoint_complete, results_complete

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["Sweep", "Job", "load_sweep", "parse_sweep", "CHECKPOINT_NAME"]

#: the file name of the checkpoint inside a training job's folder
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
            return checkpoint_complete(self.output, self.options)
        return results_complete(self.output, self.options)


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


def _check_value(value: Any, where: str, table: bool = True) -> None:
    """An option value is a string, number, boolean or list of them, or (``table``) a table of
    those, which gives a repeatable option once per entry as KEY=VALUE."""
    if (isinstance(value, Mapping) and (not table or not value)) or (
            isinstance(value, list) and any(isinstance(v, (list, Mapping)) for v in value)):
        raise ValueError(f"{where}: option values must be strings, numbers, booleans, lists "
                         f"of them or a non-empty table of them, got {value!r}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_value(item, f"{where}.{key}", table=False)
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
        elif isinstance(value, Mapping):  # radii = {l1 = [0.5, 1]}: --radii l1=0.5,1
            for entry, item in value.items():
                args += [flag, f"{entry}={_render(item)}"]
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
    if isinstance(value, Mapping):  # radii = {l1 = [0.5, 1], l2 = 0.5}: radii_l1=0.5+1_l2=0.5
        return "_".join([key, *(f"{k}={_name_part('', v)}" for k, v in value.items())])
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
