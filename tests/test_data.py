"""Dataset loaders: against the raw files (parsed here independently), checksums, errors."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import norm

from conftest import shared_data
from smoothcert.data import (
    DATA_DIR_ENV,
    dataset_info,
    dataset_options,
    get_dataset,
    list_datasets,
)

# Known facts about MNIST (LeCun et al.): digit counts of the official splits.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def raw_idx(path, header):
    """An IDX file parsed with gzip and numpy only."""
    return np.frombuffer(gzip.open(path).read()[header:], dtype=np.uint8)


def raw_cifar(path):
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def test_registry_lists_every_family():
    assert set(list_datasets()) >= {"mnist", "cifar10", "imagenet", "digits",
                                    "gaussian_mixture", "disks"}


def test_unknown_dataset_split_and_option_are_named():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnits'.*mnist"):
        get_dataset("mnits")
    with pytest.raises(ValueError, match=r"unknown split 'val'.*train, test"):
        get_dataset("digits", split="val")
    with pytest.raises(ValueError, match=r"no option\(s\) colour.*classes"):
        get_dataset("digits", colour=True)
    assert "augment" in dataset_options("cifar10")
    assert "augment" not in dataset_options("mnist")


# ------------------------------------------------------------------------------------ MNIST
def test_mnist_test_split_matches_the_raw_files():
    root = shared_data()
    ds = get_dataset("mnist", split="test", root=root)
    images = raw_idx(shared_data("mnist", "t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 28, 28)
    labels = raw_idx(shared_data("mnist", "t10k-labels-idx1-ubyte.gz"), 8)
    assert len(ds) == 10000 and ds.info.shape == (1, 28, 28) and ds.info.num_classes == 10
    x, y = ds[123]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28) and isinstance(y, int)
    assert y == labels[123]
    assert torch.equal(x[0], torch.from_numpy(images[123].astype(np.float32)) / 255)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert np.bincount(labels).tolist() == MNIST_TEST_COUNTS
    assert torch.bincount(ds.targets).tolist() == MNIST_TEST_COUNTS
    batch_x, batch_y = ds.get_batch(torch.tensor([5, 123, 9999]))
    assert torch.equal(batch_x[1], x) and batch_y.tolist() == [labels[5], y, labels[9999]]


def test_mnist_train_counts_and_pixel_statistics():
    ds = get_dataset("mnist", split="train", root=shared_data())
    assert torch.bincount(ds.targets).tolist() == MNIST_TRAIN_COUNTS
    # pixel statistics from exact integer sums of the raw byte values
    raw = raw_idx(shared_data("mnist", "train-images-idx3-ubyte.gz"), 16)
    mean = raw.sum(dtype=np.int64) / raw.size / 255
    std = np.sqrt(np.square(raw, dtype=np.uint32).sum(dtype=np.int64) / raw.size / 255 ** 2
                  - mean ** 2)
    assert ds.info.mean[0] == pytest.approx(mean, abs=1e-4)
    assert ds.info.std[0] == pytest.approx(std, abs=1e-4)


def test_mnist_class_subset_is_relabelled_in_the_given_order():
    ds = get_dataset("mnist", split="test", root=shared_data(), classes=(7, 1))
    labels = raw_idx(shared_data("mnist", "t10k-labels-idx1-ubyte.gz"), 8)
    keep = np.flatnonzero((labels == 7) | (labels == 1))
    assert len(ds) == 1028 + 1135 and ds.info.num_classes == 2 and ds.info.classes == ("7", "1")
    assert ds.targets.tolist() == [0 if labels[i] == 7 else 1 for i in keep]
    assert dataset_info("mnist", classes=(7, 1)).num_classes == 2
    with pytest.raises(ValueError, match="distinct labels in 0..9"):
        get_dataset("mnist", split="test", root=shared_data(), classes=(1, 1))
    with pytest.raises(ValueError, match="distinct labels in 0..9"):
        dataset_info("mnist", classes=(3, 10))


def _copy_mnist(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(shared_data("mnist"), folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_mnist_corrupt_copy_is_rejected_by_its_uncompressed_md5(tmp_path):
    folder = _copy_mnist(tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # a valid label, so only the checksum can tell
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz.*corrupt.*MD5"):
        get_dataset("mnist", split="test", root=tmp_path)
    # without verification the (structurally valid) file loads
    ds = get_dataset("mnist", split="test", root=tmp_path, verify=False)
    assert len(ds) == 10000


def test_mnist_truncated_and_missing_files_are_named(tmp_path):
    folder = _copy_mnist(tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz.*corrupt"):
        get_dataset("mnist", split="test", root=tmp_path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\.gz.*looked in"):
        get_dataset("mnist", split="test", root=tmp_path)


def test_data_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data()))
    assert len(get_dataset("mnist", split="test")) == 10000
    monkeypatch.delenv(DATA_DIR_ENV)
    with pytest.raises(FileNotFoundError, match=DATA_DIR_ENV):
        get_dataset("mnist", split="test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_dataset("mnist", split="test", root=tmp_path / "nowhere")


# ------------------------------------------------------------------------------------ CIFAR-10
def test_cifar10_subset_matches_the_raw_batches():
    folder = shared_data("cifar10", "cifar-10-batches-py")
    train = get_dataset("cifar10", split="train", root=shared_data())
    test = get_dataset("cifar10", split="test", root=shared_data())
    assert (len(train), len(test)) == (8068, 1017)  # the subset described in its README
    assert train.info.shape == (3, 32, 32) and train.info.classes[0] == "airplane"
    raw = raw_cifar(folder / "test_batch")
    x, y = test[17]
    # a row holds 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    expected = torch.from_numpy(raw[b"data"][17].reshape(3, 32, 32).astype(np.float32)) / 255
    assert torch.equal(x, expected) and y == raw[b"labels"][17]
    assert test.targets.tolist() == list(raw[b"labels"])
    labels = np.concatenate([raw_cifar(folder / f"data_batch_{i}")[b"labels"]
                             for i in range(1, 6)])
    assert train.targets.tolist() == labels.tolist()
    meta = raw_cifar(folder / "batches.meta")
    assert [n.decode() for n in meta[b"label_names"]] == list(train.info.classes)


def _copy_cifar(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    shutil.copytree(shared_data("cifar10", "cifar-10-batches-py"), folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_cifar10_checksums(tmp_path):
    folder = _copy_cifar(tmp_path)
    data = bytearray((folder / "test_batch").read_bytes())
    data[-500] ^= 0xFF  # a pixel: the pickle stays readable
    (folder / "test_batch").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"test_batch.*corrupt.*SHA256"):
        get_dataset("cifar10", split="test", root=tmp_path)
    # without a SHA256SUMS list every file must be the official release's: batches.meta (the
    # original) passes, the subset's data files do not
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(ValueError, match=r"data_batch_1.*official release.*MD5"):
        get_dataset("cifar10", split="train", root=tmp_path)
    assert len(get_dataset("cifar10", split="train", root=tmp_path, verify=False)) == 8068
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3"):
        get_dataset("cifar10", split="train", root=tmp_path)


def test_cifar10_pickles_cannot_run_code(tmp_path):
    folder = _copy_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(ValueError, match="not a readable python batch"):
        get_dataset("cifar10", split="test", root=tmp_path, verify=False)


def test_cifar10_augmentation_is_a_shifted_flipped_copy():
    plain = get_dataset("cifar10", split="test", root=shared_data())
    aug = get_dataset("cifar10", split="test", root=shared_data(), augment=True)
    x = plain[3][0]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    candidates = [c.flip(-1) if f else c for f in (0, 1)
                  for c in (padded[:, i:i + 32, j:j + 32] for i in range(9) for j in range(9))]
    seen = []
    for epoch in range(4):
        aug.set_epoch(epoch, seed=0)
        out = aug[3][0]
        assert any(torch.equal(out, c) for c in candidates)
        seen.append(out)
    assert any(not torch.equal(seen[0], s) for s in seen[1:])  # epochs differ
    aug.set_epoch(2, seed=0)
    assert torch.equal(aug[3][0], seen[2])  # and are reproducible
    assert torch.equal(aug.get_batch(torch.tensor([3]))[0][0], seen[2])


# ------------------------------------------------------------------------------------ digits
def test_digits_split_is_deterministic_and_stratified():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    train, test = get_dataset("digits", "train"), get_dataset("digits", "test")
    counts = np.bincount(bunch.target)
    assert len(train) + len(test) == len(bunch.target) == 1797
    assert torch.bincount(test.targets).tolist() == (counts // 5).tolist()
    # test images: the 5th, 10th, ... image of each class, kept in file order
    expected = sorted(i for c in range(10) for i in np.flatnonzero(bunch.target == c)[4::5])
    x, y = test.get_batch(torch.arange(len(test)))
    assert y.tolist() == bunch.target[expected].tolist()
    assert torch.equal(x[:, 0], torch.from_numpy(bunch.images[expected] / 16).float())
    pixels = train.get_batch(torch.arange(len(train)))[0].numpy()
    assert train.info.mean[0] == pytest.approx(pixels.mean(), abs=1e-3)
    assert train.info.std[0] == pytest.approx(pixels.std(), abs=1e-3)
    assert 0 <= pixels.min() and pixels.max() <= 1


# ------------------------------------------------------------------------------------ synthetic
def test_gaussian_mixture_matches_the_half_space_risk():
    """Pal and Sulam (2023), Section 2: the Bayes rule x_1 >= tau, tau = s^2 ln(pi0/pi1)/(2 mu),
    has risk pi1 Phi((tau - mu)/s) + pi0 Phi((-tau - mu)/s)."""
    n, mu, s, prior = 40000, 1.2, 1.5, 0.3
    ds = get_dataset("gaussian_mixture", split="test", dim=5, mu=mu, s=s, prior=prior, n=n,
                     seed=4)
    assert ds.info.shape == (1, 1, 5) and len(ds) == n
    x, y = ds.get_batch(torch.arange(n))
    x, y = x.reshape(n, 5).double().numpy(), y.numpy()
    tau = s ** 2 * np.log((1 - prior) / prior) / (2 * mu)
    risk = prior * norm.cdf((tau - mu) / s) + (1 - prior) * norm.cdf((-tau - mu) / s)
    error = np.mean((x[:, 0] >= tau) != (y == 1))
    assert error == pytest.approx(risk, abs=4 * np.sqrt(risk * (1 - risk) / n))
    assert y.mean() == pytest.approx(prior, abs=4 * np.sqrt(prior * (1 - prior) / n))
    assert x[:, 1:].std() == pytest.approx(s, rel=0.02)
    train = get_dataset("gaussian_mixture", split="train", dim=5, n=100, seed=4)
    assert not torch.equal(train.data, get_dataset("gaussian_mixture", split="test", dim=5,
                                                   n=100, seed=4).data)
    with pytest.raises(ValueError, match="prior must be in"):
        get_dataset("gaussian_mixture", prior=1.0)


def test_disks_label_the_grid_points_inside_the_disks():
    ds = get_dataset("disks", side=40, radius=5, zeta=2, candidates=2000, seed=3)
    assert len(ds) == 1600 and ds.info.shape == (1, 1, 2)
    centres = ds.disks.centres
    assert len(centres) >= 2
    x, y = ds.get_batch(torch.arange(len(ds)))
    points = x.reshape(-1, 2).numpy()
    inside = (((points[:, None, :] - centres[None]) ** 2).sum(-1) <= 25).any(1)
    assert np.array_equal(inside, y.numpy() == 1)
    gaps = np.abs(centres[:, None] - centres[None]).max(-1)
    assert gaps[~np.eye(len(centres), dtype=bool)].min() > 2 * 5 + 2


# ------------------------------------------------------------------------------------ ImageNet
def _image_tree(tmp_path):
    rng = np.random.default_rng(0)
    for split, sizes in (("train", [(40, 30), (50, 64)]), ("val", [(24, 36)])):
        for cls in ("n01", "n02"):
            folder = tmp_path / "imagenet" / split / cls
            folder.mkdir(parents=True)
            for i, (w, h) in enumerate(sizes):
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return tmp_path


def test_image_folder_shapes_labels_and_test_transform(tmp_path):
    root = _image_tree(tmp_path)
    train = get_dataset("imagenet", "train", root=root, image_size=16, resize=20)
    test = get_dataset("imagenet", "test", root=root, image_size=16, resize=20)
    assert train.info.classes == ("n01", "n02") and train.info.shape == (3, 16, 16)
    assert train.targets.tolist() == [0, 0, 1, 1] and test.targets.tolist() == [0, 1]
    x, y = train[3]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 1
    train.set_epoch(0)
    first = train[3][0]
    assert torch.equal(first, train[3][0])
    train.set_epoch(1)
    assert not torch.equal(first, train[3][0])
    # test transform: a left-red / right-blue 40x20 image, shorter side resized 20 -> 20 (no
    # change), central 16x16 crop = columns 12..27: 8 red then 8 blue
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20, 0] = 255
    pixels[:, 20:, 2] = 255
    Image.fromarray(pixels).save(root / "imagenet" / "val" / "n02" / "9.png")
    test = get_dataset("imagenet", "test", root=root, image_size=16, resize=20)
    x = test[2][0]
    assert torch.equal(x[0, :, :8], torch.ones(16, 8)) and torch.equal(x[2, :, 8:],
                                                                         torch.ones(16, 8))
    assert float(x[0, :, 8:].max()) == 0 and float(x[1].max()) == 0


def test_image_folder_errors_name_the_file(tmp_path):
    root = _image_tree(tmp_path)
    (root / "imagenet" / "val" / "n01" / "bad.png").write_bytes(b"not an image")
    test = get_dataset("imagenet", "test", root=root, image_size=16, resize=20)
    assert test.targets.tolist() == [0, 0, 1]  # n01/0.png, n01/bad.png, n02/0.png
    test[0]
    with pytest.raises(ValueError, match=r"bad\.png.*unreadable"):
        test[1]
    with pytest.raises(FileNotFoundError, match="imagenet"):
        get_dataset("imagenet", "test", root=tmp_path / "imagenet" / "val")
