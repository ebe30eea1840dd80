"""Figures of the smoothed risk grid of [PS23] (``smoothcert.pal_sulam.risk``), as
``matplotlib.figure.Figure`` objects (no pyplot, no backend change)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from smoothcert.pal_sulam.risk.analysis import RiskTable, best_alphas, smoothed_curve

__all__ = ["risk_curves_figure", "risk_heatmap_figure"]


def risk_curves_figure(table: RiskTable, window: int = 15, order: int = 3) -> Figure:
    """Delta-hat against alpha on a log scale, one colour per beta: raw points with Clopper-Pearson
    bars, the smoothed curve of the noise-trained models as a line, alpha* (``best_alphas``)
    starred. Zero error rates are drawn at 1/(2n) so they stay on the log axis."""
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.subplots()
    low, high = table.interval()
    best = {b.beta: b for b in best_alphas(table, window, order)}
    for j, beta in enumerate(table.betas):
        present = table.n[:, j] > 0
        if not present.any():
            continue
        colour = f"C{j % 10}"
        alphas, err = table.alphas[present], table.error[present, j]
        floor = 0.5 / table.n[present, j]
        shown = np.maximum(err, floor)
        bars = np.vstack([shown - np.maximum(low[present, j], 0.5 * floor),
                          np.maximum(high[present, j], shown) - shown])
        ax.errorbar(alphas, shown, yerr=np.maximum(bars, 0), fmt=".", ms=3, lw=0.6,
                    color=colour, alpha=0.6)
        choice = best[float(beta)]
        curve = smoothed_curve(alphas, err, window, order)
        if curve is None:
            ax.plot(alphas, shown, color=colour,
                    label=f"β = {beta:g} (α* = {choice.raw_alpha:g}, raw)")
            continue
        ax.plot(curve[0], np.maximum(curve[1], floor.min()), color=colour,
                label=f"β = {beta:g} (α* = {choice.smoothed_alpha:g})")
        ax.plot([choice.smoothed_alpha], [max(choice.smoothed_error, floor.min())], marker="*",
                ms=11, color=colour, mec="k")
    ax.set_yscale("log")
    ax.set_xlabel("α (training noise)")
    ax.set_ylabel("Δ̂(α, β): error of the smoothed classifier\n(an error of 0 is drawn at 0.5/n)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", ncol=2)
    return fig


def risk_heatmap_figure(table: RiskTable) -> Figure:
    """The error rates as a heatmap (alpha across, beta up, log colour scale; missing cells
    blank; zero errors drawn at 1/(2n))."""
    err = table.error.T
    shown = np.where(table.n.T > 0, np.maximum(err, 0.5 / np.maximum(table.n.T, 1)), np.nan)
    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    finite = shown[np.isfinite(shown)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
    mesh = ax.pcolormesh(_edges(table.alphas), _edges(table.betas),
                         np.ma.masked_invalid(shown), norm=norm, cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="Δ̂(α, β) (an error of 0 is drawn at 0.5/n)")
    ax.set_xlabel("α (training noise)")
    ax.set_ylabel("β (smoothing noise)")
    return fig


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (midpoints; half a step beyond the ends)."""
    if values.size == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5])
    mids = 0.5 * (values[1:] + values[:-1])
    return np.concatenate([[2 * values[0] - mids[0]], mids, [2 * values[-1] - mids[-1]]])
