"""Command-line flags that choose a smoothing noise, shared by the subcommands that need one.

``add_noise_arguments`` adds ``--noise`` (a registered family), ``--sigma`` or ``--scale``
(exactly one: the per-coordinate RMS size, or the family's natural scale) and one flag per shape
parameter of any family (``--k``, ``--j``, ``--a``, ``--p``, ...), derived from the families'
dataclass fields (see ``smoothcert.cli._catalog``): a new family's new parameter becomes a flag
without editing this file. ``noise_from_args`` builds the noise, passing only the shape flags
that were given, so each family applies its own defaults and rejects parameters it does not have.
A ``prefix`` names a second noise in the same command (``prefix="train-"`` gives
``--train-noise``, ``--train-sigma``, ...).

Families outside the package are loaded with ``--noise-module MODULE`` (repeatable): the module
is imported before the command line is parsed, and registers its family with
``@register_noise``, whose name and shape flags are then available like the built-in ones.
"""

from __future__ import annotations

import argparse
import importlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from smoothcert.cli._catalog import noise_families

__all__ = ["add_noise_arguments", "noise_from_args", "shape_flags", "import_noise_modules",
           "NOISE_MODULE_FLAG"]

#: the flag that imports a module defining more noise families
NOISE_MODULE_FLAG = "--noise-module"
_SHAPE_DEST = "noise_shape__"


def _number(text: str) -> int | float:
    """An int when the text is one (so integer parameters stay integers), else a float."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


#: the shape parameter that defaults to the data's pixel grid (``with_data_grid``)
DATA_GRID_PARAMETER = "quantization"

_TYPES = {"int": _number, "float": _number, "str": str, "bool": _boolean}


def shape_flags() -> dict[str, tuple[Any, str]]:
    """Each shape parameter of any family: (argparse type, help naming the families that have
    it and their defaults), by parameter name."""
    users: dict[str, list[str]] = defaultdict(list)
    kinds: dict[str, set[str]] = defaultdict(set)
    for family in noise_families().values():
        for field in family.fields:
            default = "" if field.default is None else f" (default {field.default})"
            if field.name == DATA_GRID_PARAMETER:  # see with_data_grid
                default = " (default: the dataset's pixel grid, e.g. 255 for 8-bit images)"
            users[field.name].append(f"{family.name}{default}")
            kinds[field.name].add(field.annotation)
    flags = {}
    for name in sorted(users):
        kind = kinds[name].pop() if len(kinds[name]) == 1 else "float"
        flags[name] = (_TYPES.get(kind, _number),
                       f"shape parameter of {', '.join(users[name])}")
    return flags


def import_noise_modules(modules: Sequence[str]) -> None:
    """Import the modules named by ``--noise-module`` (each registers its families); an
    unimportable one is a ValueError naming it."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"{NOISE_MODULE_FLAG} {module!r} cannot be imported ({exc})"
                             ) from None


def _dest(prefix: str, name: str) -> str:
    return (prefix + name).replace("-", "_")


def add_noise_arguments(parser: argparse.ArgumentParser, *, prefix: str = "",
                        required: bool = True) -> None:
    """Add the noise flags (with ``prefix``) to ``parser``; with ``required=False`` the noise
    may be left out altogether (``noise_from_args`` then returns None)."""
    group = parser.add_argument_group(f"{prefix}noise" if prefix else "noise")
    families = list(noise_families())
    group.add_argument(f"--{prefix}noise", choices=families, required=required,
                       dest=_dest(prefix, "noise"), metavar="FAMILY",
                       help=f"the noise family: {', '.join(families)}")
    size = group.add_mutually_exclusive_group(required=required)
    size.add_argument(f"--{prefix}sigma", type=float, dest=_dest(prefix, "sigma"),
                      help="noise size: per-coordinate RMS, sqrt(E||delta||_2^2 / d)")
    size.add_argument(f"--{prefix}scale", type=float, dest=_dest(prefix, "scale"),
                      help="noise size as the family's natural scale lambda")
    for name, (kind, meaning) in shape_flags().items():
        flag = f"--{prefix}{name.replace('_', '-')}"
        if flag in parser._option_string_actions:  # the command has a flag of that name
            flag = f"--{prefix}noise-{name.replace('_', '-')}"
        group.add_argument(flag, type=kind, dest=_dest(prefix, _SHAPE_DEST + name),
                           metavar=name.upper(), help=meaning)
    if not prefix and NOISE_MODULE_FLAG not in parser._option_string_actions:
        group.add_argument(NOISE_MODULE_FLAG, action="append", default=[], metavar="MODULE",
                           dest="noise_modules",
                           help="import this module first: it registers more noise families "
                                "with @register_noise (repeatable)")


def noise_from_args(args: argparse.Namespace, dim: int, *, prefix: str = "",
                    quantization: int | None = None) -> Any:
    """The noise on R^dim named by the flags of ``add_noise_arguments`` (None when ``--noise``
    was optional and not given). ``quantization``: the data's pixel grid, the default of a
    family's ``quantization`` parameter (see ``with_data_grid``). Raises ValueError for a
    missing size or a shape flag the family does not have."""
    name = getattr(args, _dest(prefix, "noise"))
    sigma = getattr(args, _dest(prefix, "sigma"))
    scale = getattr(args, _dest(prefix, "scale"))
    shape = given_shape(args, prefix=prefix)
    if name is None:
        given = [f"--{prefix}{flag}" for flag, value in
                 {"sigma": sigma, "scale": scale, **shape}.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} given without --{prefix}noise")
        return None
    from smoothcert.noises import get_noise

    shape = with_data_grid(name, shape, quantization)
    return get_noise(name, dim=dim, sigma=sigma, scale=scale, **shape)


def with_data_grid(name: str, shape: dict[str, Any], quantization: int | None
                   ) -> dict[str, Any]:
    """``shape``, with ``quantization`` set to the data's pixel grid (``DatasetInfo.
    quantization``) when the family has that parameter, it was not given, and the family's
    default is another grid (e.g. ``dssn`` on the digits: 16, not 255). A family without the
    parameter, or data without a grid, leaves ``shape`` as it is."""
    if quantization is None or DATA_GRID_PARAMETER in shape:
        return shape
    import dataclasses

    from smoothcert.noises import noise_class

    field = {f.name: f for f in dataclasses.fields(noise_class(name))}.get(DATA_GRID_PARAMETER)
    if field is None or field.default == quantization:
        return shape
    return {**shape, DATA_GRID_PARAMETER: quantization}


def given_shape(args: argparse.Namespace, *, prefix: str = "") -> dict[str, Any]:
    """The shape parameters given on the command line (with ``prefix``), by parameter name."""
    start = _dest(prefix, _SHAPE_DEST)
    return {key[len(start):]: value for key, value in vars(args).items()
            if key.startswith(start) and value is not None}
