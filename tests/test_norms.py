"""Norm names and the lp conversion rule (SPEC.md section 3.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smoothcert.norms import Norm, convert_radius


@pytest.mark.parametrize("text,norm", [
    ("l1", Norm.L1), ("L1", Norm.L1), (" l2 ", Norm.L2), ("2", Norm.L2), ("1", Norm.L1),
    ("linf", Norm.LINF), ("LINF", Norm.LINF), ("inf", Norm.LINF), ("l_inf", Norm.LINF),
    (Norm.L2, Norm.L2),
])
def test_parse(text, norm):
    assert Norm.parse(text) is norm


@pytest.mark.parametrize("bad", ["l3", "", "l-1", 2, None, 1.0])
def test_parse_rejects_and_lists_the_norms(bad):
    with pytest.raises(ValueError) as info:
        Norm.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    for name in ("'l1'", "'l2'", "'linf'"):
        assert name in message


def test_norm_values():
    assert [n.value for n in Norm] == ["l1", "l2", "linf"]
    assert (Norm.L1.p, Norm.L2.p, Norm.LINF.p) == (1.0, 2.0, math.inf)
    assert str(Norm.LINF) == "linf" and Norm.L2 == "l2"


# (from, to, d, factor): R_to = R_from * factor
RULES = [
    ("l1", "l2", 784, 1 / 28.0),
    ("l1", "linf", 784, 1 / 784.0),
    ("l2", "linf", 784, 1 / 28.0),
    ("l2", "l1", 784, 1.0),
    ("linf", "l1", 784, 1.0),
    ("linf", "l2", 784, 1.0),
    ("l1", "l1", 784, 1.0),
    ("l2", "linf", 3072, 1 / math.sqrt(3072)),
    ("l1", "linf", 1, 1.0),
]


@pytest.mark.parametrize("a,b,d,factor", RULES)
def test_convert_radius_rule(a, b, d, factor):
    radius = np.array([0.0, 0.5, 2.0])
    np.testing.assert_allclose(convert_radius(radius, a, b, d), radius * factor, rtol=1e-15)
    assert convert_radius(1.5, Norm.parse(a), Norm.parse(b), d) == pytest.approx(1.5 * factor,
                                                                                  rel=1e-15)


def _lp(v: np.ndarray, norm: str) -> np.ndarray:
    return np.linalg.norm(v, ord={"l1": 1, "l2": 2, "linf": np.inf}[norm], axis=-1)


@pytest.mark.parametrize("a", ["l1", "l2", "linf"])
@pytest.mark.parametrize("b", ["l1", "l2", "linf"])
def test_converted_ball_lies_inside_and_touches(a, b):
    # Every v in the b-ball of the converted radius lies in the a-ball of radius R (soundness),
    # and some v on its boundary reaches ||v||_a = R (the rule is the largest valid radius).
    d, radius = 50, 1.0
    converted = convert_radius(radius, a, b, d)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((5000, d)) * rng.exponential(size=(5000, 1)) ** 3
    v = v / _lp(v, b)[:, None] * converted  # on the b-sphere of the converted radius
    assert np.all(_lp(v, a) <= radius * (1 + 1e-12))
    # the extreme points: the all-ones direction when b > a, a coordinate axis otherwise
    extreme = np.ones(d) if Norm.parse(b).p > Norm.parse(a).p else np.eye(d)[0]
    extreme = extreme / _lp(extreme, b) * converted
    assert _lp(extreme, a) == pytest.approx(radius, rel=1e-12)


@pytest.mark.parametrize("dim", [0, -1, 2.5, "3"])
def test_convert_radius_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        convert_radius(1.0, "l1", "l2", dim)


def test_convert_radius_rejects_bad_norm():
    with pytest.raises(ValueError, match="unknown norm"):
        convert_radius(1.0, "l1", "l4", 10)
