"""The command line's progress bar (tqdm on stderr) for the library's ``progress(done, total)``
callbacks: the library reports, the command line draws."""

from __future__ import annotations

import sys
from typing import Any


class ProgressBar:
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr. The bar opens at the
    first call and closes when ``done`` reaches ``total``; a later call opens a new one."""

    def __init__(self, description: str, unit: str = "input") -> None:
        self.description = description
        self.unit = unit
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, initial=done, unit=self.unit, desc=self.description,
                             file=sys.stderr)
        else:
            self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(description: str, unit: str = "input", *, show: bool | None = None
                 ) -> ProgressBar | None:
    """A ``ProgressBar``, or None when ``show`` is False (default: stderr is a terminal)."""
    if show is None:
        show = sys.stderr.isatty()
    return ProgressBar(description, unit) if show else None
