"""Population-level theory of noise-augmented training for randomized smoothing ([PS23]).

- ``grid``: exact Gaussian smoothing of labelled grids, the threshold phi, the composite
  F_{alpha,beta} = Smooth_beta(phi(h * p_alpha)) and its risk Delta_{alpha,beta};
- ``intervals``: the same objects in closed form for unions of intervals on the line;
- ``closed_forms``: ball erasure, smoothed-ball radius, gap filling, the two-Gaussian model;
- ``disks``: the random-disk distributions of the synthetic experiment;
- ``interference``: gaps between same-class regions, compared with the smoothing noise;
- ``synthetic``: the synthetic experiment (Fig. 3, Fig. 4).

Its figures are in ``smoothcert.plots.population`` (this package does not load matplotlib).
"""

from __future__ import annotations

from smoothcert.pal_sulam.population.closed_forms import (
    ball_gap_fill_width,
    ball_level_distance,
    ball_probability,
    erasure_radius,
    erasure_sigma,
    slab_gap_fill_width,
    smoothed_ball_radius,
    two_gaussian_risk,
    two_gaussian_threshold,
)
from smoothcert.pal_sulam.population.disks import DiskImage, disk_labels, random_disks
from smoothcert.pal_sulam.population.grid import (
    class_probabilities,
    classify,
    gaussian_smooth,
    risk,
    risk_table,
    smooth_labels,
    smoothed_classifier,
    threshold,
)
from smoothcert.pal_sulam.population.interference import (
    InterferenceGaps,
    grid_gaps,
    point_cloud_gaps,
)
from smoothcert.pal_sulam.population.intervals import (
    Intervals,
    interval_classifier,
    interval_probability,
    interval_risk,
    smooth_intervals,
)
from smoothcert.pal_sulam.population.synthetic import (
    SyntheticConfig,
    SyntheticResult,
    run_synthetic,
    write_synthetic_csv,
)

__all__ = [
    "ball_gap_fill_width", "ball_level_distance", "ball_probability", "erasure_radius",
    "erasure_sigma", "slab_gap_fill_width", "smoothed_ball_radius", "two_gaussian_risk",
    "two_gaussian_threshold", "DiskImage", "disk_labels", "random_disks", "class_probabilities",
    "classify", "gaussian_smooth", "risk", "risk_table", "smooth_labels", "smoothed_classifier",
    "threshold", "InterferenceGaps", "grid_gaps", "point_cloud_gaps", "Intervals",
    "interval_classifier", "interval_probability", "interval_risk", "smooth_intervals",
    "SyntheticConfig", "SyntheticResult", "run_synthetic", "write_synthetic_csv",
]
