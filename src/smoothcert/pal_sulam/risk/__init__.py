"""The smoothed risk Delta-hat_{alpha,beta} of [PS23] over training noise alpha x smoothing noise
beta: the evaluator (``evaluate``), the resumable grid (``grid``) and its analysis (``analysis``).
Figures are in ``smoothcert.plots.risk``."""

from __future__ import annotations

from smoothcert.pal_sulam.risk.analysis import (
    BestAlpha,
    RiskTable,
    best_alphas,
    savgol_window,
    smoothed_curve,
)
from smoothcert.pal_sulam.risk.evaluate import (
    RiskEstimate,
    curtailed_majority,
    curtailed_vote,
    decided,
    input_seed,
    majority_vote,
    smoothed_risk,
    vote_counts,
)
from smoothcert.pal_sulam.risk.grid import (
    CSV_HEADER,
    KEY_DECIMALS,
    RiskGrid,
    grid_key,
    read_risk_table,
    run_risk_grid,
)

__all__ = [
    "KEY_DECIMALS", "CSV_HEADER", "grid_key", "input_seed", "majority_vote", "vote_counts",
    "decided", "curtailed_majority", "curtailed_vote",
    "RiskEstimate", "smoothed_risk", "RiskGrid", "run_risk_grid", "RiskTable",
    "read_risk_table", "savgol_window", "smoothed_curve", "BestAlpha", "best_alphas",
]
