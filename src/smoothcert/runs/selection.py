"""Which inputs of a dataset a run covers: [CRK19]'s ``--skip``/``--max`` rule.

Shared by the dataset runner (``smoothcert.certify.dataset``), the merging of shards
(``smoothcert.runs.shards``) and sweeps (``smoothcert.runs.sweep``), which must agree on it.
"""

from __future__ import annotations

from smoothcert.validation import check_int

__all__ = ["select_indices"]


def select_indices(length: int, skip: int = 1, max_examples: int = -1) -> list[int]:
    """Every ``skip``-th index of a dataset of ``length`` items, starting at 0, at most
    ``max_examples`` of them (-1: no limit), as [CRK19]'s ``--skip``/``--max``."""
    length = check_int("length", length, minimum=0)
    skip = check_int("skip", skip, minimum=1)
    if check_int("max_examples (-1: all)", max_examples, minimum=-1) == -1:
        return list(range(0, length, skip))
    return list(range(0, length, skip)[:max_examples])
