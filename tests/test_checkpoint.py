"""Atomic checkpoints, safe loading and RNG state round trips."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from genreid.core.checkpoint import (
    atomic_save,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)


def test_rng_state_round_trip_through_file(tmp_path):
    seed_everything(3)
    state = rng_state()
    first = (random.random(), float(np.random.rand()), torch.rand(3).tolist())
    atomic_save({"rng": state}, tmp_path / "ck.pt")
    set_rng_state(load_checkpoint(tmp_path / "ck.pt")["rng"])
    assert (random.random(), float(np.random.rand()), torch.rand(3).tolist()) == first


def test_atomic_save_leaves_no_temp_and_overwrites(tmp_path):
    atomic_save({"w": torch.ones(2)}, tmp_path / "last.pt")
    atomic_save({"w": torch.zeros(2)}, tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "last.pt")["w"], torch.zeros(2))


def test_corrupt_checkpoint_message(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="cannot be loaded.*delete it"):
        load_checkpoint(tmp_path / "bad.pt")


class Thing:
    """A class that a weights_only load must refuse to construct."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    torch.save({"x": Thing()}, tmp_path / "evil.pt")
    with pytest.raises(RuntimeError, match="cannot be loaded"):
        load_checkpoint(tmp_path / "evil.pt")
