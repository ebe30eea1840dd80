"""Users' own models: weights for a registered architecture, a TorchScript or ``torch.export``
archive, or a Python factory.

>>> loaded = load_user_model(dataset_info("digits"), arch="mlp", weights="weights.pt")  # doctest: +SKIP
>>> loaded.model, loaded.description["weights_sha256"]                                  # doctest: +SKIP

Four sources, each giving an ``nn.Module`` that maps a batch of (C, H, W) inputs in pixel units
to (batch, classes) logits:

- ``arch`` + ``weights``: a plain ``state_dict`` (``torch.save(model.state_dict(), FILE)``) for
  ``get_model(arch, dataset=...)``, read with ``torch.load(weights_only=True)``. Weights nested
  under ``"state_dict"``, ``"model_state_dict"``, ``"model"`` or ``"net"``, and the ``module.``
  prefix of ``DistributedDataParallel`` (or ``_orig_mod.`` of ``torch.compile``), are accepted.
  The keys must match exactly; the error lists the missing and unexpected ones.
- ``model`` = a TorchScript archive (``torch.jit.save``) or a ``torch.export`` archive
  (``torch.export.save``, ``.pt2``), recognized by content, not by suffix.
- ``model`` = ``"module:factory"`` or ``"path/to/file.py:factory"``: the callable is imported and
  called with no arguments; it must return the module (optionally with ``weights``).

Nothing is unpickled beyond tensors and plain values: a ``torch.save(model)`` file (a pickled
class) is refused with a message that says how to convert it.

``normalize`` = (mean, std), one value per channel, prepends smoothcert's ``Normalize`` layer. The
smoothing noise is added to the model's input: a model that expects normalized inputs needs the
layer inside it, so that noise is added in pixel space and radii are in pixel units (normalizing
the data before the model instead would add the noise after normalization). Without
``normalize``, the module receives pixel values as they are.

Every source is checked on a batch of 2 and of 1 zero inputs of the dataset's shape: the output
must be a (batch, classes) tensor. ``description`` (JSON-ready, for a run record) names the source
and the SHA-256 of every file read.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smoothcert.data import DatasetInfo
from smoothcert.data.integrity import digest
from smoothcert.models.normalize import Normalize

__all__ = ["LoadedModel", "load_user_model", "file_kind", "read_state_dict", "load_weights",
           "parse_normalize", "check_model_output", "check_sources", "FILE_KINDS"]

#: what ``file_kind`` recognizes
FILE_KINDS = ("torchscript", "torch.export", "torch.save", "unknown")
#: keys under which a state_dict is commonly nested in a training checkpoint
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
#: prefixes wrappers add to every key: DistributedDataParallel, torch.compile
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

_CONVERT = ("save the weights instead, torch.save(model.state_dict(), FILE), and load them with "
            "--arch NAME --weights FILE or --model MODULE:FACTORY --weights FILE; or save a "
            "torch.export archive, torch.export.save(torch.export.export(model, (x,)), FILE) "
            "with an example batch x, and pass --model FILE")


@dataclass
class LoadedModel:
    """A user's model (in eval mode, on the requested device) and what identifies it.

    ``description`` is JSON-ready and independent of where the files lie (a run's configuration
    may hold it); ``files`` maps each role ("weights", "model", "source") to the path read.
    """

    model: nn.Module
    description: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


def file_kind(path: str | os.PathLike) -> str:
    """What a model file holds, by its content: "torchscript", "torch.export", "torch.save" (a
    pickle written by ``torch.save``: weights, or a whole pickled model) or "unknown"."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            head = fh.read(2)
        # the legacy (pre-1.6) torch.save format is a plain pickle stream
        return "torch.save" if head[:1] == b"\x80" else "unknown"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    tails = {name.split("/", 1)[-1] for name in names}
    if "archive_format" in tails or "models/model.json" in tails:
        return "torch.export"
    if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
        return "torchscript"
    if "data.pkl" in tails:
        return "torch.save"
    return "unknown"


