"""Radius tables: rounding down, accuracy, coverage, and the disk cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.special import betaincinv, ndtr, ndtri

from smoothcert.noises.radii import table as tables
from smoothcert.noises.radii.table import (
    P_TABLE_MAX,
    RadiusTable,
    build_table,
    cached_table,
    clear_memory_cache,
    table_path,
)


# Known radii written here from their closed forms (independent of the table code).
def gaussian(p):
    return ndtri(p)


def laplace(p):
    return -np.log(2.0 * (1.0 - p))


def ball7(p):
    return 2.0 * np.sqrt(betaincinv(0.5, 4.0, p - 0.5))


def fractional(p):
    # smooth except for a (p - 1/2)^(15/7) term at p = 1/2, like Exp1(k=2) at d = 7
    x = p - 0.5
    return x + 3.0 * x ** (15.0 / 7.0) + np.log1p(x)


KNOWN = {"gaussian": gaussian, "laplace": laplace, "ball7": ball7, "fractional": fractional}


def _checked(exact):
    """Wrap ``exact`` to check build_table's promise: sorted float64 p starting at 1/2."""
    calls = []

    def wrapped(p):
        assert isinstance(p, np.ndarray) and p.dtype == np.float64 and p.ndim == 1
        assert p[0] == 0.5 and np.all(np.diff(p) > 0)
        assert p[-1] <= P_TABLE_MAX * (1 + 1e-15)
        calls.append(p.size)
        return exact(p)

    return wrapped, calls


def _test_points() -> np.ndarray:
    rng = np.random.default_rng(1)
    p = np.concatenate([
        0.5 + 0.5 * rng.random(3000) ** 4,
        1.0 - np.logspace(-1, -8, 200),
        [0.5 + 1e-12, 0.5 + 1e-9, 0.5 + 1e-6, P_TABLE_MAX],
    ])
    return np.sort(p[(p > 0.5) & (p <= P_TABLE_MAX)])


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_build_table_rounds_down_and_is_accurate(name):
    exact = KNOWN[name]
    wrapped, calls = _checked(exact)
    table = build_table(wrapped)
    assert calls and 0 <= table.margin < 1e-7
    p = _test_points()
    assert np.all(table.covers(p))
    got, want = table(p), exact(p)
    assert np.all(got <= want), f"table above the exact radius at p = {p[got > want][:3]}"
    rel = np.max((want - got) / want)
    assert rel < 1e-7, f"relative error {rel:.2e}"


def test_old_uniform_refinement_would_not_converge_for_fractional_powers():
    # With 32768 equal intervals the fractional power still leaves a 1e-7 error near p = 1/2;
    # build_table refines towards u = 0 instead. This is the reason for the local refinement.
    from scipy.interpolate import CubicSpline

    def exp1_like(p):
        x = p - 0.5
        return x + 3.0 * x ** (15.0 / 7.0)

    n = 32768
    u = np.linspace(0.0, tables._U_MAX, 2 * n + 1)
    r = exp1_like(ndtr(u))
    spline = CubicSpline(u[::2], r[::2])
    assert np.max(np.abs(spline(u[1::2]) - r[1::2]) / r[1::2]) > 1e-7
    table = build_table(exp1_like)
    p = _test_points()
    assert np.all(table(p) <= exp1_like(p))
    assert np.max(1 - table(p) / exp1_like(p)) < 1e-7


def test_table_is_monotone_and_covers_its_range():
    table = build_table(laplace)
    assert table.u[0] == 0.0 and np.all(np.diff(table.u) > 0)
    assert np.all(np.diff(table.radius) >= 0)
    assert table.p_max == pytest.approx(P_TABLE_MAX, abs=1e-15)
    assert not table.covers(np.array([0.5]))[0]
    assert table.covers(np.array([P_TABLE_MAX]))[0]
    assert not table.covers(np.array([1.0 - 1e-9]))[0]
    p = np.linspace(0.5 + 1e-9, P_TABLE_MAX, 20001)
    assert np.all(np.diff(table(p)) >= 0)
    for bad in (0.5, 0.3, 1.0 - 1e-9):
        with pytest.raises(ValueError, match="outside this table's range"):
            table(np.array([bad]))


def test_build_table_refuses_what_it_cannot_tabulate():
    def jump(p):
        return (p - 0.5) + (p > 0.7)

    with pytest.raises(FloatingPointError, match="did not converge"):
        build_table(jump)

    def nan_at_top(p):
        return np.where(p > 0.99, np.nan, p - 0.5)

    with pytest.raises(FloatingPointError, match="non-finite"):
        build_table(nan_at_top)


