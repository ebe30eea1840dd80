"""The registries of noises, datasets and architectures refuse clashes and name the choices."""

from __future__ import annotations

import dataclasses

import pytest

from smoothcert._registry import Registry
from smoothcert.data.base import SmoothcertDataset, dataset_class, register_dataset
from smoothcert.models.registry import model_spec, register_model
from smoothcert.noises.base import noise_class, register_noise


def test_registry_basics():
    reg: Registry[int] = Registry("thing")
    reg.add("b", 2)
    reg.add("a", 1)
    reg.add("a", 1)  # the same object again is fine
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert "a" in reg and "c" not in reg and reg.get("b") == 2
    with pytest.raises(ValueError, match=r"unknown thing 'c'; choose from a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match=r"thing 'a' is already registered by one"):
        reg.add("a", 3, describe=lambda old: "one")


def test_noise_name_clash_is_refused_and_the_original_kept():
    original = noise_class("gaussian")

    @dataclasses.dataclass(frozen=True)
    class Impostor(original):
        pass

    with pytest.raises(ValueError, match=r"noise 'gaussian' is already registered by Gaussian"):
        register_noise("gaussian")(Impostor)
    assert noise_class("gaussian") is original and original.name == "gaussian"
    assert register_noise("gaussian")(original) is original

    class NotFrozen:
        pass

    with pytest.raises(TypeError, match="NotFrozen must be a frozen dataclass"):
        register_noise("not_frozen")(NotFrozen)
    with pytest.raises(ValueError, match="unknown noise 'not_frozen'"):
        noise_class("not_frozen")


def test_dataset_name_clash_is_refused():
    class Impostor(SmoothcertDataset):
        pass

    with pytest.raises(ValueError, match=r"dataset 'digits' is already registered"):
        register_dataset("digits")(Impostor)
    assert dataset_class("digits") is not Impostor
    with pytest.raises(TypeError, match="subclass of SmoothcertDataset"):
        register_dataset("not_a_dataset")(object)


def test_architecture_name_clash_is_refused():
    with pytest.raises(ValueError, match=r"architecture 'mlp' is already registered"):
        register_model("mlp")(lambda shape, num_classes: None)
    spec = model_spec("mlp")
    assert register_model("mlp")(spec.build) is spec.build
    assert model_spec("mlp") is spec  # re-registering keeps the original spec
