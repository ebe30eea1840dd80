"""Splitting noise (ssn) and its derandomization (dssn), [LF21], against independent computations:
the cell definition walked by hand in exact arithmetic, SSN's cell-change probability, DSSN's
votes by brute force, the counts-to-radius rule against an adversary that tries every vote move,
and the certificate against an exhaustive search of a small grid."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from smoothcert import get_noise
from smoothcert.certify.classifier import SmoothedClassifier
from smoothcert.certify.deterministic import (
    certify_deterministic,
    deterministic_counts,
    predict_deterministic,
)
from smoothcert.noises._splitting import split_continuous, split_grid
from smoothcert.noises.dssn import THREAT_MODEL, dssn_radius, dssn_steps
from smoothcert.norms import Norm


# ------------------------------------------------------------------ the cell definition by hand
def cell_centre(x, s, w):
    """The centre of the cell [s + w k, s + w (k + 1)) holding x, clipped to [0, 1]: k found by
    walking (works for floats and Fractions alike)."""
    k = 0
    while s + w * k > x:
        k -= 1
    while s + w * (k + 1) <= x:
        k += 1
    lower, upper = s + w * k, s + w * (k + 1)
    return (min(max(lower, 0), 1) + min(max(upper, 0), 1)) / 2


@pytest.mark.parametrize("width", [0.07, 0.5, 1.0, 1.7, 4.0])
def test_split_continuous_is_the_cell_definition(width):
    rng = np.random.default_rng(1)
    x = rng.random(400)
    s = rng.random(400) * width
    got = split_continuous(torch.tensor(x), torch.tensor(s), width).numpy()
    expected = [cell_centre(float(a), float(b), width) for a, b in zip(x, s, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    if width >= 1:
        # SPLITTING.md 2: for 2 lambda >= 1 the centre is (1[x > s] + min(s, 1)) / 2
        np.testing.assert_allclose(got, ((x > s) + np.minimum(s, 1)) / 2, atol=1e-12)


@pytest.mark.parametrize(("q", "length"), [(16, 1), (16, 5), (16, 16), (7, 12), (16, 37)])
def test_split_grid_is_the_cell_definition_in_exact_arithmetic(q, length):
    a = torch.arange(q + 1).repeat_interleave(length)
    j = torch.arange(length).repeat(q + 1)
    got = split_grid(a, j, length, q, torch.float64).numpy()
    for ai, ji, gi in zip(a.tolist(), j.tolist(), got.tolist(), strict=True):
        centre = cell_centre(Fraction(ai, q), Fraction(2 * ji + 1, 2 * q), Fraction(length, q))
        assert gi == float(centre), (ai, ji)


def test_dssn_transform_is_the_cell_definition_with_the_template():
    noise = get_noise("dssn", dim=5, scale=0.4, quantization=16, template_seed=3)
    length = noise.num_transforms
    assert length == math.floor(2 * 0.4 * 16) == 12
    v = noise.template().tolist()
    assert len(v) == 5 and all(0 <= vi < length for vi in v)
    assert noise.template().tolist() == v  # fixed
    x = torch.tensor([[0, 1, 7, 15, 16]], dtype=torch.float32) / 16
    for t in range(length):
        got = noise.transform(x, torch.tensor([t]))[0].tolist()
        for i in range(5):
            s = Fraction(2 * ((v[i] + t) % length) + 1, 2 * 16)
            expected = cell_centre(Fraction(round(float(x[0, i]) * 16), 16), s,
                                   Fraction(length, 16))
            assert got[i] == pytest.approx(float(expected), abs=1e-7), (t, i)


def test_templates_differ_by_seed_and_perturb_uses_a_transformation():
    a = get_noise("dssn", dim=50, sigma=0.5, template_seed=0)
    b = get_noise("dssn", dim=50, sigma=0.5, template_seed=1)
    assert not torch.equal(a.template(), b.template())
    x = torch.full((40, 50), 100 / 255)
    draws = a.perturb(x, torch.Generator().manual_seed(0))
    every = a.transform(x[:1], torch.arange(a.num_transforms))
    for row in draws:
        assert (every == row).all(dim=1).any()


# ------------------------------------------------------------------ SSN: the certificate's lemma
def test_ssn_cell_change_probability_is_shift_over_width():
    """P[T(x)_i != T(x + v)_i] = min(1, |v_i| / (2 lambda)) under shared offsets ([LF21]
    Theorem 1's lemma): Monte Carlo, 40,000 draws, 5 binomial standard errors."""
    scale = 0.3
    noise = get_noise("ssn", dim=6, scale=scale)
    v = torch.tensor([0.01, 0.05, 0.1, -0.3, 0.6, -0.7], dtype=torch.float64)
    x = torch.tensor([0.25, 0.4, 0.5, 0.75, 0.2, 0.8], dtype=torch.float64)
    draws = 40_000
    rows = x.expand(draws, -1)
    first = noise.perturb(rows, torch.Generator().manual_seed(7))
    second = noise.perturb(rows + v, torch.Generator().manual_seed(7))
    changed = (first != second).double().mean(dim=0).numpy()
    p = np.minimum(1.0, np.abs(v.numpy()) / (2 * scale))
    se = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(changed - p) <= 5 * se + 1e-12), (changed, p)


