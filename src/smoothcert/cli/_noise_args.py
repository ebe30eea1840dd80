"""Command-line flags that choose a smoothing noise, shared by the subcommands that need one.

``add_noise_arguments`` adds ``--noise`` (a registered family), ``--sigma`` or ``--scale``
(exactly one: the per-coordinate RMS size, or the family's natural scale) and the shape flags
``--k --j --a --p``; ``noise_from_args`` builds the noise, passing only the shape flags that were
given, so each family applies its own defaults and rejects parameters it does not have. A
``prefix`` names a second noise in the same command (``prefix="train-"`` gives
``--train-noise``, ``--train-sigma``, ...).
"""

from __future__ import annotations

import argparse

from smoothcert.noises import Noise, get_noise, list_noises

__all__ = ["add_noise_arguments", "noise_from_args", "SHAPE_FLAGS"]

#: shape parameters of the families, by flag name
SHAPE_FLAGS = {
    "k": "the exponent k of the norm, as in exp(-||x||^k) or (1 + ||x||^k)^-a",
    "j": "the power j of the prefactor ||x||^-j",
    "a": "the tail exponent a of a power-law density",
    "p": "the exponent p of the i.i.d. generalized normal exp(-|x_i|^p)",
}


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


def _dest(prefix: str, name: str) -> str:
    return (prefix + name).replace("-", "_")


def add_noise_arguments(parser: argparse.ArgumentParser, *, prefix: str = "",
                        required: bool = True) -> None:
    """Add the noise flags (with ``prefix``) to ``parser``; with ``required=False`` the noise
    may be left out altogether (``noise_from_args`` then returns None)."""
    group = parser.add_argument_group(f"{prefix}noise" if prefix else "noise")
    group.add_argument(f"--{prefix}noise", choices=list_noises(), required=required,
                       dest=_dest(prefix, "noise"), help="the noise family")
    size = group.add_mutually_exclusive_group(required=required)
    size.add_argument(f"--{prefix}sigma", type=float, dest=_dest(prefix, "sigma"),
                      help="noise size: per-coordinate RMS, sqrt(E||delta||_2^2 / d)")
    size.add_argument(f"--{prefix}scale", type=float, dest=_dest(prefix, "scale"),
                      help="noise size as the family's natural scale lambda")
    for name, meaning in SHAPE_FLAGS.items():
        group.add_argument(f"--{prefix}{name}", type=_number, dest=_dest(prefix, name),
                           help=f"shape parameter: {meaning}")


def noise_from_args(args: argparse.Namespace, dim: int, *, prefix: str = "") -> Noise | None:
    """The noise on R^dim named by the flags of ``add_noise_arguments`` (None when ``--noise``
    was optional and not given). Raises ValueError for a missing size or a shape flag the family
    does not have."""
    name = getattr(args, _dest(prefix, "noise"))
    sigma = getattr(args, _dest(prefix, "sigma"))
    scale = getattr(args, _dest(prefix, "scale"))
    shape = {flag: getattr(args, _dest(prefix, flag)) for flag in SHAPE_FLAGS}
    shape = {flag: value for flag, value in shape.items() if value is not None}
    if name is None:
        given = [f"--{prefix}{flag}" for flag, value in
                 {"sigma": sigma, "scale": scale, **shape}.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} given without --{prefix}noise")
        return None
    return get_noise(name, dim=dim, sigma=sigma, scale=scale, **shape)
