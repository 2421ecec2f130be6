"""Batch-hard triplet loss: the brute-force definition, the soft margin, and its config."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genreid.core.config import load_config
from genreid.core.errors import ConfigError
from genreid.engine.tasks.reid import ReIDTrainConfig
from genreid.labels.triplet import batch_hard_triplet


def brute_force(feats: torch.Tensor, labels: list[int], margin: float) -> float | None:
    """Hermans et al.'s batch-hard loss, anchor by anchor, on L2-normalised features."""
    x = torch.nn.functional.normalize(feats.double(), dim=1)
    terms = []
    for a in range(len(labels)):
        pos = [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(len(labels)) if labels[n] != labels[a]]
        if not pos or not neg:
            continue
        d_ap = max(float((x[a] - x[p]).norm()) for p in pos)
        d_an = min(float((x[a] - x[n]).norm()) for n in neg)
        z = d_ap - d_an
        terms.append(max(0.0, z + margin) if margin > 0 else math.log1p(math.exp(z)))
    return sum(terms) / len(terms) if terms else None


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=2, max_size=10),
    margin=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 10_000),
)
def test_matches_the_brute_force_definition(labels: list[int], margin: float, seed: int) -> None:
    feats = torch.randn(len(labels), 6, generator=torch.Generator().manual_seed(seed))
    got = float(batch_hard_triplet(feats, torch.tensor(labels), margin))
    want = brute_force(feats, labels, margin)
    assert got == pytest.approx(0.0 if want is None else want, abs=1e-5)


def test_gradient_pulls_positives_together() -> None:
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]], requires_grad=True)
    loss = batch_hard_triplet(feats, torch.tensor([0, 0, 1]), 0.3)
    assert float(loss.detach()) > 0
    loss.backward()
    step = feats.detach() - 0.1 * feats.grad
    assert float(batch_hard_triplet(step, torch.tensor([0, 0, 1]), 0.3)) < float(loss.detach())


def test_needs_the_pk_sampler() -> None:
    with pytest.raises(ConfigError, match="data.sampler=pk"):
        load_config(ReIDTrainConfig, "tiny", ["labels.triplet=1.0"])
    cfg = load_config(ReIDTrainConfig, "tiny", ["labels.triplet=1.0", "data.sampler=pk"])
    assert cfg.labels.triplet == 1.0 and cfg.labels.triplet_margin == 0.3
    with pytest.raises(ConfigError, match="labels.triplet"):
        load_config(ReIDTrainConfig, "tiny", ["labels.triplet=-1", "data.sampler=pk"])


def test_tiny_triplet_is_the_tiny_recipe_plus_pk_and_the_triplet_term() -> None:
    base, trip = (asdict(load_config(ReIDTrainConfig, n)) for n in ("tiny", "tiny_triplet"))
    differ = {
        f"{section}.{key}"
        for section in base
        if isinstance(base[section], dict)
        for key in base[section]
        if base[section][key] != trip[section][key]
    }
    assert differ == {"data.sampler", "data.pk_instances", "labels.triplet"}
    assert (trip["data"]["sampler"], trip["data"]["pk_instances"], trip["labels"]["triplet"]) == (
        "pk", 2, 1.0,
    )  # fmt: skip