def test_ssn_certifies_uniform_noise_radius_through_certify():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    noise = get_noise("ssn", dim=4, sigma=0.4)
    smoothed = SmoothedClassifier(model, noise, 3, batch_size=500)
    x = torch.tensor([0.2, 0.9, 0.5, 0.1])
    cert = smoothed.certify(x, 50, 1000, 0.001, norms=("l1",),
                            generator=torch.Generator().manual_seed(0))
    if cert.prediction != -1:
        assert cert.radius[Norm.L1] == pytest.approx(
            2 * 0.4 * math.sqrt(3) * (cert.p_lower - 0.5), rel=1e-12)
    with pytest.raises(ValueError, match="convert=True"):
        noise.certified_radius(0.9, "linf")


# ------------------------------------------------------------------ DSSN: counts and radius
def _tiny_net(d, classes, seed, hidden=24):
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, classes))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 3)
    return net.double()


def test_dssn_counts_by_brute_force():
    q, d = 16, 3
    noise = get_noise("dssn", dim=d, scale=0.45, quantization=q, template_seed=5)
    net = _tiny_net(d, 4, seed=2)
    smoothed = SmoothedClassifier(net, noise, 4, batch_size=7)  # batches split inputs
    grid = torch.tensor([[0, 5, 16], [8, 8, 8], [3, 16, 1]], dtype=torch.float64) / q
    counts = deterministic_counts(smoothed, grid)
    v = noise.template().tolist()
    length = noise.num_transforms
    for row, x in zip(counts, grid, strict=True):
        expected = np.zeros(4, dtype=np.int64)
        for t in range(length):
            noisy = [float(cell_centre(Fraction(round(float(x[i]) * q), q),
                                       Fraction(2 * ((v[i] + t) % length) + 1, 2 * q),
                                       Fraction(length, q))) for i in range(d)]
            with torch.no_grad():
                expected[int(net(torch.tensor([noisy], dtype=torch.float64)).argmax())] += 1
        assert row.tolist() == expected.tolist()
    assert (counts.sum(axis=1) == length).all()


def _adversary_keeps(counts, m):
    """Whether every count vector reachable by moving at most m votes keeps the top class
    (argmax, lowest index among ties): an exhaustive adversary."""
    top = int(np.argmax(counts))
    total, classes = int(sum(counts)), len(counts)
    for other in itertools.product(range(total + 1), repeat=classes):
        if sum(other) != total:
            continue
        moved = sum(max(a - b, 0) for a, b in zip(counts, other, strict=True))
        if moved <= m and int(np.argmax(other)) != top:
            return False
    return True


def test_dssn_steps_against_an_exhaustive_adversary():
    for counts in itertools.product(range(5), repeat=3):
        if sum(counts) == 0:
            continue
        steps = dssn_steps(np.array(counts))
        assert _adversary_keeps(counts, steps), counts
        assert not _adversary_keeps(counts, steps + 1), counts


