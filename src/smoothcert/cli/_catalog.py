"""What the command line needs to know about the registries, without importing them.

Building the parser must stay fast (``smoothcert --help`` in well under a second), so it cannot
import torch, which every noise family, dataset and architecture module does. This module reads
the names and shape parameters from the package's source files instead (``ast``, no import):

- noise families: the classes decorated ``@register_noise("name")`` in ``smoothcert/noises/*.py``
  and their dataclass fields (annotated class attributes other than ``ClassVar``), with the
  default written in the source;
- datasets and architectures: the names in ``@register_dataset("name")`` /
  ``@register_model("name", ...)`` in ``smoothcert/data/*.py`` and ``smoothcert/models/*.py``.

Families, datasets and architectures registered at run time (a plugin imported with
``--noise-module``, or code that registered one before calling ``smoothcert.cli.main.main``) are
added from the live registries, which are consulted only if their modules are already imported.
``tests/test_cli_startup.py`` checks that this catalog equals the live registries.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Field", "Family", "noise_families", "dataset_names", "model_names",
           "module_dict_keys", "class_field_default"]

_PACKAGE = Path(__file__).resolve().parent.parent  # .../smoothcert


@dataclass(frozen=True)
class Field:
    """A shape parameter of a noise family: its name, annotation and default (source text)."""

    name: str
    annotation: str
    default: str | None


@dataclass(frozen=True)
class Family:
    """A noise family as the command line sees it: its module and shape parameters."""

    name: str
    module: str
    fields: tuple[Field, ...]


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _modules(package: str) -> list[tuple[str, ast.Module]]:
    folder = _PACKAGE / package
    return [(f"smoothcert.{package}.{path.stem}", _tree(path))
            for path in sorted(folder.glob("*.py")) if path.stem != "__init__"]


def _registered_name(node: ast.ClassDef | ast.FunctionDef, decorator: str) -> str | None:
    """The name in ``@decorator("name", ...)`` on ``node``, if it has one."""
    for dec in node.decorator_list:
        if (isinstance(dec, ast.Call) and dec.args and isinstance(dec.args[0], ast.Constant)
                and isinstance(dec.args[0].value, str)):
            func = dec.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == decorator:
                return dec.args[0].value
    return None


def _is_classvar(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _class_fields(node: ast.ClassDef) -> tuple[Field, ...]:
    fields = []
    for statement in node.body:
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and not _is_classvar(statement.annotation)):
            default = None if statement.value is None else ast.unparse(statement.value)
            fields.append(Field(statement.target.id, ast.unparse(statement.annotation), default))
    return tuple(fields)


def _static_names(package: str, decorator: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for module, tree in _modules(package):
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                name = _registered_name(node, decorator)
                if name is not None:
                    found[name] = module
    return found


@functools.lru_cache(maxsize=1)
def _static_families() -> dict[str, Family]:
    found: dict[str, Family] = {}
    for module, tree in _modules("noises"):
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                name = _registered_name(node, "register_noise")
                if name is not None:
                    found[name] = Family(name, module, _class_fields(node))
    return found


def _live_families() -> dict[str, Family]:
    """Families in the live registry, if the noise base module has been imported."""
    base = sys.modules.get("smoothcert.noises.base")
    if base is None:
        return {}
    import dataclasses

    found = {}
    for name in base.registered_names():
        cls = base.noise_class(name)
        fields = []
        for f in dataclasses.fields(cls):
            if f.name in ("dim", "sigma"):
                continue
            annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            default = None if f.default is dataclasses.MISSING else repr(f.default)
            fields.append(Field(f.name, annotation, default))
        found[name] = Family(name, cls.__module__, tuple(fields))
    return found


def noise_families() -> dict[str, Family]:
    """Every noise family by name: the package's own, read from source, and those registered
    at run time (which win where both know a name)."""
    return dict(sorted({**_static_families(), **_live_families()}.items()))


def _live_names(module: str) -> list[str]:
    loaded = sys.modules.get(module)
    return list(loaded.registered_names()) if loaded is not None else []


def dataset_names() -> list[str]:
    """Names of the registered datasets (the package's and any registered at run time)."""
    return sorted({*_static_names("data", "register_dataset"),
                   *_live_names("smoothcert.data.base")})


def model_names() -> list[str]:
    """Names of the registered architectures (the package's and any registered at run time)."""
    return sorted({*_static_names("models", "register_model"),
                   *_live_names("smoothcert.models.registry")})


def module_dict_keys(module: str, variable: str) -> list[str]:
    """The string keys of the dict literal assigned to ``variable`` in the package module
    ``module`` (e.g. ``("training.loop", "RECIPES")``), read from its source."""
    tree = _tree(_PACKAGE.joinpath(*module.split(".")).with_suffix(".py"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == variable and isinstance(
                node.value, ast.Dict):
            return sorted(k.value for k in node.value.keys
                          if isinstance(k, ast.Constant) and isinstance(k.value, str))
    raise LookupError(f"no dict literal {variable} in smoothcert.{module}")


def class_field_default(module: str, cls: str, field: str) -> Any:
    """The literal default of ``cls.field`` in the package module ``module``, read from its
    source (``ast.literal_eval``)."""
    tree = _tree(_PACKAGE.joinpath(*module.split(".")).with_suffix(".py"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for f in _class_fields(node):
                if f.name == field and f.default is not None:
                    return ast.literal_eval(f.default)
    raise LookupError(f"no field {cls}.{field} with a literal default in smoothcert.{module}")
