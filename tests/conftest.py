"""Shared test configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Two cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: The offline datasets beside the repository (complete MNIST, a CIFAR-10 subset).
SHARED_DATA = Path(os.environ.get(
    "SMOOTHCERT_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_table_cache(tmp_path_factory):
    """Radius tables built during the tests go to a temporary cache, not the user's."""
    path = tmp_path_factory.mktemp("table-cache")
    old = os.environ.get("SMOOTHCERT_CACHE_DIR")
    os.environ["SMOOTHCERT_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SMOOTHCERT_CACHE_DIR", None)
    else:
        os.environ["SMOOTHCERT_CACHE_DIR"] = old


def shared_data(*parts: str) -> Path:
    """Path under the shared data folder; skips the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"offline test data not found at {path}")
    return path