def test_dssn_radius_vectorized_rounds_down_and_validates():
    counts = np.array([[5, 1, 0], [0, 3, 3], [2, 2, 0], [0, 0, 9]])
    assert dssn_steps(counts).tolist() == [2, 0, 0, 4]
    radius = dssn_radius(counts, 255)
    assert radius.dtype == np.float64 and radius.shape == (4,)
    for r, m in zip(radius, [2, 0, 0, 4], strict=True):
        assert Fraction(float(r)) <= Fraction(m, 255) and r == pytest.approx(m / 255)
    assert dssn_radius(np.array([9, 1]), 16) == 0.25
    with pytest.raises(ValueError, match="integers"):
        dssn_steps(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        dssn_steps(np.array([3]))


def test_share_radius_is_the_open_ball_of_the_worst_vote():
    """certified_radius(c_A / L) keeps every grid point with q ||v||_1 < (p - 1/2) L: the
    steps certified when every other vote sits on one class below A."""
    noise = get_noise("dssn", dim=10, sigma=0.5, quantization=16)
    length = noise.num_transforms
    for c_a in range(length // 2 + 1, length + 1):
        r = noise.certified_radius(c_a / length, "l1")
        worst = dssn_steps(np.array([length - c_a, c_a]))
        largest_inside = math.ceil(r * 16 - 1e-9) - 1  # the largest integer m < r q
        assert largest_inside == worst


# ------------------------------------------------------------------ the exhaustive search
@pytest.mark.parametrize(("d", "scale", "seed"), [(2, 0.375, 2), (3, 0.3, 0)])
def test_dssn_certificate_by_exhaustive_search(d, scale, seed):
    """On the whole grid {0, ..., 16}^d / 16: every grid point within the certified l1 radius
    of x gets x's smoothed prediction, and for some x a point one grid step further does not
    (so a radius one step larger would be wrong, and this test can fail)."""
    q = 16
    noise = get_noise("dssn", dim=d, scale=scale, quantization=q, template_seed=seed)
    net = _tiny_net(d, 4, seed=seed + 10)
    smoothed = SmoothedClassifier(net, noise, 4, batch_size=20_000)
    points = torch.tensor(list(itertools.product(range(q + 1), repeat=d)))
    certs = certify_deterministic(smoothed, points.double() / q)
    prediction = np.array([c.prediction for c in certs])
    steps = np.array([round(c.radius[Norm.L1] * q) for c in certs])
    assert all(c.radius[Norm.L1] <= s / q for c, s in zip(certs, steps, strict=True))
    grid = points.numpy().astype(np.int16)
    tight = 0
    for start in range(0, len(grid), 600):
        block = slice(start, start + 600)
        distance = np.abs(grid[block, None, :] - grid[None, :, :]).sum(axis=2)
        differs = prediction[None, :] != prediction[block, None]
        inside = distance <= steps[block, None]
        assert not (inside & differs).any(), "a grid point inside the radius changes class"
        tight += int((differs & (distance == steps[block, None] + 1)).any(axis=1).sum())
    assert tight > 0
    assert len(set(prediction.tolist())) > 1


# ------------------------------------------------------------------ the interface
def test_certificate_fields_and_off_grid_inputs():
    noise = get_noise("dssn", dim=64, sigma=0.5, quantization=16)
    assert noise.num_transforms == math.floor(2 * 0.5 * math.sqrt(3) * 16)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    smoothed = SmoothedClassifier(net, noise, 10, batch_size=64)
    xs = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16
    certs = certify_deterministic(smoothed, xs, ("l1", "l2"), convert=True)
    for cert in certs:
        assert cert.samples == noise.num_transforms == int(cert.counts.sum())
        assert cert.p_lower == cert.counts[cert.prediction] / noise.num_transforms
        assert cert.radius[Norm.L1] == dssn_radius(cert.counts, 16)
        assert cert.radius[Norm.L2] == pytest.approx(cert.radius[Norm.L1] / 8)
    predictions = predict_deterministic(smoothed, xs)
    assert [p.prediction for p in predictions] == [c.prediction for c in certs]
    assert all(p.p_value == 0.0 and p.samples == noise.num_transforms for p in predictions)
    with pytest.raises(ValueError, match="convert=True"):
        certify_deterministic(smoothed, xs, ("l2",))
    bad = xs.clone()
    bad[1, 0, 2, 3] = 0.3
    with pytest.raises(ValueError, match=r"index \(1, 0, 2, 3\) is 0\.3000"):
        certify_deterministic(smoothed, bad)
    with pytest.raises(ValueError, match="not on it"):
        certify_deterministic(smoothed, xs * 1.5)  # above 1
    with pytest.raises(ValueError, match="not deterministic"):
        certify_deterministic(SmoothedClassifier(net, get_noise("ssn", dim=64, sigma=0.5), 10),
                              xs)
    record = noise.describe()
    assert record["threat_model"] == THREAT_MODEL and record["quantization"] == 16
    assert record["offsets"] == noise.num_transforms


def test_dssn_refuses_a_scale_below_one_grid_step():
    with pytest.raises(ValueError, match="at least one offset"):
        get_noise("dssn", dim=3, scale=0.01, quantization=16)
    with pytest.raises(ValueError, match="quantization"):
        get_noise("dssn", dim=3, sigma=0.5, quantization=0)
    # a scale that is a whole number of half grid steps keeps its L through sigma
    assert get_noise("dssn", dim=3, scale=127.5 / 255).num_transforms == 255


@pytest.mark.parametrize("name", ["ssn"])  # dssn: see the command-line test below
def test_training_runs_an_epoch_on_digits(name, tmp_path):
    from smoothcert.training import TrainConfig, train

    params = {"quantization": 16} if name == "dssn" else {}
    result = train(TrainConfig(dataset="digits", arch="mlp",
                               noise={"name": name, "sigma": 0.5, **params}, epochs=1,
                               max_train=200, max_eval=50, out=str(tmp_path / f"{name}.pt")))
    assert result.metrics[-1]["test_noisy_accuracy"] is not None
    assert result.train_noise["name"] == name and result.train_noise["sigma"] == 0.5
    if name == "dssn":
        assert result.train_noise["quantization"] == 16
        assert result.train_noise["template_seed"] == 0


def test_smoothed_classifier_dispatches_dssn_to_the_exact_certificate():
    noise = get_noise("dssn", dim=64, sigma=0.5, quantization=16)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    smoothed = SmoothedClassifier(net, noise, 10, batch_size=100)
    xs = torch.randint(0, 17, (4, 1, 8, 8)).float() / 16
    direct = certify_deterministic(smoothed, xs)
    one = smoothed.certify(xs[2], norms=("l1",))
    assert one.prediction == direct[2].prediction and one.radius == direct[2].radius
    assert one.samples == noise.num_transforms and one.counts.tolist() == direct[2].counts.tolist()
    batch = smoothed.certify_batch(xs, norms=("l1",))
    assert [c.radius for c in batch] == [c.radius for c in direct]
    assert smoothed.predict(xs[0]).prediction == direct[0].prediction
    with pytest.raises(ValueError, match="deterministic"):
        smoothed.certify(xs[0], 100, 1000, 0.001, norms=("l1",))


def test_command_line_trains_certifies_shards_and_analyzes_dssn(tmp_path, capsys):
    """smoothcert train/certify with --noise dssn on digits (no --n0/--n/--alpha), in two shards,
    one resumed, merged and analyzed; the rows are the library's exact certificates."""
    from smoothcert.analysis.results import read_results
    from smoothcert.cli.main import main
    from smoothcert.models.checkpoint import load_checkpoint

    noise = ["--noise", "dssn", "--sigma", "0.5", "--quantization", "16"]
    ckpt = tmp_path / "dssn.pt"
    # without --quantization, training takes the digits' grid (16), not dssn's default 255
    assert main(["train", "--dataset", "digits", "--arch", "mlp", "--epochs", "1",
                 "--max-train", "200", "--max-eval", "50", *noise[:4], "--out", str(ckpt)]) == 0
    metrics = json.loads(ckpt.with_suffix(".metrics.json").read_text())
    assert metrics["config"]["noise"]["quantization"] == 16
    out = tmp_path / "certify.tsv"
    common = ["certify", "--checkpoint", str(ckpt), *noise, "--norms", "l1", "--skip", "40"]
    shards = [tmp_path / f"certify.shard{i}-of-2.tsv" for i in range(2)]
    for i, shard in enumerate(shards):
        assert main([*common, "--shard", f"{i}/2", "--out", str(out)]) == 0
        assert shard.is_file()
    before = shards[1].read_text()
    assert main([*common, "--shard", "1/2", "--out", str(out)]) == 0  # resumed: nothing new
    assert shards[1].read_text() == before
    assert main(["merge", *map(str, shards), "--out", str(out)]) == 0
    res = read_results(out)
    assert res.idx.tolist() == list(range(0, 355, 40))
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["configuration"]["noise"]["threat_model"] == THREAT_MODEL

    model = load_checkpoint(ckpt).model
    smoothed = SmoothedClassifier(model, get_noise("dssn", dim=64, sigma=0.5, quantization=16),
                                  10)
    from smoothcert.data import get_dataset

    test = get_dataset("digits", split="test")
    certs = smoothed.certify_batch(torch.stack([test[int(i)][0] for i in res.idx]),
                                   norms=("l1",))
    assert res.prediction.tolist() == [c.prediction for c in certs]
    np.testing.assert_array_equal(res.radii("l1"), [c.radius[Norm.L1] for c in certs])
    capsys.readouterr()
    assert main(["analyze", str(out), "--norm", "l1", "--radii", "0,0.25,0.5"]) == 0
    assert "0.25" in capsys.readouterr().out


def test_the_dataset_grid_is_dssn_s_default_quantization():
    """--quantization defaults to the data's pixel grid (DatasetInfo.quantization) where that
    differs from the family's default; given explicitly, or for a family without it, nothing
    changes."""
    from smoothcert.cli._noise_args import with_data_grid
    from smoothcert.data import dataset_info

    assert dataset_info("digits").quantization == 16
    assert dataset_info("mnist").quantization == dataset_info("cifar10").quantization == 255
    assert dataset_info("disks").quantization is None
    assert with_data_grid("dssn", {}, 16) == {"quantization": 16}
    assert with_data_grid("dssn", {}, 255) == {}  # dssn's default: descriptions stay as before
    assert with_data_grid("dssn", {"quantization": 8}, 16) == {"quantization": 8}
    assert with_data_grid("dssn", {}, None) == {}
    assert with_data_grid("uniform", {}, 16) == {}
