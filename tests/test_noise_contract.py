"""The noise contract (smoothcert.noises.checks) over every registered family, and the errors a
user sees for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import smoothcert
from smoothcert import get_noise, list_noises
from smoothcert.noises import checks
from smoothcert.noises.checks import NoiseContractError
from smoothcert.norms import Norm

FAMILIES = list_noises()
DIMS = (1, 3, 784)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make(name: str, dim: int, sigma: float = 0.5):
    """The family at its default shape; a family may refuse a dimension with a ValueError (e.g.
    a formula that needs d > 1), which skips that case."""
    if dim == 1:
        try:
            return get_noise(name, dim=dim, sigma=sigma)
        except ValueError as exc:
            pytest.skip(f"{name} is not defined at dim=1: {exc}")
    return get_noise(name, dim=dim, sigma=sigma)


def test_registry_has_the_reference_families():
    assert {"gaussian", "uniform", "uniform_ball"} <= set(FAMILIES)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", FAMILIES)
def test_contract(name, dim):
    checks.check_noise(make(name, dim), devices=DEVICES)


@pytest.mark.parametrize("name", FAMILIES)
def test_contract_at_another_size(name):
    noise = get_noise(name, dim=3, scale=3.0)
    checks.check_sigma(noise, seed=5)
    checks.check_radius(noise)


# ---------------------------------------------------------------- the contract catches faults
def _broken(attr: str, replacement):
    """A subclass of the uniform family with one hook broken (not registered)."""
    from smoothcert.noises.uniform import Uniform

    return type("Broken", (Uniform,), {attr: replacement, "__module__": __name__})


def test_contract_catches_wrong_sigma():
    cls = _broken("_unit_sigma", lambda self: 0.5)  # the truth is 1/sqrt(3)
    noise = cls(dim=7, sigma=1.0)
    with pytest.raises(NoiseContractError, match="empirical"):
        checks.check_sigma(noise)


def test_contract_catches_decreasing_radius():
    cls = _broken("_unit_radius", lambda self, p, norm: 2.0 - p)
    with pytest.raises(NoiseContractError, match="decreases"):
        checks.check_radius(cls(dim=7, sigma=1.0))


def test_contract_catches_ignored_generator():
    def sample(self, batch, *, generator, device, dtype):
        return torch.rand((batch, self.dim), device=device, dtype=dtype) * 2 - 1

    with pytest.raises(NoiseContractError, match="same generator seed"):
        checks.check_reproducibility(_broken("_sample_unit", sample)(dim=7, sigma=1.0))


def test_contract_catches_unregistered_class():
    cls = _broken("_unit_sigma", lambda self: 1 / math.sqrt(3))
    with pytest.raises(NoiseContractError, match="registered"):
        checks.check_registration(cls(dim=7, sigma=1.0))


def test_check_noise_needs_a_noise():
    with pytest.raises(TypeError, match="Noise instance"):
        checks.check_noise("gaussian")



def test_public_names_are_importable_from_the_package():
    # the checks live in submodules; every public name must stay reachable from
    # smoothcert.noises.checks, and every public check of a submodule must be listed there
    from smoothcert.noises.checks import deterministic, radii, sampling

    expected = {"NoiseContractError", "check_noise", "check_registration", "check_sampling",
                "check_reproducibility", "check_sigma", "check_radius", "check_radius_kinds",
                "check_conversion", "check_deterministic", "default_draws"}
    assert set(checks.__all__) == expected
    for name in expected:
        assert callable(getattr(checks, name)), name
    for module in (sampling, radii, deterministic):
        for name in module.__all__:
            assert getattr(checks, name) is getattr(module, name), (module.__name__, name)

# ------------------------------------------------------------------------------- bad input
def test_unknown_family_lists_the_families():
    with pytest.raises(ValueError) as info:
        get_noise("gausian", dim=3, sigma=1.0)
    message = str(info.value)
    assert "'gausian'" in message
    for name in FAMILIES:
        assert name in message


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf, True])
def test_bad_sigma(name, sigma):
    with pytest.raises(ValueError, match="sigma"):
        get_noise(name, dim=3, sigma=sigma)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("scale", [0.0, -2.0, math.nan])
def test_bad_scale(name, scale):
    with pytest.raises(ValueError, match="scale"):
        get_noise(name, dim=3, scale=scale)


@pytest.mark.parametrize("name", FAMILIES)
def test_exactly_one_of_sigma_and_scale(name):
    with pytest.raises(ValueError, match="exactly one of sigma and scale"):
        get_noise(name, dim=3, sigma=1.0, scale=1.0)
    with pytest.raises(ValueError, match="exactly one of sigma and scale"):
        get_noise(name, dim=7)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("dim", [0, -3, 2.5, True])
def test_bad_dim(name, dim):
    with pytest.raises(ValueError, match="dim"):
        get_noise(name, dim=dim, sigma=1.0)


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_shape_parameter(name):
    with pytest.raises(ValueError, match="no parameter.*bogus"):
        get_noise(name, dim=3, sigma=1.0, bogus=3)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("p_lower", [-0.1, 1.1, math.nan, -math.inf, np.array([0.7, 1.5]),
                                     torch.tensor([math.nan, 0.9])])
def test_p_lower_outside_unit_interval(name, p_lower):
    noise = get_noise(name, dim=3, sigma=1.0)
    with pytest.raises(ValueError, match="p_lower must lie in"):
        noise.certified_radius(p_lower, noise.direct_norms[0])


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("p_lower", ["0.9", None, [0.9]])
def test_p_lower_of_the_wrong_type(name, p_lower):
    noise = get_noise(name, dim=3, sigma=1.0)
    with pytest.raises(TypeError, match="p_lower"):
        noise.certified_radius(p_lower, noise.direct_norms[0])


@pytest.mark.parametrize("name", FAMILIES)
def test_uncertified_norm_needs_convert(name):
    noise = get_noise(name, dim=3, sigma=1.0)
    others = [n for n in Norm if n not in noise.direct_norms]
    if not others:
        pytest.skip(f"{name} certifies every norm directly")
    for norm in others:
        with pytest.raises(ValueError, match="convert=True") as info:
            noise.certified_radius(0.9, norm)
        assert norm.value in str(info.value)
        assert noise.certified_radius(0.9, norm, convert=True) > 0


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_norm(name):
    noise = get_noise(name, dim=3, sigma=1.0)
    with pytest.raises(ValueError, match="unknown norm 'l3'"):
        noise.certified_radius(0.9, "l3")


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(4, 8), (8,), (2, 3, 2)])
def test_x_of_the_wrong_size(name, shape):
    noise = get_noise(name, dim=3, sigma=1.0)
    with pytest.raises(ValueError, match="dim=3"):
        noise.sample_like(torch.zeros(shape))


def test_public_names_resolve():
    for name in ("Noise", "register_noise", "get_noise", "list_noises", "Norm"):
        assert getattr(smoothcert, name) is not None


# ------------------------------------------------------ non-additive and deterministic families
def _broken_family(base_name: str, attr: str, replacement):
    from smoothcert.noises import noise_class

    return type("Broken", (noise_class(base_name),),
                {attr: replacement, "__module__": __name__})


def test_contract_catches_a_splitting_width_off_sigma():
    from smoothcert.noises._splitting import split_continuous

    def perturb(self, x, generator):  # cells 1.5x too wide for the stated sigma
        width = 3.0 * self.scale
        return split_continuous(x, torch.rand(x.shape, generator=generator,
                                              dtype=x.dtype) * width, width)

    with pytest.raises(NoiseContractError, match=r"T\(x\) - x"):
        checks.check_sigma(_broken_family("ssn", "_perturb", perturb)(dim=7, sigma=0.5))


def test_contract_catches_a_draw_outside_the_enumeration():
    def perturb(self, x, generator):  # the last draw's first coordinate is not a cell centre
        t = torch.randint(0, self.num_transforms, (x.shape[0],), generator=generator)
        out = self.transform_grid(self.grid_indices(x), t, x.dtype)
        out[-1, 0] = 0.123
        return out

    noise = _broken_family("dssn", "_perturb", perturb)(dim=7, sigma=0.5)
    with pytest.raises(NoiseContractError, match="outside its"):
        checks.check_deterministic(noise)


def test_contract_catches_a_transformation_never_drawn():
    def perturb(self, x, generator):
        t = torch.randint(0, self.num_transforms - 1, (x.shape[0],), generator=generator)
        return self.transform_grid(self.grid_indices(x), t, x.dtype)

    noise = _broken_family("dssn", "_perturb", perturb)(dim=7, sigma=0.5)
    with pytest.raises(NoiseContractError, match="distinct transformations"):
        checks.check_deterministic(noise)


@pytest.mark.parametrize("name", [n for n in FAMILIES if not get_noise(n, dim=3, sigma=1.0)
                                  .additive])
def test_non_additive_families_have_no_delta(name):
    with pytest.raises(TypeError, match="not additive"):
        get_noise(name, dim=3, sigma=1.0).sample(2)
