"""Progress of a long command on stderr: a tqdm bar on a terminal, plain log lines otherwise.

The library reports progress through callbacks and draws nothing; ``ProgressReporter`` is the
command line's side. Written to a terminal it drives a tqdm bar. Written to a file or a pipe
(a batch job's log), a bar would be one endless line of carriage returns, so it prints a plain
line instead, at most every ``every`` seconds and at the end, with the rate and the time left::

    certify: 120/500 inputs (24.0%), 1.9 inputs/s, 3m20s left
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

__all__ = ["ProgressReporter", "ProgressBar", "progress_bar", "format_duration"]

T = TypeVar("T")


def format_duration(seconds: float) -> str:
    """``3m20s``-style text of a duration."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressReporter:
    """``reporter(done, total)`` (the library's certification callback) and
    ``reporter.wrap(items, total, description)`` (the training loop's batch iterator) report
    progress on ``stream`` (default stderr): a tqdm bar if ``bar`` (default: the stream is a
    terminal), else a log line at most every ``every`` seconds and one at the end. With
    ``enabled=False`` it reports nothing (e.g. on the non-main processes of a torchrun world)."""

    def __init__(self, description: str, unit: str, *, stream: IO[str] | None = None,
                 bar: bool | None = None, every: float = 30.0, enabled: bool = True) -> None:
        self.description = description
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.bar = isatty() if bar is None else bar
        self.every = every
        self.enabled = enabled
        self._tqdm = None
        self._start: float | None = None
        self._initial = 0
        self._last_line = float("-inf")

    # ---------------------------------------------------------------- certification callback
    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._start is None:
            self._start, self._initial = now, done
            if self.bar:
                from tqdm import tqdm

                self._tqdm = tqdm(total=total, initial=done, unit=self.unit,
                                  desc=self.description, file=self.stream)
            elif done < total:
                self._line(done, total, now)
            if done >= total:
                self.close()
            return
        if self._tqdm is not None:
            self._tqdm.update(done - self._tqdm.n)
            if done >= total:
                self.close()
        elif done >= total or now - self._last_line >= self.every:
            self._line(done, total, now)

    def _line(self, done: int, total: int, now: float) -> None:
        self._last_line = now
        elapsed = now - (self._start if self._start is not None else now)
        rate = (done - self._initial) / elapsed if elapsed > 0 else 0.0
        share = f" ({100 * done / total:.1f}%)" if total else ""
        units = self.unit + ("es" if self.unit.endswith(("ch", "s")) else "s")
        text = f"{self.description}: {done}/{total} {units}{share}"
        if rate > 0:
            text += f", {rate:.3g} {units}/s"
            if done < total:
                text += f", {format_duration((total - done) / rate)} left"
            else:
                text += f", {format_duration(elapsed)} in all"
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def write(self, line: str) -> None:
        """Print a line without breaking the bar."""
        if self._tqdm is not None or self.bar:
            from tqdm import tqdm

            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    # ---------------------------------------------------------------- training iterator
    def wrap(self, items: Iterable[T], total: int, description: str | None = None
             ) -> Iterator[T]:
        """Iterate ``items`` (``total`` of them), reporting as they are consumed."""
        if not self.enabled:
            yield from items
            return
        if self.bar:
            from tqdm import tqdm

            yield from tqdm(items, total=total, desc=description or self.description,
                            unit=self.unit, leave=False, file=self.stream)
            return
        inner = ProgressReporter(description or self.description, self.unit,
                                 stream=self.stream, bar=False, every=self.every)
        inner._start = inner._last_line = time.perf_counter()  # no line at the start
        done = 0
        for item in items:
            yield item
            done += 1
            if done < total:
                inner(done, total)
        # the end of an epoch is reported by the epoch's own line


#: the name of a reporter used as a bar
ProgressBar = ProgressReporter


def progress_bar(description: str, unit: str = "input", *, show: bool | None = None
                 ) -> ProgressReporter | None:
    """A ``progress(done, total)`` callback for the library: None when ``show`` is False; a
    tqdm bar when ``show`` is True; by default a bar on a terminal and log lines otherwise."""
    if show is False:
        return None
    return ProgressReporter(description, unit, bar=True if show else None)
