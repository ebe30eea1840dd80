"""Checking dataset files: checksums, SHA256SUMS lists, and a pickle loader that runs no code.

Errors are ``ValueError`` naming the file, what was expected and what was found, so a corrupt or
truncated download is reported as such rather than as a shape error deep inside a loader.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

__all__ = ["digest", "check_digest", "read_sha256sums", "safe_unpickle"]


def digest(data: bytes | Path, algorithm: str) -> str:
    """Hex digest of bytes or of a file's contents."""
    h = hashlib.new(algorithm)
    if isinstance(data, Path):
        with data.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(data)
    return h.hexdigest()


def check_digest(data: bytes | Path, expected: str, algorithm: str, *, what: str) -> None:
    """Raise ValueError if the digest of ``data`` is not ``expected``; ``what`` names the file."""
    found = digest(data, algorithm)
    if found != expected.lower():
        raise ValueError(
            f"{what} is corrupt or not the expected file: its {algorithm.upper()} is {found}, "
            f"expected {expected}"
        )


def read_sha256sums(path: Path) -> dict[str, str]:
    """The ``sha256sum``-format list at ``path``: file name -> hex digest."""
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{str(path)!r} line {number} is not '<sha256>  <file>': {line!r}")
        sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


# what a numpy array pickle may reference; anything else is refused
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def safe_unpickle(path: Path, *, encoding: str = "bytes") -> Any:
    """Load a pickle of plain containers and numpy arrays, refusing anything that would import
    other code (a pickle can run arbitrary code on load)."""
    try:
        with path.open("rb") as fh:
            return _ArrayUnpickler(fh, encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable python batch file ({exc})") from exc
