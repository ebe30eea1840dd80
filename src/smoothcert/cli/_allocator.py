"""Fast CPU defaults: glibc's allocator keeps freed memory, and the batch size per device.

With glibc's default settings every block over 32 MiB (resnet20's activations at batch 1000 are
64 MiB) is mapped fresh from the kernel and unmapped after each forward pass; on a CPU the kernel
then takes about 40 % of the time (bench/README.md). ``keep_freed_memory`` raises the mmap and
trim thresholds with ``mallopt`` (what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``
do at startup), once, in the commands that run models. Where the allocator is not glibc, or the
user set either variable, nothing is changed and the CPU default batch is smaller instead.
"""

from __future__ import annotations

import ctypes
import os
import platform
from typing import Any

__all__ = ["keep_freed_memory", "default_batch_size", "allocator_settings"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: the largest value mallopt takes (an int): blocks up to 2 GiB come from the heap
_THRESHOLD = 2**31 - 1
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_applied: dict[str, Any] | None = None


def keep_freed_memory() -> dict[str, Any] | None:
    """Set glibc's mmap and trim thresholds to 2 GiB (once per process) and return what was set,
    for the run record; None where the allocator is not glibc or ``MALLOC_*_THRESHOLD_`` is set
    in the environment (the user's choice stands)."""
    global _applied
    if _applied is not None:
        return _applied
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(name in os.environ for name in _ENV):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1
    except (OSError, AttributeError):
        return None
    if not ok:
        return None
    _applied = {"allocator": "glibc", "M_MMAP_THRESHOLD": _THRESHOLD,
                "M_TRIM_THRESHOLD": _THRESHOLD}
    return _applied


def allocator_settings() -> dict[str, Any] | None:
    """What ``keep_freed_memory`` set in this process, or the environment's variables."""
    if _applied is not None:
        return _applied
    given = {name: os.environ[name] for name in _ENV if name in os.environ}
    return {"allocator": "environment", **given} if given else None


def default_batch_size(device_type: str) -> int:
    """The forward batch used when ``--batch-size`` is not given: 1000 on an accelerator and on
    a CPU whose allocator keeps freed memory (measured in bench/README.md: batch size hardly
    matters then), else 250 on a CPU (the fastest there with the default allocator)."""
    if device_type != "cpu":
        return 1000
    return 1000 if allocator_settings() is not None else 250
