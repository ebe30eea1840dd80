"""The training curves of a run: training loss, and train/test accuracy per epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from smoothcert.plots.certified import new_figure_row

__all__ = ["plot_training_curves"]


def plot_training_curves(metrics: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """A figure of the per-epoch ``metrics`` of ``smoothcert.training.train`` (rows with
    ``epoch``, ``train_loss``, ``train_accuracy``, ``test_accuracy`` and
    ``test_noisy_accuracy``, None for clean training): the training loss, and the accuracies."""
    if not metrics:
        raise ValueError("no epochs to plot: the metrics are empty")
    figure, (loss_ax, acc_ax) = new_figure_row(2, width=4.5, height=3.5, dpi=100)
    epochs = [row["epoch"] for row in metrics]
    loss_ax.plot(epochs, [row["train_loss"] for row in metrics], marker="o")
    loss_ax.set(xlabel="epoch", ylabel="training loss")
    acc_ax.plot(epochs, [row["train_accuracy"] for row in metrics], marker="o",
                label="train (noisy)")
    acc_ax.plot(epochs, [row["test_accuracy"] for row in metrics], marker="o", label="test")
    noisy = [row.get("test_noisy_accuracy") for row in metrics]
    if any(v is not None for v in noisy):
        acc_ax.plot(epochs, [math.nan if v is None else v for v in noisy], marker="o",
                    label="test (noisy)")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        figure.suptitle(title)
    return figure