def _existing(path: str | os.PathLike, role: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{role} file {str(path)!r} does not exist")
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state_dict in a ``torch.save`` file, read with ``weights_only=True`` (tensors and plain
    values only), unnested and without wrapper prefixes (see the module docstring)."""
    path = _existing(path, "weights")
    kind = file_kind(path)
    if kind == "torchscript" or kind == "torch.export":
        raise ValueError(f"{str(path)!r} is a {kind} archive, not weights: pass it as "
                         f"--model {path}")
    raw = _load_weights_only(path)
    state = _find_state_dict(raw)
    if state is None:
        found = sorted(map(str, raw))[:8] if isinstance(raw, Mapping) else type(raw).__name__
        raise ValueError(f"{str(path)!r} holds no state_dict (a mapping of parameter names to "
                         f"tensors, at the top or under one of {list(NESTED_KEYS)}); found "
                         f"{found}")
    return _strip_prefixes(state)


def _load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``, with one-line errors; a pickled object (a class
    instance such as a whole model) is refused, never unpickled."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{str(path)!r} holds a pickled Python object (a torch.save(model) "
                         f"file?), which smoothcert does not unpickle because that could run "
                         f"arbitrary code: {_CONVERT}") from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{str(path)!r} is not a readable torch.save file ({first})") from None


def _is_state_dict(value: Any) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def _find_state_dict(raw: Any) -> Mapping[str, torch.Tensor] | None:
    if _is_state_dict(raw):
        return raw
    if isinstance(raw, Mapping):
        for key in NESTED_KEYS:
            if _is_state_dict(raw.get(key)):
                return raw[key]
    return None


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = dict(state)
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped = True
    return state


def _listed(keys: Sequence[str], limit: int = 6) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Load ``state`` into ``module`` with strict key and shape matching; the ValueError names
    ``what`` and lists the missing, unexpected and mismatched keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listed(unexpected)}")
    if mismatched:
        problems.append(f"shapes (weights vs model): {_listed(mismatched)}")
    if problems:
        raise ValueError(f"the weights do not match {what}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def parse_normalize(values: Sequence[float] | str, channels: int
                    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from ``2 * channels`` numbers, the means then the stds (a comma-separated
    string or a sequence); every std must be > 0."""
    if isinstance(values, str):
        try:
            values = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--normalize takes comma-separated numbers, got {values!r}"
                             ) from None
    values = [float(v) for v in values]
    if len(values) != 2 * channels:
        raise ValueError(f"--normalize needs {2 * channels} numbers for {channels} channel(s): "
                         f"the {channels} mean(s), then the {channels} std(s); got {len(values)}")
    mean, std = tuple(values[:channels]), tuple(values[channels:])
    if any(not s > 0 for s in std):
        raise ValueError(f"--normalize: every std must be > 0, got {std}")
    return mean, std


