"""Label strategies: hand-computed targets, the center update, the loss on a fixed batch."""

from __future__ import annotations

import math

import pytest
import torch

from genreid.core.config import from_dict
from genreid.core.errors import ConfigError
from genreid.data.records import ImageRecord, Role
from genreid.labels import (
    STRATEGIES,
    LabelBatch,
    LabelsConfig,
    TrainingSet,
    build_strategy,
    soft_cross_entropy,
)
from genreid.labels.center import CenterLoss, CenterWeight
from genreid.labels.mprl import SMpRL, rank_targets, write_smprl_targets
from genreid.labels.slsr import SLSR


def batch(logits, labels, generated, features=None, clusters=None, epoch=0, index=None):
    logits = torch.as_tensor(logits, dtype=torch.float32)
    B = logits.shape[0]
    return LabelBatch(
        logits=logits,
        features=torch.randn(B, 4) if features is None else torch.as_tensor(features).float(),
        labels=torch.as_tensor(labels),
        generated=torch.as_tensor(generated),
        clusters=torch.full((B,), -1) if clusters is None else torch.as_tensor(clusters),
        epoch=epoch,
        index=None if index is None else torch.as_tensor(index),
    )


def test_unknown_strategy_lists_known():
    with pytest.raises(ValueError, match="Did you mean .lsro.*fapl_dist"):
        build_strategy("lsrox", 3)


def test_loss_divides_by_used_images():
    logits = torch.zeros(3, 2)
    q = torch.tensor([[1.0, 0], [1.0, 0], [0.5, 0.5]])
    w = torch.tensor([1.0, 0.1, 0.0])
    assert soft_cross_entropy(logits, q, w).item() == pytest.approx(1.1 * math.log(2) / 2)
    assert soft_cross_entropy(logits, q, torch.zeros(3)).item() == 0.0


def test_lsr_true_class():
    s = build_strategy("lsr", 4)
    t = s(batch(torch.zeros(1, 4), [2], [False]))
    assert t.q[0, 2].item() == pytest.approx(0.9 + 0.1 / 4)
    assert t.q[0, 0].item() == pytest.approx(0.1 / 4)


def test_baseline_ignores_generated_and_real_smoothing():
    s = build_strategy(LabelsConfig(strategy="baseline", real_smoothing=0.3), 3)
    t = s(batch(torch.zeros(2, 3), [1, -1], [False, True]))
    assert t.weight.tolist() == [1.0, 0.0]
    assert t.q[0].tolist() == pytest.approx([0.1, 0.8, 0.1])


def test_lsro_uniform():
    t = build_strategy("lsro", 4)(batch(torch.randn(2, 4), [0, -1], [False, True]))
    assert t.q[1].tolist() == [0.25] * 4 and t.weight.tolist() == [1.0, 1.0]
    assert t.q[0].tolist() == [1, 0, 0, 0]


def test_all_in_one_targets_class_k():
    s = build_strategy("all_in_one", 3)
    assert s.num_outputs == 4
    t = s(batch(torch.randn(2, 4), [1, -1], [False, True]))
    assert t.q[1].tolist() == [0, 0, 0, 1] and t.q[0].tolist() == [0, 1, 0, 0]


def test_all_in_one_smooths_real_images_over_identities_only():
    s = build_strategy(LabelsConfig(strategy="all_in_one", real_smoothing=0.2), 4)
    t = s(batch(torch.randn(2, 5), [1, -1], [False, True]))
    # eps/K = 0.2/4 = 0.05 on each identity, 1 - 0.2 + 0.05 = 0.85 on the true one, 0 on class K
    assert t.q[0].tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05, 0.0])
    assert t.q[1].tolist() == [0, 0, 0, 0, 1]


