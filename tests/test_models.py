"""Architectures: forward shapes on their datasets, the normalization layer, parameter counts
against the papers, and clear errors for shapes that do not fit."""

from __future__ import annotations

import functools

import pytest
import torch

from smoothcert.data import dataset_info
from smoothcert.models import Normalize, get_model, list_models
from smoothcert.models.checkpoint import load_checkpoint, save_checkpoint

ARCH_DATASETS = [
    ("mlp", "digits"),
    ("mlp", "gaussian_mixture"),
    ("mnist_cnn", "mnist"),
    ("lenet", "mnist"),
    ("lenet", "cifar10"),
    ("resnet20", "cifar10"),
    ("resnet110", "cifar10"),
    ("wrn40_2", "cifar10"),
]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@functools.cache
def built(arch, dataset, **options):
    """One model per (arch, dataset), shared by the tests (they only read it)."""
    torch.manual_seed(0)
    return get_model(arch, dataset=dataset, **options).eval()


def test_every_architecture_is_covered():
    tested = {arch for arch, _ in ARCH_DATASETS} | {"resnet50"}
    assert set(list_models()) == tested


@pytest.mark.parametrize(("arch", "dataset"), ARCH_DATASETS)
def test_forward_on_the_dataset_shape(arch, dataset):
    info = dataset_info(dataset)
    model = built(arch, dataset)
    assert isinstance(model[0], Normalize)
    with torch.no_grad():
        out = model(torch.rand(3, *info.shape))
    assert out.shape == (3, info.num_classes) and torch.isfinite(out).all()
    two = get_model(arch, dataset=dataset, num_classes=2).eval()
    with torch.no_grad():
        assert two(torch.rand(1, *info.shape)).shape == (1, 2)


def test_resnet50_forward_at_a_small_image_size():
    model = built("resnet50", "imagenet", image_size=64)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.slow
def test_resnet50_forward_at_224():
    model = get_model("resnet50", dataset="imagenet").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 224, 224)).shape == (2, 1000)


def test_first_layer_is_the_dataset_normalization():
    model = get_model("resnet20", dataset="cifar10")
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    std = torch.tensor([0.2023, 0.1994, 0.2010]).view(3, 1, 1)
    assert torch.allclose(model[0](x), (x - mean) / std)
    assert model.normalize is model[0]
    # Pal and Sulam's MNIST network sees raw pixels: an identity normalization
    cnn = get_model("mnist_cnn", dataset="mnist")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(cnn[0](x), x)
    # other MNIST networks get the MNIST statistics
    assert torch.allclose(get_model("lenet", dataset="mnist")[0](x), (x - 0.1307) / 0.3081)


def test_normalize_rejects_wrong_channels_and_bad_std():
    with pytest.raises(ValueError, match=r"expected inputs \(\.\.\., 3, H, W\)"):
        Normalize((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize((0.5,), (0.0,))


def _cifar_resnet_params(depth, classes=10, channels=3):
    """He et al. (2016), Section 4.2: 3x3 conv to 16, then n = (depth - 2) / 6 basic blocks at
    16, 32, 64 filters (two 3x3 convs + two BNs each), parameter-free (option A) shortcuts,
    average pooling, fully connected."""
    n = (depth - 2) // 6
    total = channels * 16 * 9 + 2 * 16  # first conv and its BN
    width = 16
    for out in (16, 32, 64):
        for _ in range(n):
            total += width * out * 9 + out * out * 9 + 4 * out
            width = out
    return total + 64 * classes + classes


def test_parameter_counts_match_the_papers():
    # mnist_cnn, layer by layer from Pal and Sulam's description
    assert n_params(get_model("mnist_cnn", dataset="mnist")) == (
        (9 * 32 + 32) + (32 * 9 * 64 + 64) + (9216 * 128 + 128) + (128 * 10 + 10))
    # LeNet-5 on MNIST: the classic 61,706
    assert n_params(get_model("lenet", dataset="mnist")) == 61706
    # He et al. Table 6: ResNet-20 0.27M, ResNet-110 1.7M
    for depth, published in ((20, 0.27e6), (110, 1.7e6)):
        count = n_params(built(f"resnet{depth}", "cifar10"))
        assert count == _cifar_resnet_params(depth)
        assert count == pytest.approx(published, rel=0.02)
    # Zagoruyko and Komodakis: WRN-40-2 has 2.2M
    assert n_params(built("wrn40_2", "cifar10")) == pytest.approx(2.2e6, rel=0.02)
    # ResNet-50 (torchvision's count for 1000 classes; independent of the image size)
    assert n_params(built("resnet50", "imagenet", image_size=64)) == 25_557_032


@pytest.mark.parametrize(("arch", "dataset", "why"), [
    ("mnist_cnn", "cifar10", r"needs inputs of shape \(1, 28, 28\)"),
    ("lenet", "digits", "at least 12x12"),
    ("resnet50", "digits", "at least 32x32"),
    ("resnet20", "gaussian_mixture", "at least 8x8"),
])
def test_shapes_that_do_not_fit_are_named(arch, dataset, why):
    with pytest.raises(ValueError, match=rf"architecture '{arch}' does not fit dataset "
                                         rf"'{dataset}'.*{why}"):
        get_model(arch, dataset=dataset)


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet21'.*resnet20"):
        get_model("resnet21", dataset="cifar10")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        get_model("mlp", dataset="digits", num_classes=1)
    with pytest.raises(ValueError, match="C = 1 channels"):
        get_model("mlp", dataset="digits", input_shape=(3, 8, 8))
    model = get_model("mlp", dataset="gaussian_mixture", dim=7)
    assert model(torch.rand(4, 1, 1, 7)).shape == (4, 2)


def test_checkpoint_round_trip_rebuilds_the_same_function(tmp_path):
    torch.manual_seed(1)
    model = get_model("resnet20", dataset="cifar10").eval()
    path = save_checkpoint(tmp_path / "m.pt", model=model, arch="resnet20", dataset="cifar10",
                           num_classes=10, input_shape=(3, 32, 32), train_noise=None,
                           config={}, epoch=0)
    loaded = load_checkpoint(path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