class ExportedModule(nn.Module):
    """A ``torch.export`` program as an ordinary module. The program's train/eval mode was fixed
    when it was exported (export the model in eval mode), so ``train``/``eval`` only set the flag
    here instead of raising as the exported module does."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> ExportedModule:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def _load_archive(path: Path, kind: str, device: torch.device) -> nn.Module:
    try:
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location=device)
        return ExportedModule(torch.export.load(path).module()).to(device)
    except Exception as exc:
        raise ValueError(f"{str(path)!r} is not a loadable {kind} archive ({exc})") from None


def _import_factory(spec: str) -> tuple[Any, Path | None, str]:
    """The callable named by ``module:attr`` or ``file.py:attr``, the file it came from (if
    any) and a location-independent name for it."""
    target, sep, attr = spec.rpartition(":")
    if not sep:
        raise FileNotFoundError(f"model file {spec!r} does not exist (--model takes a "
                                f"TorchScript or torch.export archive, or MODULE:FACTORY)")
    if not target or not attr:
        raise ValueError(f"--model must be an archive file or MODULE:FACTORY (e.g. "
                         f"mypackage.models:build or models.py:build), got {spec!r}")
    if target.endswith(".py") or os.sep in target or "/" in target:
        source = _existing(target, "model source")
        name = f"smoothcert_user_model_{source.stem}"
        module_spec = importlib.util.spec_from_file_location(name, source)
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"cannot import {str(source)!r} as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        label = f"{source.name}:{attr}"
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"--model {spec!r}: cannot import module {target!r} ({exc}); "
                             f"for a file, give its path (e.g. ./models.py:build)") from None
        file = getattr(module, "__file__", None)
        source = Path(file) if file else None
        label = spec
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--model {spec!r}: {target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"--model {spec!r}: {attr!r} is not callable")
    return obj, source, label


def check_sources(*, arch: str | None, weights: Any, model: Any) -> None:
    """Refuse combinations that name no model or two: ``arch`` needs ``weights``; ``model`` is an
    archive file (no ``weights``: it holds them) or a factory (``weights`` optional)."""
    if arch is not None and model is not None:
        raise ValueError("give --arch NAME --weights FILE or --model, not both")
    if arch is not None and weights is None:
        raise ValueError(f"--arch {arch} needs --weights FILE (a state_dict saved with "
                         f"torch.save(model.state_dict(), FILE))")
    if arch is None and model is None:
        hint = ""
        if weights is not None and Path(weights).is_file() and file_kind(weights) in (
                "torchscript", "torch.export"):
            hint = f" ({str(weights)!r} is a {file_kind(weights)} archive: pass --model FILE)"
        raise ValueError("--weights needs --arch NAME (a registered architecture) or --model "
                         "MODULE:FACTORY" + hint)
    if model is not None and weights is not None and Path(model).is_file():
        raise ValueError(f"--model {model} is an archive that holds its weights: drop --weights")


def load_user_model(info: DatasetInfo, *, arch: str | None = None,
                    weights: str | os.PathLike | None = None,
                    model: str | os.PathLike | None = None,
                    normalize: Sequence[float] | str | None = None,
                    device: str | torch.device = "cpu") -> LoadedModel:
    """Load a user's model for dataset ``info`` (see the module docstring for the sources),
    optionally prepend ``Normalize`` (``normalize``: the C means then the C stds), move it to
    ``device``, put it in eval mode, and check its output on the dataset's shape.

    Raises ValueError (FileNotFoundError for a missing file) with a one-line message."""
    from smoothcert.models import get_model

    check_sources(arch=arch, weights=weights, model=model)
    device = torch.device(device)
    files: dict[str, str] = {}
    description: dict[str, Any]
    if arch is not None:
        path = _existing(weights, "weights")
        state = read_state_dict(path)
        full = get_model(arch, dataset=info)
        files["weights"] = str(path)
        description = {"source": "state_dict", "arch": arch,
                       "weights_sha256": digest(path, "sha256")}
        if any(k.startswith("normalize.") for k in state):
            if normalize is not None:
                raise ValueError(f"{str(path)!r} holds its own normalization layer "
                                 f"(normalize.mean, normalize.std): drop --normalize")
            load_weights(full, state, what=f"architecture {arch!r} on {info.name!r}")
            module: nn.Module = full
            description["normalize"] = "in the weights"
        else:
            load_weights(full.network, state,
                         what=f"architecture {arch!r} on {info.name!r} (without its "
                              f"normalization layer)")
            module = full.network
    elif Path(model).is_file():
        path = Path(model)
        kind = file_kind(path)
        if kind == "torch.save":
            raw = _load_weights_only(path)  # refuses a pickled model
            if isinstance(raw, Mapping) and raw.get("format") == "smoothcert-checkpoint":
                raise ValueError(f"{str(path)!r} is a smoothcert checkpoint: pass --checkpoint "
                                 f"FILE")
            raise ValueError(f"{str(path)!r} holds weights, not a model archive: load them with "
                             f"--arch NAME --weights FILE or --model MODULE:FACTORY --weights "
                             f"FILE")
        if kind == "unknown":
            raise ValueError(f"{str(path)!r} is neither a TorchScript nor a torch.export archive")
        module = _load_archive(path, kind, device)
        files["model"] = str(path)
        description = {"source": kind, "sha256": digest(path, "sha256")}
    else:
        factory, source, label = _import_factory(str(model))
        built = factory()
        if not isinstance(built, nn.Module):
            raise ValueError(f"--model {model}: the factory returned {type(built).__name__}, "
                             f"not a torch.nn.Module")
        module = built
        description = {"source": "factory", "factory": label}
        if source is not None and source.is_file():
            files["source"] = str(source)
            description["source_sha256"] = digest(source, "sha256")
        if weights is not None:
            path = _existing(weights, "weights")
            load_weights(module, read_state_dict(path), what=f"the module built by {label}")
            files["weights"] = str(path)
            description["weights_sha256"] = digest(path, "sha256")
    if "normalize" not in description:
        if normalize is None:
            description["normalize"] = None
        else:
            mean, std = parse_normalize(normalize, info.shape[0])
            module = nn.Sequential(Normalize(mean, std), module)
            description["normalize"] = {"mean": list(mean), "std": list(std)}
    module = module.to(device).eval()
    check_model_output(module, info, device)
    return LoadedModel(model=module, description=description, files=files)


def check_model_output(module: nn.Module, info: DatasetInfo,
                       device: str | torch.device = "cpu") -> None:
    """Run ``module`` on batches of 2 and 1 zero inputs of ``info.shape`` and require a floating
    (batch, info.num_classes) tensor; ValueError otherwise."""
    shape = tuple(info.shape)
    for batch in (2, 1):
        x = torch.zeros(batch, *shape, device=device)
        try:
            with torch.no_grad():
                out = module(x)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(
                f"the model fails on a batch of {batch} inputs of shape {shape} (dataset "
                f"{info.name!r}): {first}. Does it take (batch, C, H, W) pixel inputs? An "
                f"exported program needs a dynamic batch dimension (torch.export.Dim)") from None
        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            raise ValueError(f"the model must return a tensor of logits, got "
                             f"{type(out).__name__}")
        if tuple(out.shape) != (batch, info.num_classes):
            raise ValueError(
                f"the model returns shape {tuple(out.shape)} for a batch of {batch} inputs of "
                f"shape {shape}; dataset {info.name!r} has {info.num_classes} classes, so it "
                f"must return ({batch}, {info.num_classes}) logits")