def test_pseudo_label_start_epoch_and_weight():
    s = build_strategy("pseudo_label", 3, epochs=10)
    assert s.gen_start_epoch == 4  # auto: round(0.4 * 10)
    b = batch([[0.0, 0.0, 0.0], [0.1, 2.0, 0.3]], [0, -1], [False, True], epoch=3)
    t = s(b)
    assert t.weight.tolist() == [1.0, 0.0]  # ignored before gen_start_epoch
    b.epoch = 4
    t = s(b)
    assert t.q[1].tolist() == [0, 1, 0] and t.weight[1].item() == pytest.approx(0.1)
    assert (
        build_strategy(LabelsConfig(strategy="pseudo_label", gen_start_epoch=0), 3).gen_start_epoch
        == 0
    )
    assert build_strategy("dmprl2", 3, epochs=50).gen_start_epoch == 20
    assert build_strategy("dmprl1", 3, epochs=50).gen_start_epoch == 0


def test_mprl_rank_rule():
    q = rank_targets(torch.tensor([[0.7, 0.1, 0.2]]))
    assert q[0].tolist() == pytest.approx([3 / 6, 1 / 6, 2 / 6])
    s = build_strategy("dmprl1", 3)
    t = s(batch(torch.log(torch.tensor([[0.7, 0.1, 0.2]])), [-1], [True]))
    assert t.q[0].tolist() == pytest.approx([0.5, 1 / 6, 1 / 3])
    assert build_strategy("dmprl2", 3).gen_weight == pytest.approx(0.1)


def test_smprl_fixed_targets(tmp_path):
    recs = [
        ImageRecord(str(tmp_path / "r.jpg"), 5, 1, Role.TRAIN),
        ImageRecord(str(tmp_path / "g.jpg"), -1, -1, Role.TRAIN, generated=True),
    ]
    fixed = torch.tensor([[1 / 6, 3 / 6, 2 / 6]])
    f = write_smprl_targets(tmp_path / "t.npz", [recs[1].path], fixed)
    s = build_strategy(LabelsConfig("smprl", SMpRL.Options(smprl_targets=str(f))), 3)
    s.prepare(TrainingSet(recs, {5: 0}))
    t = s(batch(torch.randn(2, 3), [0, -1], [False, True], index=[0, 1]))
    assert t.q[1].tolist() == pytest.approx(fixed[0].tolist())
    with pytest.raises(ValueError, match="smprl_from"):
        build_strategy("smprl", 3).prepare(TrainingSet(recs, {5: 0}))


def test_slsr_sparse_uniform_under_both_identity_rules(tmp_path):
    recs = [
        ImageRecord(str(tmp_path / f"{pid}_{i}.jpg"), pid, 1, Role.TRAIN)
        for pid in (10, 20, 30, 40)
        for i in range(3)
    ]
    recs.append(ImageRecord(str(tmp_path / "g.jpg"), -1, -1, Role.TRAIN, True, cluster=1))
    # cluster 0: 10 x3, 20 x2, 30 x1; cluster 1: 20 x1, 30 x2, 40 x3
    rows = ["path,cluster", "10_0.jpg,0", "10_1.jpg,0", "10_2.jpg,0", "20_0.jpg,0",
            "20_1.jpg,0", "20_2.jpg,1", "30_0.jpg,0", "30_1.jpg,1", "30_2.jpg,1",
            f"{tmp_path / '40_0.jpg'},1", "40_1.jpg,1", "40_2.jpg,1"]  # fmt: skip
    (tmp_path / "clusters.csv").write_text("\n".join(rows) + "\n")
    labels = {10: 0, 20: 1, 30: 2, 40: 3}

    def targets(rule):
        cfg = LabelsConfig("slsr", SLSR.Options(str(tmp_path / "clusters.csv"), rule))
        s = build_strategy(cfg, 4)
        s.prepare(TrainingSet(recs, labels))
        t = s(batch(torch.randn(2, 4), [-1, -1], [True, True], clusters=[0, 1]))
        return t.q[0].tolist(), t.q[1].tolist()

    # majority (default): 10, 20 -> cluster 0; 30, 40 -> cluster 1 (disjoint, K/k each)
    assert LabelsConfig("slsr").options.cluster_ids == "majority"
    q0, q1 = targets("majority")
    assert q0 == pytest.approx([0.5, 0.5, 0, 0]) and q1 == pytest.approx([0, 0, 0.5, 0.5])
    # any: every identity with an image in the cluster (overlapping sets)
    q0, q1 = targets("any")
    assert q0 == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])
    assert q1 == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3])


