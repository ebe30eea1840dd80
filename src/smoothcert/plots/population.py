"""Figures of the synthetic experiment of [PS23] (``smoothcert.pal_sulam.population``), as
``matplotlib.figure.Figure`` objects (no pyplot, no backend change): Fig. 3 (example disk
distributions) and Fig. 4 (risk difference curves)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from smoothcert.pal_sulam.population.disks import random_disks
from smoothcert.pal_sulam.population.synthetic import SyntheticResult, image_rng

__all__ = ["risk_difference_figure", "disk_examples_figure"]


def risk_difference_figure(result: SyntheticResult) -> Figure:
    """Fig. 4: Delta_{alpha,beta} - Delta_{0,beta} against alpha, one panel per beta, one curve per
    zeta (means over images). A curve is dashed when some alpha > 0 lowers the risk (its minimum
    over alpha > 0 is negative), solid otherwise."""
    cfg = result.config
    mean = result.mean_differences()
    alphas = np.asarray(cfg.alphas)
    fig = Figure(figsize=(4.2 * len(cfg.betas), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(cfg.betas), sharey=False))
    for b, (ax, beta) in enumerate(zip(axes, cfg.betas, strict=True)):
        for z, zeta in enumerate(cfg.zetas):
            curve = mean[b, z]
            helps = bool(np.any(curve[alphas > 0] < 0))
            ax.plot(alphas, curve, ls="--" if helps else "-", marker=".", label=f"ζ = {zeta}")
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_title(f"β = {beta:g}")
        ax.set_xlabel("α (training noise, pixels)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    axes[0].set_ylabel("Δ(α, β) − Δ(0, β)")
    return fig


def disk_examples_figure(zetas: Sequence[int] = (0, 10, 20, 30), *, radius: int = 5,
                         side: int = 100, candidates: int = 10_000, seed: int = 0) -> Figure:
    """Fig. 3: one random disk image per zeta (class 1 dark)."""
    fig = Figure(figsize=(3.0 * len(zetas), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(zetas)))
    for ax, zeta in zip(axes, zetas, strict=True):
        image = random_disks(image_rng(seed, zeta, 0), side=side, radius=radius, zeta=zeta,
                             candidates=candidates)
        ax.imshow(image.labels, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"ζ = {zeta} ({image.centres.shape[0]} disks)")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
