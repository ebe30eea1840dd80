"""The slopes dR/drho at rho = 1/2 of results/yang2020/wulff: the library's radii against the
spec's closed forms, evaluated independently in experiments/yang2020/spec_slopes.py."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

import smoothcert

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "yang2020" / "spec_slopes.py"
_spec = importlib.util.spec_from_file_location("spec_slopes", _PATH)
spec_slopes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spec_slopes)

#: (family, shape, norm): every closed form of the table in results/yang2020/wulff/README.md
#: that needs no radius table (the differential-method families with tables are in CASES_TABLE)
CASES = [
    ("gaussian", {}, "l2"), ("gaussian", {}, "l1"), ("laplace", {}, "l1"),
    ("laplace", {}, "linf"), ("uniform", {}, "l1"), ("uniform", {}, "linf"),
    ("uniform_ball", {}, "l2"), ("exp_inf", {"k": 1.0, "j": 0}, "l1"),
    ("exp_inf", {"k": 1.0, "j": 0}, "linf"), ("pow_inf", {}, "l1"), ("exp_p", {"p": 4.0}, "l1"),
    ("ssn", {}, "l1"),
]
CASES_TABLE = [
    ("exp1", {"k": 2.0}, "l1"), ("exp_p", {"p": 0.5}, "l1"), ("pareto", {"a": 3.0}, "l1"),
    ("pow_inf", {}, "linf"),
]


def _library_slope(noise: smoothcert.Noise, norm: str, h: float = 1e-5) -> float:
    """Richardson-extrapolated forward difference of the library's radius at 1/2."""
    r = noise.certified_radius(np.array([0.5 + h, 0.5 + h / 2]), norm,
                               convert=not noise.certifies(norm))
    return float(2 * r[1] / (h / 2) - r[0] / h)


@pytest.mark.parametrize("dim", [784, 3072])
@pytest.mark.parametrize(("family", "shape", "norm"), CASES)
def test_closed_form_slopes(family, shape, norm, dim):
    noise = smoothcert.get_noise(family, dim=dim, sigma=1.0, **shape)
    expected, _ = spec_slopes.spec_slope(family, norm, dim, **noise.shape_params)
    assert _library_slope(noise, norm) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("family", "shape", "norm"), CASES_TABLE)
def test_differential_slopes(family, shape, norm):
    """Radii by quadrature or tables round down: at most 1e-6 below the slope, never above."""
    noise = smoothcert.get_noise(family, dim=784, sigma=1.0, **shape)
    expected, _ = spec_slopes.spec_slope(family, norm, 784, **noise.shape_params)
    got = _library_slope(noise, norm)
    assert expected * (1 - 1e-6) <= got <= expected * (1 + 1e-9)


def test_spec_section_6_values():
    """SPEC §6: l1 slopes per unit sigma, Uniform 2 sqrt 3, Gaussian sqrt(2 pi), Laplace sqrt 2."""
    for family, value in [("uniform", 2 * math.sqrt(3)), ("gaussian", math.sqrt(2 * math.pi)),
                          ("laplace", math.sqrt(2))]:
        assert spec_slopes.spec_slope(family, "l1", 3072)[0] == pytest.approx(value, rel=1e-12)


def test_spherical_formula_and_laplace_linf():
    """The first-order spherical formula gives the Gaussian's sqrt(2 pi) through exp2(k=2) and
    pow2 as a -> infinity; Laplace linf's exact slope is near the CLT value sqrt(pi/d)."""
    for dim in (784, 3072):
        assert spec_slopes.spec_slope("exp2", "l2", dim, k=2.0, j=0.0)[0] == pytest.approx(
            math.sqrt(2 * math.pi), rel=1e-9)
        big = spec_slopes.spec_slope("pow2", "l2", dim, k=2.0, a=1e9)[0]
        assert big == pytest.approx(math.sqrt(2 * math.pi), rel=1e-5)
        # E[S+] for S a sum of d signs, from the exact mean absolute deviation of Binomial(d, 1/2)
        mad = dim / 2 * math.exp(math.lgamma(dim + 1) - 2 * math.lgamma(dim / 2 + 1)
                                 - dim * math.log(2))
        lam = 1 / math.sqrt(2)
        assert spec_slopes.spec_slope("laplace", "linf", dim)[0] == pytest.approx(
            lam / mad, rel=1e-9)
        assert lam / mad == pytest.approx(math.sqrt(math.pi / dim), rel=1e-3)