def test_slsr_majority_refuses_a_cluster_without_identities(tmp_path):
    recs = [ImageRecord(str(tmp_path / f"{i}.jpg"), 1, 1, Role.TRAIN) for i in range(3)]
    rows = ["path,cluster", "0.jpg,0", "1.jpg,0", "2.jpg,1"]  # identity 1 is in cluster 0
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    s = build_strategy(LabelsConfig("slsr", SLSR.Options(str(tmp_path / "c.csv"))), 1)
    with pytest.raises(ValueError, match=r"cluster\(s\) \[1\].*cluster_ids=any"):
        s.prepare(TrainingSet(recs, {1: 0}))


def test_center_update_rule_and_loss():
    c = CenterLoss(3, 2, alpha=0.5)
    c.centers[1] = torch.tensor([1.0, 1.0])
    c.updated[1] = True
    x = torch.tensor([[3.0, 1.0], [1.0, 5.0], [9.0, 9.0], [2.0, 0.0]])
    y = torch.tensor([1, 1, 0, 2])
    real = torch.tensor([True, True, True, False])
    # class 0's center was never updated: no center yet, so its image adds nothing (not 162)
    assert c.loss(x, y, real).item() == pytest.approx(0.5 * (4 + 16))
    c.updated[0] = True
    assert c.loss(x, y, real).item() == pytest.approx(0.5 * (4 + 16 + 162))
    c.updated[0] = False
    c.update(x, y, real)
    # class 1: delta = ((1-3)+(1-1), (1-1)+(1-5)) / 3 = (-2/3, -4/3); c -= 0.5 * delta
    assert c.centers[1].tolist() == pytest.approx([1 + 1 / 3, 1 + 2 / 3])
    # class 0: delta = (0-9, 0-9)/2; c = 0 + 0.5 * 4.5
    assert c.centers[0].tolist() == pytest.approx([2.25, 2.25])
    assert c.centers[2].tolist() == [0.0, 0.0]  # generated images never move centers
    assert c.updated.tolist() == [True, True, False]


def test_fapl_targets_by_hand():
    for name in ("fapl_onehot", "fapl_dist"):
        s = build_strategy(name, 3, feat_dim=2)
        s.center.centers[:] = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
        s.center.updated[:] = torch.tensor([True, True, False])
        f = torch.tensor([[1.0, 0.5], [0.0, -1.0]])
        t = s(batch(torch.zeros(2, 3), [-1, -1], [True, True], features=f))
        cos = torch.tensor([[2 / 5**0.5, 1 / 5**0.5, 0.0], [0.0, -1.0, 0.0]])
        if name == "fapl_onehot":
            assert t.q[0].tolist() == [1, 0, 0]
            assert t.q[1].argmax().item() in (0, 2) and t.q[1].sum().item() == 1.0
        else:
            torch.testing.assert_close(t.q, torch.softmax(cos, 1))
        assert s.center.cosine(f)[:, 2].tolist() == [0.0, 0.0]  # never-updated center


def test_fapl_generated_weight_zero_before_any_center_update():
    f = torch.tensor([[1.0, 0.5], [3.0, -1.0], [0.2, 0.4]])
    for name in ("fapl_onehot", "fapl_dist"):
        s = build_strategy(name, 3, feat_dim=2)
        b = batch(torch.zeros(3, 3), [1, -1, -1], [False, True, True], features=f)
        t = s(b)
        assert t.weight.tolist() == [1.0, 0.0, 0.0]  # all centers 0: nothing to label with
        # the loss is then the real image's alone: -log(1/3), n = 1
        loss = soft_cross_entropy(b.logits, t.q, t.weight)
        assert loss.item() == pytest.approx(math.log(3))
        s.after_step(b)  # the real image moves center 1
        assert s.center.updated.tolist() == [False, True, False]
        assert s(b).weight.tolist() == [1.0, 1.0, 1.0]


