"""The splitting transform of [LF21] (Levine & Feizi, ICML 2021, arXiv:2103.10834), shared by
splitting noise (``ssn``) and its derandomization (``dssn``).

For one coordinate with offset s and cell width w, the real line is split into the cells
[s + w k, s + w (k + 1)), k integer; the transformed coordinate is the centre of the cell that
contains x, after clipping the cell to [0, 1] (where image pixels live). The output depends on x
only through its cell, which is what the l1 certificate needs: x and x + v fall in different cells
for exactly the offsets with a cell boundary between them.

Two versions:

- ``split_continuous``: real offsets (SSN), computed in float64. The cell index is
  ``floor((x - s) / w)``, monotone in x, so floating-point rounding only moves a boundary by a few
  ulps.
- ``split_grid``: inputs on the grid {0, 1/q, ..., 1} as integers a = q x, offsets (j + 1/2) / q
  with integer j in [0, L), width L / q (L whole grid steps). Everything is integer arithmetic,
  so the cell of every grid point is exact.
"""

from __future__ import annotations

import torch

__all__ = ["split_continuous", "split_grid"]


def split_continuous(x: torch.Tensor, offsets: torch.Tensor, width: float) -> torch.Tensor:
    """The clipped cell centre for each entry of ``x`` with the same-shaped ``offsets`` in
    [0, width); returned in the dtype of ``x`` (computed in float64)."""
    xs = x.to(torch.float64)
    s = offsets.to(torch.float64)
    k = torch.floor((xs - s) / width)
    # the cell's ends are a function of (k, s) only, never of x itself
    lower = s + k * width
    upper = lower + width
    centre = (lower.clamp(0.0, 1.0) + upper.clamp(0.0, 1.0)) * 0.5
    return centre.to(x.dtype)


def split_grid(a: torch.Tensor, j: torch.Tensor, length: int, quantization: int,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The clipped cell centre of the grid points ``a / quantization`` (int64 ``a`` in
    [0, quantization]) with offsets ``(j + 1/2) / quantization`` (int64 ``j`` in [0, length),
    broadcast against ``a``) and cell width ``length / quantization``.

    In grid units the cells are [j + 1/2 + k L, j + 1/2 + (k + 1) L); the integer a lies in cell
    k = floor((a - j - 1) / L). Ends are kept doubled (2 j + 1 + 2 k L) so that they are integers.
    """
    k = torch.div(a - j - 1, length, rounding_mode="floor")
    lower2 = 2 * j + 1 + 2 * k * length
    upper2 = lower2 + 2 * length
    top = 2 * quantization
    total = lower2.clamp(0, top) + upper2.clamp(0, top)
    return total.to(dtype) / (4 * quantization)