@pytest.mark.parametrize("kwargs,match", [
    ({"u": [0.0, 1.0, 2.0], "radius": [0.0, 1.0, 2.0]}, ">= 4 increasing nodes"),
    ({"u": [0.0, 2.0, 1.0, 3.0], "radius": [0.0, 1.0, 2.0, 3.0]}, ">= 4 increasing nodes"),
    ({"u": [0.0, 1.0, 2.0, 3.0], "radius": [0.0, 2.0, 1.0, 3.0]}, "non-decreasing"),
    ({"u": [0.0, 1.0, 2.0, 3.0], "radius": [0.0, 1.0, np.inf, 3.0]}, "finite"),
    ({"u": [0.0, 1.0, 2.0, 3.0], "radius": [0.0, 1.0, 2.0, 3.0], "margin": 1e-3}, "margin"),
    ({"u": [0.0, 1.0, 2.0, 3.0], "radius": [0.0, 1.0, 2.0, 3.0], "margin": -1e-9}, "margin"),
])
def test_radius_table_validation(kwargs, match):
    kwargs.setdefault("margin", 0.0)
    with pytest.raises(ValueError, match=match):
        RadiusTable(**kwargs)


# ----------------------------------------------------------------------------------- cache
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOOTHCERT_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    yield tmp_path / "cache"
    clear_memory_cache()


def _counting_build():
    count = []

    def build():
        count.append(1)
        return build_table(laplace)

    return build, count


KEY = {"family": "test_family", "norm": "l1", "dim": 7, "k": 1.5}


def test_cache_builds_once_then_memory_then_disk(cache):
    build, count = _counting_build()
    first = cached_table(KEY, build)
    assert len(count) == 1
    assert table_path(KEY).parent == cache and table_path(KEY).exists()
    assert cached_table(KEY, build) is first and len(count) == 1
    clear_memory_cache()
    from_disk = cached_table(KEY, build)
    assert len(count) == 1
    np.testing.assert_array_equal(from_disk.u, first.u)
    np.testing.assert_array_equal(from_disk.radius, first.radius)
    assert from_disk.margin == first.margin


def test_cache_key_distinguishes_parameters(cache):
    other = {**KEY, "k": 2.5}
    assert table_path(KEY) != table_path(other)
    assert table_path(KEY) != table_path({**KEY, "dim": 8})


def test_cache_key_holds_the_version(cache, monkeypatch):
    assert tables.__version__ in tables._key_text(KEY)
    build, count = _counting_build()
    cached_table(KEY, build)
    old_path = table_path(KEY)
    monkeypatch.setattr(tables, "__version__", tables.__version__ + ".post99")
    clear_memory_cache()
    assert table_path(KEY) != old_path
    cached_table(KEY, build)
    assert len(count) == 2


def test_rebuild_forces_a_build(cache):
    build, count = _counting_build()
    cached_table(KEY, build)
    cached_table(KEY, build, rebuild=True)
    assert len(count) == 2


def _expect_rebuild(caplog, build, count):
    with caplog.at_level(logging.WARNING, logger=tables.__name__):
        table = cached_table(KEY, build)
    assert len(count) == 1
    assert "ignoring radius table cache" in caplog.text
    # the rebuilt table replaced the bad file
    clear_memory_cache()
    again = cached_table(KEY, build)
    assert len(count) == 1
    np.testing.assert_array_equal(again.radius, table.radius)


def test_corrupt_cache_file_is_rebuilt(cache, caplog):
    path = table_path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a numpy archive")
    build, count = _counting_build()
    _expect_rebuild(caplog, build, count)


def test_mismatched_cache_file_is_rebuilt(cache, caplog):
    # a valid table file for another key, placed at this key's path
    other = {**KEY, "k": 9.0}
    cached_table(other, lambda: build_table(gaussian))
    path = table_path(KEY)
    path.write_bytes(table_path(other).read_bytes())
    clear_memory_cache()
    build, count = _counting_build()
    _expect_rebuild(caplog, build, count)


def test_tampered_cache_file_is_rebuilt(cache, caplog):
    build, _ = _counting_build()
    cached_table(KEY, build)
    path = table_path(KEY)
    with np.load(path) as data:
        content = {name: data[name] for name in data.files}
    content["radius"] = content["radius"] * 1.01  # too large: must not be trusted
    with open(path, "wb") as fh:
        np.savez(fh, **content)
    clear_memory_cache()
    build, count = _counting_build()
    _expect_rebuild(caplog, build, count)


def test_unwritable_cache_still_returns_a_table(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SMOOTHCERT_CACHE_DIR", str(blocker / "cache"))
    clear_memory_cache()
    with caplog.at_level(logging.WARNING, logger=tables.__name__):
        table = cached_table(KEY, lambda: build_table(laplace))
    assert "could not write" in caplog.text
    assert table(np.array([0.9]))[0] <= laplace(0.9)
    clear_memory_cache()


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("SMOOTHCERT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tables.cache_dir() == tmp_path / "smoothcert"