def test_fapl_onehot_argmax():
    s = build_strategy("fapl_onehot", 2, feat_dim=2)
    s.center.centers[:] = torch.tensor([[1.0, 0.2], [0.0, 1.0]])
    s.center.updated[:] = True
    t = s(batch(torch.zeros(1, 2), [-1], [True], features=[[0.1, 1.0]]))
    assert t.q[0].tolist() == [0, 1]
    assert s.state_dict()["center.centers"].shape == (2, 2)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_loss_decreases_on_fixed_batch(name, tmp_path):
    torch.manual_seed(0)
    K, D = 4, 8
    opts = LabelsConfig(strategy=name)
    if name == "smprl":  # fixed rank targets of the two generated images (indices 6, 7)
        recs = [ImageRecord(str(tmp_path / f"r{i}.jpg"), i % 4, 1, Role.TRAIN) for i in range(6)]
        recs += [
            ImageRecord(str(tmp_path / f"g{i}.jpg"), -1, -1, Role.TRAIN, generated=True)
            for i in range(2)
        ]
        fixed = torch.tensor([[4.0, 3, 2, 1], [1, 2, 3, 4]]) / 10
        path = write_smprl_targets(tmp_path / "t.npz", [r.path for r in recs[6:]], fixed)
        opts = LabelsConfig(strategy=name, options=SMpRL.Options(smprl_targets=str(path)))
    if name.startswith("fapl"):  # a literal lambda: an auto one changes while it calibrates
        opts.center_lambda = 1e-3
    s = build_strategy(opts, K, feat_dim=D, epochs=1)
    if name == "smprl":
        s.prepare(TrainingSet(recs, {pid: pid for pid in range(4)}))
    if name == "slsr":  # cluster 0 holds identities 0 and 1, cluster 1 identities 2 and 3
        s.set_clusters({0: {0, 1}, 1: {2, 3}})
    net = torch.nn.Sequential(torch.nn.Linear(6, D), torch.nn.ReLU())
    fc = torch.nn.Linear(D, s.num_outputs)
    opt = torch.optim.SGD([*net.parameters(), *fc.parameters()], lr=0.1)
    x = torch.randn(8, 6)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, -1, -1])
    gen = labels < 0
    losses = []
    for _ in range(15):
        f = net(x)
        logits = fc(f)
        clusters = torch.tensor([-1] * 6 + [0, 1])
        b = LabelBatch(logits, f, labels, gen, clusters, epoch=0, index=torch.arange(8))
        t = s(b)
        loss = soft_cross_entropy(logits, t.q, t.weight)
        if t.aux_loss is not None:
            loss = loss + t.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        s.after_step(b)
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def _hand_softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


CENTERS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
GEN_FEATURES = [[0.1, 1.0], [1.0, 0.2]]
# gen A logits [0.2, 2.0, 0.5]: ascending ranks class0 1, class2 2, class1 3 -> [1, 3, 2] / 6
# gen B logits [3.0, 1.0, 2.0]: class1 1, class2 2, class0 3 -> [3, 1, 2] / 6
RANKS = [[1 / 6, 3 / 6, 2 / 6], [3 / 6, 1 / 6, 2 / 6]]
HAND = {  # strategy -> (q of gen A, q of gen B, generated weight); real rows are one-hot
    "baseline": (None, None, 0.0),
    "lsr": (None, None, 0.0),
    "lsro": ([1 / 3] * 3, [1 / 3] * 3, 1.0),
    "all_in_one": ([0, 0, 0, 1], [0, 0, 0, 1], 1.0),
    "pseudo_label": ([0, 1, 0], [1, 0, 0], 0.1),
    "smprl": ([0.5, 0.25, 0.25], [0.1, 0.2, 0.7], 1.0),
    "dmprl1": (RANKS[0], RANKS[1], 1.0),
    "dmprl2": (RANKS[0], RANKS[1], 0.1),
    "slsr": ([0.5, 0.5, 0], [0, 0.5, 0.5], 1.0),
    "fapl_onehot": ([0, 1, 0], [1, 0, 0], 1.0),
    "fapl_dist": tuple(_hand_softmax([_cos(f, c) for c in CENTERS]) for f in GEN_FEATURES) + (1.0,),
}


