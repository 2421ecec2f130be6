"""TargetStats: what the generated images were taught over an epoch (hand-computed cases)."""

from __future__ import annotations

import math

import pytest
import torch

from genreid.labels.stats import TargetStats


def test_uniform_targets_spread_over_every_class():
    s = TargetStats(4)
    s.add(torch.full((6, 4), 0.25))
    got = s.summary()
    assert got["gen/top_identity_share"] == pytest.approx(0.25)
    assert got["gen/effective_identities"] == pytest.approx(4.0)
    assert got["gen/target_entropy"] == pytest.approx(1.0)


def test_a_collapse_puts_everything_on_one_class_and_summary_resets():
    s = TargetStats(5)
    q = torch.zeros(3, 5)
    q[:, 2] = 1.0
    s.add(q)
    s.add(q[:1])
    got = s.summary()
    assert got["gen/top_identity_share"] == pytest.approx(1.0)
    assert got["gen/effective_identities"] == pytest.approx(1.0)
    assert got["gen/target_entropy"] == pytest.approx(0.0, abs=1e-9)
    assert s.summary() == {}  # reset: an epoch without generated images reports nothing


def test_mixed_targets():
    # one-hot on 0, one-hot on 1, and (0.5, 0.5, 0, 0): mass (1.5, 1.5, 0, 0) / 3
    s = TargetStats(4)
    s.add(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.5, 0.5, 0, 0]]))
    got = s.summary()
    assert got["gen/top_identity_share"] == pytest.approx(0.5)
    assert got["gen/effective_identities"] == pytest.approx(2.0)
    assert got["gen/target_entropy"] == pytest.approx((math.log(2) / math.log(4)) / 3)
    s.add(torch.zeros(0, 4))  # no generated image in a batch: nothing added
    assert s.summary() == {}
