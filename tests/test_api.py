"""The public API re-exported by ``smoothcert`` (imported lazily) resolves, name by name."""

from __future__ import annotations

import pytest

import smoothcert


@pytest.mark.parametrize("name", smoothcert.__all__)
def test_every_public_name_resolves(name):
    assert getattr(smoothcert, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        smoothcert.no_such_thing  # noqa: B018


def test_the_documented_entry_points():
    noise = smoothcert.get_noise("gaussian", dim=4, sigma=0.5)
    assert isinstance(noise, smoothcert.Noise)
    # the reference families are present (others may be registered: plugins, new families)
    assert {"gaussian", "laplace", "uniform", "uniform_ball", "exp1", "exp2", "exp_inf",
            "exp_p", "pareto", "pow2", "pow_inf", "ssn", "dssn"} <= set(smoothcert.list_noises())
    assert {"mnist", "cifar10", "imagenet", "digits"} <= set(smoothcert.list_datasets())
    assert {"mnist_cnn", "resnet20", "resnet110", "wrn40_2", "resnet50", "lenet"} <= set(
        smoothcert.list_models())