@pytest.mark.parametrize("name", list(HAND))
def test_every_strategy_gives_the_hand_computed_targets(name, tmp_path):
    """One fixed batch (2 real, 2 generated images); q and weights computed by hand above."""
    assert set(HAND) == set(STRATEGIES.names())
    K = 3
    out = K + 1 if name == "all_in_one" else K
    logits = [[1.0, 0, 0], [0, 0, 1.0], [0.2, 2.0, 0.5], [3.0, 1.0, 2.0]]
    logits = [row + [0.0] * (out - K) for row in logits]
    recs = [ImageRecord(str(tmp_path / f"{i}.jpg"), i, 1, Role.TRAIN) for i in range(2)]
    recs += [ImageRecord(str(tmp_path / f"g{i}.jpg"), -1, -1, Role.TRAIN, True, i) for i in (0, 1)]
    cfg = LabelsConfig(strategy=name, gen_start_epoch=0)
    if name == "smprl":
        q = torch.tensor([HAND["smprl"][0], HAND["smprl"][1]])
        cfg.options.smprl_targets = str(
            write_smprl_targets(tmp_path / "t.npz", [recs[2].path, recs[3].path], q)
        )
    s = build_strategy(cfg, K, feat_dim=2)
    if name == "smprl":
        s.prepare(TrainingSet(recs, {0: 0, 1: 2}))
    if name == "slsr":
        s.set_clusters({0: {0, 1}, 1: {1, 2}})
    if name.startswith("fapl"):
        s.center.centers.copy_(torch.tensor(CENTERS))
        s.center.updated[:] = True
    feats = [[1.0, 0.0], [0.0, 1.0], *GEN_FEATURES]
    t = s(batch(logits, [0, 2, -1, -1], [False, False, True, True], feats, [-1, -1, 0, 1],
                index=[0, 1, 2, 3]))  # fmt: skip
    eps = 0.1 if name == "lsr" else 0.0
    real = [[1 - eps + eps / K, eps / K, eps / K], [eps / K, eps / K, 1 - eps + eps / K]]
    real = [row + [0.0] * (out - K) for row in real]
    qa, qb, w = HAND[name]
    assert t.q[:2].tolist() == [pytest.approx(r) for r in real]
    assert t.weight.tolist() == pytest.approx([1.0, 1.0, w, w])
    if w > 0:
        assert t.q[2:].tolist() == [pytest.approx(qa), pytest.approx(qb)]


def test_center_weight_auto_matches_the_ratio_then_fixes_lambda():
    """auto: every step of the calibration epochs uses lambda_t = r * L_S / L_C (its ratio is
    exactly r), steps without a center term do nothing, and after the last calibration epoch
    lambda = r * sum L_S / sum L_C over that epoch's steps only, fixed from then on."""
    w = CenterWeight(None, ratio=0.5, epochs=2)
    assert float(w(torch.tensor(0.0), torch.tensor(3.0), epoch=0)) == 0.0  # no center yet
    assert float(w(torch.tensor(8.0), torch.tensor(1.0), epoch=0)) == pytest.approx(0.5 * 1.0)
    w.end_epoch(0)
    assert w.calibrating and float(w.sums.sum()) == 0.0  # epoch 0 is not measured
    assert float(w(torch.tensor(4.0), torch.tensor(2.0), epoch=1)) == pytest.approx(0.5 * 2.0)
    assert float(w(torch.tensor(1.0), torch.tensor(1.0), epoch=1)) == pytest.approx(0.5 * 1.0)
    w.end_epoch(1)
    assert not w.calibrating
    assert float(w.value) == pytest.approx(0.5 * 3.0 / 5.0)  # epoch 1's sums: L_S 3, L_C 5
    assert float(w(torch.tensor(10.0))) == pytest.approx(10 * 0.3)  # fixed from now on
    with pytest.raises(ValueError, match="needs L_S"):
        CenterWeight(None)(torch.tensor(1.0))
    literal = CenterWeight(1e-4)
    assert not literal.calibrating and float(literal(torch.tensor(2.0))) == pytest.approx(2e-4)


