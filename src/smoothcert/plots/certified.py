"""Figures: certified accuracy against radius, and certified radius against p_lower.

Plotting functions draw on a matplotlib ``Axes`` given by the caller and return it. ``new_figure``
builds a figure on the Agg canvas directly (no pyplot, no backend switch, no display needed), and
``save_figure`` writes PNG or PDF by the file's suffix. Nothing here changes matplotlib's global
state.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from smoothcert.analysis import (
    AccuracyCurve,
    CertificationResults,
    accuracy_curve,
    envelope,
    is_converted,
)
from smoothcert.norms import Norm
from smoothcert.plots.style import CONVERTED_STYLE, converted_label, family_colour

if TYPE_CHECKING:
    from smoothcert.noises.base import Noise

__all__ = [
    "new_figure",
    "new_figure_row",
    "plot_envelopes",
    "save_figure",
    "plot_certified_accuracy",
    "plot_radius_vs_p_lower",
    "noise_label",
    "run_caption",
    "FIGURE_SUFFIXES",
]

FIGURE_SUFFIXES = (".png", ".pdf")

#: norms as written in axis labels
_NORM_TEX = {Norm.L1: r"$\ell_1$", Norm.L2: r"$\ell_2$", Norm.LINF: r"$\ell_\infty$"}


def new_figure(width: float = 6.4, height: float = 4.4, dpi: float = 150) -> tuple[Figure, Axes]:
    """A figure with one Axes, attached to an Agg canvas (works without a display)."""
    figure, (ax,) = new_figure_row(1, width=width, height=height, dpi=dpi)
    return figure, ax


def new_figure_row(ncols: int, *, width: float = 6.4, height: float = 4.4, dpi: float = 150
                   ) -> tuple[Figure, list[Axes]]:
    """A figure with ``ncols`` Axes side by side (each ``width`` x ``height`` inches), attached
    to an Agg canvas."""
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    figure = Figure(figsize=(width * ncols, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as PNG or PDF, chosen by the suffix of ``path``; creates the folder."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise ValueError(
            f"cannot write a figure to {str(path)!r}; use a file name ending in "
            f"{' or '.join(FIGURE_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=suffix[1:])
    return path


def _exact_radii(results: Sequence[CertificationResults], norm: Norm,
                 max_radius: float | None, points: int) -> np.ndarray:
    """Radii at which to evaluate certified-accuracy curves so they are drawn exactly.

    Certified accuracy is a non-increasing step function, constant on (a, b] between consecutive
    certified radii a < b. With every certified radius in the grid, "steps-pre" drawing (the
    value at b drawn over (a, b]) is exact and never above the truth.
    """
    if not results:
        raise ValueError("no certification results to plot")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    if max_radius is None:
        largest = max(float(np.max(r.radii(norm), initial=0.0)) for r in results)
        max_radius = 1.05 * largest if largest > 0 else 1.0
    if not max_radius > 0:
        raise ValueError(f"max_radius must be > 0, got {max_radius!r}")
    breaks = np.concatenate([r.radii(norm)[r.correct] for r in results])
    return np.unique(np.concatenate([np.linspace(0.0, float(max_radius), points),
                                     breaks[breaks <= max_radius]]))


def run_caption(results: Sequence[CertificationResults]) -> str:
    """What the runs were certified with, from their run records: the sample size n, the level
    alpha and the number of images (several values when the runs differ), e.g.
    ``n = 500, α = 0.001, 200 images``; runs of a deterministic noise (``dssn``), which have no
    n or alpha, are named as exact, e.g. ``n = 100,000, α = 0.001; exact: dssn-1.0; 1,000
    images``."""
    def values(key: str) -> list:
        found = {r.run.get("configuration", {}).get(key) for r in results}
        return sorted(v for v in found if isinstance(v, (int, float)) and not isinstance(v, bool))

    sampled = []
    if values("n"):
        sampled.append("n = " + ", ".join(f"{int(v):,}" for v in values("n")))
    if values("alpha"):
        sampled.append("α = " + ", ".join(f"{v:g}" for v in values("alpha")))
    exact = [r.label for r in results
             if r.run.get("configuration", {}).get("mode") == "deterministic"]
    parts = [", ".join(sampled)] if sampled else []
    if exact:
        parts.append("exact" if len(exact) == len(results) else "exact: " + ", ".join(exact))
    images = sorted({len(r) for r in results})
    parts.append(f"{', '.join(f'{k:,}' for k in images)} image{'s' if images != [1] else ''}")
    return "; ".join(parts) if exact else ", ".join(parts)


def _fitted_top(peak: float) -> float:
    """The top of the accuracy axis: the highest accuracy plus headroom, in tenths, at most 1."""
    return min(1.0, math.ceil((peak + 0.05) * 10 - 1e-9) / 10)


def _finish_accuracy_axes(ax: Axes, norm: Norm, radii: np.ndarray, title: str | None,
                          results: Sequence[CertificationResults], peak: float) -> None:
    ax.set_xlim(0.0, float(radii[-1]))
    ax.set_ylim(0.0, _fitted_top(peak))
    ax.set_xlabel(f"{_NORM_TEX[norm]} radius")
    ax.set_ylabel("certified accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    caption = run_caption(results)
    ax.set_title(f"{title}\n{caption}" if title else caption, fontsize="medium")


def _family(runs: Sequence[CertificationResults]) -> str | None:
    """The noise family all ``runs`` were smoothed with (from their run records), else None."""
    names = {r.run.get("configuration", {}).get("noise", {}).get("name") for r in runs}
    if len(names) != 1:
        return None
    name = names.pop()
    try:
        return name if isinstance(name, str) and family_colour(name) else None
    except ValueError:
        return None


def _shade(colour: str, k: int, count: int) -> tuple[float, float, float]:
    """The k-th of ``count`` shades of ``colour`` (the first the colour itself, later ones
    lighter), for several runs of one family."""
    from matplotlib.colors import to_rgb

    mix = 0.0 if count <= 1 else 0.6 * k / (count - 1)
    return tuple(c + (1.0 - c) * mix for c in to_rgb(colour))  # type: ignore[return-value]


def plot_certified_accuracy(ax: Axes, results: Sequence[CertificationResults],
                            norm: Norm | str, *, max_radius: float | None = None,
                            show_envelope: bool = True, points: int = 801,
                            title: str | None = None) -> Axes:
    """Certified accuracy against radius for each run, plus their envelope (the best run at each
    radius, dashed black), as in the figures of [CRK19] and [YDH+20].

    The curves are the exact step functions on [0, ``max_radius``] (default: a little beyond the
    largest certified radius), drawn through ``points`` evenly spaced radii and every certified
    radius.
    """
    norm = Norm.parse(norm)
    radii = _exact_radii(results, norm, max_radius, points)
    curves = [accuracy_curve(r, radii, norm) for r in results]
    families = [_family([r]) for r in results]
    for i, (run, curve, family) in enumerate(zip(results, curves, families, strict=True)):
        style: dict = {}
        if family is not None:
            # the runs of one family in its colour, in shades
            same = [k for k, f in enumerate(families) if f == family]
            style["color"] = _shade(family_colour(family), same.index(i), len(same))
        label = curve.label
        if is_converted(run, norm):
            style["linestyle"], label = CONVERTED_STYLE, converted_label(label)
        ax.plot(radii, curve.accuracy, drawstyle="steps-pre", linewidth=1.4, label=label,
                **style)
    if show_envelope and len(curves) > 1:
        env: AccuracyCurve = envelope(curves)
        ax.plot(radii, env.accuracy, drawstyle="steps-pre", color="black", linestyle="--",
                linewidth=2.0, label="envelope")
    peak = max(float(np.max(c.accuracy)) for c in curves)
    _finish_accuracy_axes(ax, norm, radii, title, results, peak)
    return ax


def plot_envelopes(ax: Axes, groups: Mapping[str, Sequence[CertificationResults]],
                   norm: Norm | str, *, max_radius: float | None = None, points: int = 801,
                   title: str | None = None) -> Axes:
    """One curve per group of runs: the group's envelope (for instance one noise family over its
    training sigmas, the rows of [YDH+20] Table 1), drawn exactly as in
    ``plot_certified_accuracy``."""
    norm = Norm.parse(norm)
    if not groups or any(not runs for runs in groups.values()):
        raise ValueError("every group needs at least one run")
    every = [r for runs in groups.values() for r in runs]
    radii = _exact_radii(every, norm, max_radius, points)
    peak = 0.0
    for label, runs in groups.items():
        env = envelope([accuracy_curve(r, radii, norm) for r in runs], label=label)
        style: dict = {}
        family = _family(runs)
        if family is not None:
            style["color"] = family_colour(family)
        if any(is_converted(r, norm) for r in runs):
            style["linestyle"], label = CONVERTED_STYLE, converted_label(label)
        ax.plot(radii, env.accuracy, drawstyle="steps-pre", linewidth=1.6, label=label, **style)
        peak = max(peak, float(np.max(env.accuracy)))
    _finish_accuracy_axes(ax, norm, radii, title, every, peak)
    return ax


def _registered() -> list[str]:
    from smoothcert.noises import list_noises

    return list_noises()


def noise_label(noise: Noise) -> str:
    """A legend entry: the family name with its shape parameters, e.g. ``exp_inf(k=1, j=0)``."""
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in noise.shape_params.items())
    return f"{noise.name}({params})" if params else noise.name


def plot_radius_vs_p_lower(ax: Axes, noises: Sequence[Noise], norm: Norm | str, *,
                           p_max: float = 0.999, points: int = 400, convert: bool = True,
                           title: str | None = None) -> Axes:
    """Certified radius against p_lower in (1/2, ``p_max``] for each noise (compare them at equal
    sigma, as in [YDH+20]).

    A noise that does not certify ``norm`` directly is drawn with the lp conversion (a valid but
    loose radius) when ``convert`` is true, dotted, with "converted from ..." in its legend entry;
    with ``convert=False`` it raises ValueError.
    """
    norm = Norm.parse(norm)
    if not noises:
        raise ValueError("no noises to plot")
    if not 0.5 < p_max < 1.0:
        raise ValueError(f"p_max must lie in (0.5, 1), got {p_max!r}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    p = np.linspace(0.5, p_max, points)
    for noise in noises:
        direct = noise.certifies(norm)
        if not direct and not convert:
            raise ValueError(
                f"{noise.name} noise does not certify {norm.value} directly; pass convert=True "
                f"to draw its converted radius"
            )
        radius = noise.certified_radius(p, norm, convert=not direct)
        label = noise_label(noise)
        if not direct:
            sources = ", ".join(n.value for n in noise.direct_norms)
            label += f" (converted from {sources})"
        style = {"color": family_colour(noise.name)} if noise.name in _registered() else {}
        ax.plot(p, radius, linestyle="-" if direct else CONVERTED_STYLE, linewidth=1.6,
                label=label, **style)
    sigmas = sorted({noise.sigma for noise in noises})
    dims = sorted({noise.dim for noise in noises})
    ax.set_xlim(0.5, p_max)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$p_\mathrm{lower}$ (lower bound on the top-class probability)")
    ax.set_ylabel(f"certified {_NORM_TEX[norm]} radius")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else
                 f"σ = {', '.join(f'{s:g}' for s in sigmas)}, d = {', '.join(map(str, dims))}")
    return ax
