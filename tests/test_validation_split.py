"""Validation identities carved from the training split (``data.options.validation``)."""

from __future__ import annotations

import json

import pytest

from genreid.data.datasets import load_dataset
from genreid.data.errors import DatasetError
from genreid.engine.tasks.reid import train
from tests.fixtures import make_market_tree
from tests.test_train_engine import tiny_cfg


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_market_tree(tmp_path_factory.mktemp("m"), num_train_ids=10, num_test_ids=3)


def test_held_out_identities_replace_the_test_split(root):
    full = load_dataset("market1501", root)
    ds = load_dataset("market1501", root, validation=0.3, validation_seed=4)
    train_ids = {r.pid for r in full.train}
    held = {r.pid for r in ds.query}
    assert len(held) == 3 == round(0.3 * len(train_ids)) and held <= train_ids
    assert not held & {r.pid for r in ds.train}  # held-out people never train
    assert {r.pid for r in ds.gallery} == held  # no test identity, no distractor, no junk
    assert len(ds.query) == len(held)  # one query each ...
    for q in ds.query:  # ... with a true match in another camera, all its other images
        mates = [g for g in ds.gallery if g.pid == q.pid]
        assert any(g.camid != q.camid for g in mates)
        assert len(mates) + 1 == sum(r.pid == q.pid for r in full.train)
    assert sorted(r.path for r in [*ds.train, *ds.query, *ds.gallery]) == sorted(
        r.path for r in full.train
    )
    # seeded: the same seed the same people, a number works as well as a fraction
    same = load_dataset("market1501", root, validation=3, validation_seed=4)
    assert {r.pid for r in same.query} == held
    draws = [load_dataset("market1501", root, validation=3, validation_seed=s) for s in range(5)]
    assert len({frozenset(r.pid for r in d.query) for d in draws}) > 1
    assert "held out" in ds.notes["validation"]


def test_validation_errors(root):
    with pytest.raises(DatasetError, match="validation=9 holds out 9 of 10.*validation=0.2"):
        load_dataset("market1501", root, validation=9)
    with pytest.raises(DatasetError, match="it takes .*validation"):
        load_dataset("market1501", root, valdation=0.2)


def test_training_evaluates_on_the_validation_identities(tmp_path, root):
    cfg = tiny_cfg(root, None, "data.options.validation=0.3", "train.epochs=1")
    train(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert "rank1" in lines[-1]  # evaluated, on the 3 held-out identities' queries
    res = json.loads((tmp_path / "run/results.json").read_text())
    assert res["num_classes"] == 7