def test_fapl_defaults_to_auto_lambda_and_literal_lambda_stays_available():
    s = build_strategy("fapl_dist", 3, feat_dim=2)
    assert s.center_lambda == "auto" and s.center_weight.auto
    lit = build_strategy(LabelsConfig(strategy="fapl_onehot", center_lambda=1e-4), 3, feat_dim=2)
    assert not lit.center_weight.auto and float(lit.center_weight.value) == pytest.approx(1e-4)
    assert build_strategy("baseline", 3, feat_dim=2).center is None  # no center term by default
    with pytest.raises(ConfigError, match="center_lambda"):
        from_dict(LabelsConfig, {"center_lambda": "often"})
    with pytest.raises(ConfigError, match="center_ratio"):
        LabelsConfig(strategy="fapl_dist", center_ratio=0).check()


def test_epoch_centers_are_the_last_epochs_class_means():
    """center_update=epoch: the per-step rule in the first epoch only; then at every epoch's
    end each seen class's center is the mean of its labeled features of that epoch."""
    c = CenterLoss(3, 2, alpha=0.5, update="epoch")
    real = torch.tensor([True, True, False])
    c.update(torch.tensor([[2.0, 0.0], [0.0, 4.0], [9.0, 9.0]]), torch.tensor([0, 1, 0]), real)
    assert c.centers[0].tolist() == pytest.approx([0.5, 0.0])  # first epoch: per-step rule
    c.update(torch.tensor([[4.0, 2.0], [5.0, 5.0], [9.0, 9.0]]), torch.tensor([0, 0, 0]), real)
    c.end_epoch()
    assert c.centers[0].tolist() == pytest.approx([11 / 3, 7 / 3])  # (2,0), (4,2), (5,5)
    assert c.centers[1].tolist() == pytest.approx([0.0, 4.0])
    assert c.updated.tolist() == [True, True, False]
    c.update(torch.tensor([[1.0, 1.0], [3.0, 3.0], [0.0, 0.0]]), torch.tensor([1, 1, 2]), real)
    assert c.centers[1].tolist() == pytest.approx([0.0, 4.0])  # later epochs: no step moves
    c.end_epoch()
    assert c.centers[1].tolist() == pytest.approx([2.0, 2.0])
    assert c.centers[0].tolist() == pytest.approx([11 / 3, 7 / 3])  # unseen: kept
    assert float(c.epoch_counts.sum()) == 0.0


def test_auto_lambda_matches_the_labeled_images_cross_entropy_not_the_generated():
    """While it calibrates, lambda_t * L_C = r * (the labeled images' share of L_S): FAPL-d's
    generated images (near-uniform soft targets, cross-entropy near ln K) do not count, so a
    ratio means the same lambda for the center row and the FAPL rows."""
    torch.manual_seed(0)
    s = build_strategy(LabelsConfig(strategy="fapl_dist", center_ratio=0.5), 3, feat_dim=4)
    s.center.centers.copy_(torch.randn(3, 4))
    s.center.updated[:] = True
    labels = torch.tensor([0, 1, -1, -1, 2, -1])
    logits = torch.randn(6, 3) * 3
    b = LabelBatch(logits, torch.rand(6, 4), labels, labels < 0, torch.full((6,), -1), 0)
    t = s(b)
    per = -(t.q * torch.log_softmax(logits, 1)).sum(1)
    labeled = float(per[labels >= 0].sum() / 6)
    assert float(t.aux_loss) == pytest.approx(0.5 * labeled, rel=1e-5)
    whole = float(soft_cross_entropy(logits, t.q, t.weight))
    assert abs(0.5 * whole - float(t.aux_loss)) > 0.05  # not the whole L_S
