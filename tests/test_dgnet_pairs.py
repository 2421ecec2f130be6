"""DG-Net's positive-pair sampler: same identity in a pair, distinct identities in a batch,
deterministic epochs, rank shares, resume offsets."""

from __future__ import annotations

from collections import Counter

import pytest

from genreid.core.errors import ConfigError
from genreid.data.pairs import PairBatchSampler

# 6 identities with 1..6 images (identity 0 has a single image), plus 2 unlabelled images
LABELS = [y for y in range(6) for _ in range(y + 1)] + [-1, -1]


def anchors_positives(batch):
    half = len(batch) // 2
    return [i for i, _ in batch[:half]], [i for i, _ in batch[half:]]


def test_pairs_share_an_identity_and_batches_do_not():
    s = PairBatchSampler(LABELS, pairs=4, length=30, seed=1)
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s) == 30
    for batch in batches:
        assert len(batch) == 8
        anchors, positives = anchors_positives(batch)
        assert [LABELS[a] for a in anchors] == [LABELS[p] for p in positives]
        assert len({LABELS[a] for a in anchors}) == 4  # no identity twice in a batch
        assert all(LABELS[a] >= 0 for a in anchors)
        for a, p in zip(anchors, positives, strict=True):
            assert (a == p) == (LABELS[a] == 0)  # itself only for the one-image identity
        seeds = [seed for _, seed in batch]
        assert len(set(seeds)) == len(seeds)  # every item its own augmentation seed


def test_every_labelled_image_is_an_anchor_about_equally_often():
    s = PairBatchSampler(LABELS, pairs=3, length=140, seed=0)
    counts = Counter(a for batch in s.global_batches() for a, _ in batch)
    labelled = [i for i, y in enumerate(LABELS) if y >= 0]
    assert set(counts) == set(labelled)  # unlabelled images never
    # 420 anchors over 21 images: 20 each if uniform; deferrals shift only a few
    assert max(counts.values()) - min(counts.values()) <= 4


def test_epochs_are_deterministic_and_differ():
    a = PairBatchSampler(LABELS, pairs=2, length=5, seed=3)
    b = PairBatchSampler(LABELS, pairs=2, length=5, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_ranks_split_each_global_batch_and_resume_skips_batches():
    full = PairBatchSampler(LABELS, pairs=4, length=6, seed=0)
    full.set_epoch(1)
    whole = list(full)
    ranks = [
        PairBatchSampler(LABELS, pairs=2, length=6, seed=0, rank=r, world_size=2) for r in (0, 1)
    ]
    for r in ranks:
        r.set_epoch(1)
    for k, (b0, b1) in enumerate(zip(*ranks, strict=True)):
        a0, p0 = anchors_positives(b0)
        a1, p1 = anchors_positives(b1)
        a, p = anchors_positives(whole[k])
        assert a0 == a[0::2] and a1 == a[1::2] and p0 == p[0::2] and p1 == p[1::2]
    full.set_epoch(1, start_batch=4)
    assert list(full) == whole[4:]


def test_too_few_identities_is_an_error():
    with pytest.raises(ConfigError, match="lower train.pairs"):
        PairBatchSampler(LABELS, pairs=4, length=2, world_size=2)
