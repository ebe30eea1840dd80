"""One look for every figure: a fixed colour per noise family, and how a run is labelled.

A family's colour is fixed by its place in the registry (``smoothcert.noises.base.
registered_names``, alphabetical), so a family has the same colour in every figure. Radii obtained
by the lp conversion (valid, loose) are drawn dotted and marked "(converted)" in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PALETTE", "CONVERTED_STYLE", "family_colour", "converted_label"]

#: matplotlib's tab10, then three darker colours: 13 distinct strong colours (uniform, the 12th
#: family, gets a dark orange that stands apart from gaussian's brown and laplace's pink)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#d95f02", "#843c39")
#: the line style of a curve whose radii come from the lp conversion
CONVERTED_STYLE = ":"


def family_colour(name: str, families: Sequence[str] | None = None) -> str:
    """The colour of noise family ``name``: its place among ``families`` (default: the registered
    families, alphabetical) in ``PALETTE``. ValueError for a family that is not registered."""
    if families is None:
        from smoothcert.noises import list_noises

        families = list_noises()
    families = list(families)
    if name not in families:
        raise ValueError(f"unknown noise family {name!r}; choose from {', '.join(families)}")
    return PALETTE[families.index(name) % len(PALETTE)]


def converted_label(label: str) -> str:
    """``label`` marked as drawn from converted radii (once)."""
    return label if label.endswith("(converted)") else f"{label} (converted)"
