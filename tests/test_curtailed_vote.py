"""The curtailed majority vote: the same vote as counting all n draws, with fewer draws."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import ndtri
from scipy.stats import binom

from smoothcert.noises import get_noise
from smoothcert.pal_sulam.risk import curtailed_majority, curtailed_vote, decided


def replay(sequences: np.ndarray, classes: int):
    """A ``draw`` that hands out each input's fixed sequence of predictions, in order."""
    position = np.zeros(sequences.shape[0], dtype=int)
    calls = []

    def draw(k, active):
        calls.append((k, len(active)))
        out = np.zeros((len(active), classes), dtype=np.int64)
        for row, i in enumerate(active):
            for c in sequences[i, position[i]:position[i] + k]:
                out[row, c] += 1
            position[i] += k
        return out

    return draw, position, calls


def full_vote(sequence: np.ndarray, classes: int) -> int:
    counts = np.bincount(sequence, minlength=classes)
    return int(np.flatnonzero(counts == counts.max())[0])   # ties to the lowest class


@pytest.mark.parametrize("n, classes, step", [(9, 2, 1), (10, 3, 2), (25, 4, 3), (100, 10, 8)])
def test_votes_equal_the_full_count(n, classes, step):
    rng = np.random.default_rng(n * 31 + classes)
    m = 600
    # inputs from unanimous to evenly split, so that every stopping round occurs
    skew = rng.uniform(0, 1, size=m)
    probs = np.stack([np.full(classes, (1 - s) / classes) for s in skew])
    probs[np.arange(m), rng.integers(0, classes, m)] += skew
    sequences = np.stack([rng.choice(classes, size=n, p=p) for p in probs])
    draw, position, _ = replay(sequences, classes)
    votes, used = curtailed_majority(draw, m, n, step=step)
    expected = [full_vote(s, classes) for s in sequences]
    assert votes.tolist() == expected
    assert np.array_equal(position, used)
    assert used.min() >= n // 2 + 1 and used.max() <= n
    assert (used < n).any()   # lopsided inputs stopped early


def test_every_short_sequence_of_two_classes():
    # exhaustive for n = 7, two classes: each of the 128 sequences gets its full-count vote, and
    # stops at the first prefix after which no continuation could change the vote
    n = 7
    sequences = np.array(list(itertools.product([0, 1], repeat=n)))
    draw, _, _ = replay(sequences, 2)
    votes, used = curtailed_majority(draw, len(sequences), n, first=1, step=1)
    for s, vote, u in zip(sequences, votes, used, strict=True):
        assert vote == full_vote(s, 2)
        ones = int(s[:u].sum())
        zeros = u - ones
        # decided after u draws by hand: one class holds a majority of the 7 (4 of them)
        assert max(ones, zeros) >= 4 or u == n
        if u > 1:   # and not decided one draw earlier
            p_ones = int(s[:u - 1].sum())
            assert max(p_ones, u - 1 - p_ones) < 4


def test_decided_respects_the_tie_rule():
    # class 0 leads 3 to 2 with one draw left: a tie 3-3 would go to class 0, so decided
    assert decided(np.array([[3, 2]]), 1).tolist() == [True]
    # class 1 leads 3 to 2 with one draw left: a tie 3-3 would go to class 0, so not decided
    assert decided(np.array([[2, 3]]), 1).tolist() == [False]
    assert decided(np.array([[2, 4, 0]]), 1).tolist() == [True]
    assert decided(np.array([[2, 2, 0]]), 0).tolist() == [True]
    with pytest.raises(ValueError, match="remaining"):
        decided(np.array([[1, 0]]), -1)


def test_model_vote_has_the_binomial_error_rate():
    # at x = 0 with N(0, 1) noise the base classifier says 1 with probability q; the vote of
    # n = 11 draws is 1 iff at least 6 say 1: the same law as the full count, with fewer passes
    q, n, m = 0.3, 11, 4000

    class Step(torch.nn.Module):
        def forward(self, x):
            x = x.reshape(x.shape[0], -1)[:, :1]
            t = float(-ndtri(q))
            return torch.cat([t - x, x - t], dim=1)

    noise = get_noise("gaussian", dim=1, sigma=1.0)
    votes, used = curtailed_vote(Step(), torch.zeros(m, 1), range(m), noise=noise, n=n,
                                 num_classes=2, seed=3, batch_size=512, step=2)
    p_one = binom.sf(5, n, q)
    assert abs(votes.sum() - m * p_one) < 4 * math.sqrt(m * p_one * (1 - p_one))
    assert used.mean() < n and used.min() == 6
    again, _ = curtailed_vote(Step(), torch.zeros(m, 1), range(m), noise=noise, n=n,
                              num_classes=2, seed=3, batch_size=97, step=2)
    assert np.array_equal(votes, again)   # the draws follow the input, not the batch
