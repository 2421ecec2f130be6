"""DG-Net's networks and losses: shapes, AdaIN parameter count, hand-computed losses, the
warm-up schedule, what the detached paths leave untouched, and a reconstruction that learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from genreid.core.config import load_config
from genreid.core.errors import ConfigError
from genreid.engine.tasks.dgnet import DGNetConfig, DGNetSteps, IterSchedule, Teacher
from genreid.models.dgnet import DGNetModelConfig, DGNetReID, build_dgnet
from genreid.models.dgnet.decoder import Decoder
from genreid.models.dgnet.discriminator import lsgan_d_loss, lsgan_g_loss, r1_penalty
from genreid.models.dgnet.losses import kl_to_teacher, l1, ramp, teacher_soft_labels
from genreid.models.reid import ModelConfig, build_model
from tests.fixtures import DGNET_SMALL

pytestmark = pytest.mark.usefixtures("one_thread")

K = 5
SMALL = [*DGNET_SMALL, "train.pairs=4"]


def small_cfg(*extra: str) -> DGNetConfig:
    return load_config(DGNetConfig, None, [*SMALL, *extra])


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four anchors, their positives, and four distinct labels (train.pairs=4)."""
    return images(4), images(4, 1), torch.tensor([0, 1, 2, 3])


def images(n: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth random images (upsampled noise), like normalised photos in range."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(n, 3, 8, 4, generator=g), size=(64, 32), mode="bilinear")


def test_shapes_of_every_module():
    cfg = small_cfg()
    nets = build_dgnet(cfg.model, K)
    x = images()
    app = nets.E_a(x)
    assert app.code.shape == (3, 64, 4, 1)  # resnet18 width 8: 64 channels, 4 stripes
    assert app.prim.shape == app.fine.shape == (3, K)
    f_prim, f_fine = nets.E_a.embeddings(x)
    assert f_prim.shape == f_fine.shape == (3, 16)
    s = nets.E_s(x)
    assert s.shape == (3, 32, 16, 8)  # 8 x gen_width channels at 1/4 size
    out = nets.G(app.code, s)
    assert out.shape == x.shape
    d = nets.D(x)
    assert [o.shape for o in d] == [(3, 1, 16, 8), (3, 1, 8, 4), (3, 1, 4, 2)]
    nets.eval()
    both = DGNetReID(nets.E_a, "both", 0.5)(x)
    assert both.shape == (3, 32) and both.shape[1] == DGNetReID(nets.E_a).feat_dim
    # each half L2-normalised, the fine half weighted by beta
    assert torch.allclose(both[:, :16].norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(both[:, 16:].norm(dim=1), torch.full((3,), 0.5), atol=1e-5)
    assert torch.equal(DGNetReID(nets.E_a, "prim")(x), nets.E_a.embeddings(x)[0])
    assert DGNetReID(nets.E_a, "fine")(x).shape == (3, 16)


def test_paper_sizes():
    """METHODS §7 at 256x128: code 2048 x 4 x 1, s 128 x 64 x 32, MLPs 2048-512-512-256."""
    cfg = load_config(DGNetConfig, "dgnet_paper", ["model.pretrained=null"])
    nets = build_dgnet(cfg.model, 751, load_pretrained=False)
    assert nets.E_a.code_dim == 2048 and nets.E_s.out_dim == 128
    mlp = nets.G.mlp_scale[0].net
    assert [(m.in_features, m.out_features) for m in mlp if isinstance(m, torch.nn.Linear)] == [
        (2048, 512),
        (512, 512),
        (512, 256),
    ]
    assert len(nets.G.mlp_scale) + len(nets.G.mlp_bias) == 8 and len(nets.D.nets) == 3
    assert nets.E_a.backbone.layer4[0].conv2.stride == (1, 1)  # last stride 1
    with torch.no_grad():
        s = nets.E_s(torch.zeros(1, 3, 256, 128))
    assert s.shape == (1, 128, 64, 32)


def test_adain_parameters_produced_equal_those_consumed():
    dec = Decoder(code_dim=12, channels=24, mlp_dim=10)
    adain_layers = [m for m in dec.modules() if getattr(m, "norm_kind", "") == "adain"]
    assert len(adain_layers) == 8
    consumed = sum(2 * m.channels for m in adain_layers)  # a scale and a bias per channel
    produced = sum(m.out_features for m in [*dec.mlp_scale, *dec.mlp_bias])
    assert consumed == produced == dec.num_adain_params == 8 * 2 * 24
    code = torch.randn(2, 12, 4, 1)
    assert dec.adain_params(code).shape == (2, consumed)
    assert dec(code, torch.randn(2, 24, 8, 4)).shape == (2, 3, 32, 16)


def test_adain_params_change_the_output():
    """G uses the appearance code: a different code gives a different image."""
    torch.manual_seed(0)
    dec = Decoder(code_dim=12, channels=8, mlp_dim=10)
    s = torch.randn(1, 8, 8, 4)
    a, b = dec(torch.randn(1, 12, 4, 1), s), dec(torch.randn(1, 12, 4, 1), s)
    assert (a - b).abs().max() > 1e-3


def test_kl_to_teacher_by_hand():
    # q = [1/2, 1/2, 0], p = uniform: KL = 2 * 1/2 * log(1/2 / (1/3)) = log 1.5
    q = torch.tensor([[0.5, 0.5, 0.0]])
    assert kl_to_teacher(torch.zeros(1, 3), q).item() == pytest.approx(math.log(1.5), abs=1e-6)
    assert kl_to_teacher(torch.log(q + 1e-30), q).item() == pytest.approx(0.0, abs=1e-6)


def test_primary_loss_is_kl_to_the_flip_averaged_teacher_softmax():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(3 * 4 * 2, K, generator=g)
    x = torch.randn(2, 3, 4, 2, generator=g)  # not mirror-symmetric

    def teacher(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1) @ W

    student = torch.randn(2, K, generator=g)
    loss = kl_to_teacher(student, teacher_soft_labels(teacher, x)).item()
    # by hand, in float64 numpy
    xs, Wn = x.double().numpy(), W.double().numpy()

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    q = (softmax(xs.reshape(2, -1) @ Wn) + softmax(xs[..., ::-1].reshape(2, -1) @ Wn)) / 2
    p = softmax(student.double().numpy())
    expected = np.mean(np.sum(q * np.log(q / p), axis=1))
    assert loss == pytest.approx(expected, rel=1e-5)
    # the plain (unflipped) softmax is a different target
    q_plain = softmax(xs.reshape(2, -1) @ Wn)
    assert abs(np.mean(np.sum(q_plain * np.log(q_plain / p), axis=1)) - expected) > 1e-3


def test_teacher_soft_labels_from_a_reid_model_are_mirror_invariant_and_resized():
    model = build_model(ModelConfig(arch="ide_tiny", width=4), K)
    teacher = Teacher(model, (32, 16))
    x = torch.randn(2, 3, 64, 32)
    q = teacher.soft_labels(x)
    assert q.shape == (2, K) and torch.allclose(q.sum(1), torch.ones(2))
    assert torch.allclose(q, teacher.soft_labels(x.flip(-1)), atol=1e-6)
    small = F.interpolate(x, size=(32, 16), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = model.head(model.backbone(small))
    assert torch.allclose(teacher.logits(x), logits, atol=1e-6)
    assert not any(p.requires_grad for p in model.parameters())


def test_lsgan_and_gradient_penalty_by_hand():
    ones, zeros = [torch.ones(2, 1, 3, 3)], [torch.zeros(2, 1, 3, 3)]
    assert lsgan_d_loss(zeros, ones).item() == 0.0
    assert lsgan_d_loss(ones, zeros).item() == 2.0
    assert lsgan_g_loss(ones).item() == 0.0 and lsgan_g_loss(zeros).item() == 1.0
    # D(x) = <w, x>: grad_x D = w, so the penalty is ||w||^2 for every image and scale
    w = torch.randn(3, 4, 2)
    x = torch.randn(5, 3, 4, 2, requires_grad=True)
    out = (x * w).sum(dim=(1, 2, 3))
    pen = r1_penalty([out, 2 * out], x)
    assert pen.item() == pytest.approx(5 * w.pow(2).sum().item(), rel=1e-5)  # 1 + 4 times
    assert r1_penalty([out], x, scale=1024.0).item() == pytest.approx(w.pow(2).sum().item())


def test_warm_up_of_lambda_prim_and_lambda_fine():
    assert [ramp(i, 10, 4) for i in (0, 9, 10, 11, 12, 13, 14, 1000)] == [
        0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0,
    ]  # fmt: skip
    assert ramp(10, 10, 0) == 1.0 and ramp(9, 10, 0) == 0.0
    steps = DGNetSteps(small_cfg("loss.start=30000", "loss.warmup=4000"), K, torch.device("cpu"))
    assert steps.weights(29999) == (0.0, 0.0)
    assert steps.weights(30999) == pytest.approx((0.5, 0.1))  # lambda_fine = 0.2 lambda_prim
    assert steps.weights(33999) == pytest.approx((2.0, 0.4))
    assert steps.weights(99999) == pytest.approx((2.0, 0.4))


def test_iteration_step_schedule():
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": 1.0}, {"params": [q], "lr": 10.0}])
    sched = IterSchedule(opt, [2, 4], 0.1)
    lrs = []
    for _ in range(5):
        sched.step()
        lrs += [g["lr"] for g in opt.param_groups]
    assert lrs == pytest.approx([1, 10, 0.1, 1, 0.1, 1, 0.01, 0.1, 0.01, 0.1])
    again = IterSchedule(opt, [2, 4], 0.1)
    again.load_state_dict({"iteration": 3})
    assert again.lr() == pytest.approx(0.1)


def test_iteration_cosine_schedule():
    """Half the lr at half of N iterations, 0 at N and after; resumes to the same value."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [p], "lr": 2.0}])
    sched = IterSchedule(opt, [1], 0.1, cosine_over=4)  # milestones ignored
    lrs = []
    for _ in range(5):
        sched.step()
        lrs.append(sched.lr())
    c = 1 + 2**-0.5  # 1 + cos(pi/4)
    assert lrs == pytest.approx([c, 1.0, 2 - c, 0.0, 0.0])
    again = IterSchedule(opt, [1], 0.1, cosine_over=4)
    again.load_state_dict({"iteration": 1})
    assert again.lr() == pytest.approx(c)


def test_appearance_optimizer_adam_and_sgd():
    """optim.ea.name picks E_a's optimiser; the heads get head_lr_mult x lr either way."""
    cfg = small_cfg("optim.ea.name=adam", "optim.ea.head_lr_mult=3", "optim.ea.lr=0.002")
    steps = DGNetSteps(cfg, K, torch.device("cpu"))
    assert isinstance(steps.opt_ea, torch.optim.Adam)
    assert [g["lr"] for g in steps.opt_ea.param_groups] == pytest.approx([0.002, 0.006])
    assert isinstance(DGNetSteps(small_cfg(), K, torch.device("cpu")).opt_ea, torch.optim.SGD)
    with pytest.raises(ConfigError, match="optim.ea.name"):
        small_cfg("optim.ea.name=adamw")


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def _all_zero(module: torch.nn.Module) -> bool:
    return all(g is None or not g.any() for g in _grads(module))


def test_discriminator_step_reaches_only_d():
    steps = DGNetSteps(small_cfg(), K, torch.device("cpu"))
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    steps.d_step(x, fwd.x_cross)
    for net in (steps.E_a, steps.E_s, steps.G):
        assert all(g is None for g in _grads(net))
    assert not _all_zero(steps.D)
    before = [g.clone() for g in _grads(steps.D)]
    steps.g_step(fwd, y)  # D is frozen in the joint step
    assert all(torch.equal(a, b) for a, b in zip(before, _grads(steps.D), strict=True))


@pytest.mark.parametrize("detach", [True, False])
def test_generation_losses_reach_e_a_only_without_the_detached_code(detach):
    only_generation = [
        "loss.id=0", "loss.id_cross=0", "loss.code_a=0", "loss.prim=0", "loss.fine=0",
        f"loss.detach_appearance={str(detach).lower()}",
    ]  # fmt: skip
    steps = DGNetSteps(small_cfg(*only_generation), K, torch.device("cpu"))
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    steps.g_step(fwd, y)
    assert _all_zero(steps.E_a) == detach  # img, code_s, adv: E_a only through the code
    assert not _all_zero(steps.G) and not _all_zero(steps.E_s)


def test_re_id_losses_on_generated_images_do_not_reach_g_or_e_s():
    """L_prim and L_fine train E_a on detached generated images (online feeding)."""
    zero_rest = ["loss.img=0", "loss.code_a=0", "loss.code_s=0", "loss.id=0", "loss.id_cross=0"]
    cfg = small_cfg(*zero_rest, "loss.adv=0", "loss.fine_real=0", "loss.start=0", "loss.warmup=0")
    teacher = Teacher(build_model(ModelConfig(arch="ide_tiny", width=4), K), (64, 32))
    steps = DGNetSteps(cfg, K, torch.device("cpu"), teacher=teacher)
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    values = steps.g_step(fwd, y)
    assert values["g/prim"] > 0 and values["g/fine"] > 0 and values["lambda_prim"] == 2.0
    assert _all_zero(steps.G) and _all_zero(steps.E_s)
    assert not _all_zero(steps.E_a.prim) and not _all_zero(steps.E_a.fine)


def test_fine_loss_uses_the_structure_donors_label():
    cfg = small_cfg("loss.start=0", "loss.warmup=0", "loss.prim=0")
    steps = DGNetSteps(cfg, K, torch.device("cpu"))
    steps.E_a.eval()  # no dropout: the same logits twice
    torch.nn.init.normal_(steps.E_a.fine.classifier.weight, std=1.0)  # distinct classes
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    with torch.no_grad():
        fine = steps.E_a(fwd.x_cross).fine
    values = steps.g_step(fwd, y)
    donors = y[[2, 3, 0, 1]]  # anchor i + P/2 gives the structure
    assert values["g/fine"] == pytest.approx(F.cross_entropy(fine, donors).item(), rel=1e-5)
    assert values["g/fine"] != pytest.approx(F.cross_entropy(fine, y).item(), rel=1e-3)


def test_self_reconstruction_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    nets = build_dgnet(small_cfg().model, K)
    params = [*nets.E_a.parameters(), *nets.E_s.parameters(), *nets.G.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    x = images(3)
    losses = []
    for _ in range(40):
        loss = l1(nets.G(nets.E_a(x).code, nets.E_s(x)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_model_config_checks_sizes_and_names():
    from genreid.core.errors import ConfigError

    with pytest.raises(ConfigError, match="multiples of 16"):
        small_cfg("data.height=60")
    with pytest.raises(ConfigError, match="is a ResNet"):
        load_config(DGNetConfig, None, ["model.backbone=densenet121"])
    with pytest.raises(ConfigError, match="generates its images online"):
        small_cfg("data.generated=/tmp/x")
    assert DGNetModelConfig().beta == 0.5 and DGNetModelConfig().feature == "both"


# ---------------------------------------------------------------- the released trainer's rules
ONLY = ["loss.img=0", "loss.code_a=0", "loss.code_s=0", "loss.id=0", "loss.id_cross=0",
        "loss.adv=0", "loss.prim=0", "loss.fine=0", "loss.erasing_p=0"]  # fmt: skip


def only(*terms: str) -> list[str]:
    """Every weight of Eq. 10 at 0 but ``terms`` (``key=value``)."""
    keys = {t.split("=")[0] for t in terms}
    return [o for o in ONLY if o.split("=")[0] not in keys] + list(terms)


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The released trainer's copy: deepcopy, eval mode, BN back in train mode, no grad."""
    import copy

    out = copy.deepcopy(module).eval().requires_grad_(False)
    for m in out.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.train()
    return out


def reference_grads(loss: torch.Tensor, *modules: torch.nn.Module) -> list[torch.Tensor]:
    """d loss / d parameters of ``modules`` (zeros where unused), the graph kept."""
    params = [p for m in modules for p in m.parameters()]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def step_grads(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [
        torch.zeros_like(p) if p.grad is None else p.grad for m in modules for p in m.parameters()
    ]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert any(t.abs().sum() > 0 for t in a)
    for s, t in zip(a, b, strict=True):
        assert torch.allclose(s, t, rtol=1e-4, atol=1e-7), (s - t).abs().max()


def test_frozen_call_by_hand():
    """Dropout off, BN on batch statistics, gradients to the input only, module untouched."""
    from genreid.models.dgnet.frozen import frozen_call

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout(0.9))
    net[1].eval()  # a mode of its own, restored afterwards
    x = torch.randn(5, 3, requires_grad=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = frozen_call(net, x)
    h = x @ net[0].weight.T + net[0].bias
    mu, var = h.mean(0), h.var(0, unbiased=False)
    by_hand = (h - mu) / torch.sqrt(var + 1e-5) * net[1].weight + net[1].bias
    assert torch.allclose(out, by_hand, atol=1e-5)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert [m.training for m in net] == [True, False, True]


@pytest.mark.parametrize("term", ["loss.id_cross=0.5", "loss.code_a=1"])
def test_cross_identity_losses_train_g_not_e_a(term):
    """L_id^c and L_code_a read x_cross through a frozen E_a: with the released detached code
    E_a gets no gradient and keeps its BN statistics, while G and E_s learn."""
    steps = DGNetSteps(
        small_cfg(*only(term), "loss.detach_appearance=true"), K, torch.device("cpu")
    )
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    buffers = {k: v.clone() for k, v in steps.E_a.named_buffers()}
    steps.g_step(fwd, y)
    assert _all_zero(steps.E_a)
    assert not _all_zero(steps.G) and not _all_zero(steps.E_s)
    assert all(torch.equal(v, dict(steps.E_a.named_buffers())[k]) for k, v in buffers.items())
    assert all(m.training for m in steps.E_a.modules())  # modes restored


def test_cross_identity_loss_reaches_e_a_only_through_its_code():
    """With the paper's live code L_id^c reaches E_a's backbone through G, never its heads."""
    steps = DGNetSteps(small_cfg(*only("loss.id_cross=0.5")), K, torch.device("cpu"))
    x, xp, y = batch()
    steps.g_step(steps.forward(x, xp, y, 0), y)
    assert _all_zero(steps.E_a.prim) and _all_zero(steps.E_a.fine)
    assert not _all_zero(steps.E_a.backbone)


def test_live_appearance_reader_trains_e_a_on_generated_images():
    """loss.live_appearance_reader=true (the ablation of the frozen reader): L_id^c is the
    live E_a's cross-entropy on x_cross, so its primary head learns from generated images
    and the gradients equal those of that loss computed by hand."""
    steps = DGNetSteps(
        small_cfg(*only("loss.id_cross=0.5"), "loss.live_appearance_reader=true"),
        K,
        torch.device("cpu"),
    )
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    torch.manual_seed(1)  # the same dropout masks in both passes
    ref_loss = F.cross_entropy(steps.E_a(fwd.x_cross).prim.float(), y)
    ref = reference_grads(0.5 * ref_loss, steps.E_a, steps.E_s, steps.G)
    torch.manual_seed(1)
    values = steps.g_step(fwd, y)
    assert values["g/id_cross"] == pytest.approx(ref_loss.item(), rel=1e-5)
    assert not _all_zero(steps.E_a.prim)
    assert_same(ref, step_grads(steps.E_a, steps.E_s, steps.G))


def test_code_a_is_l1_of_a_frozen_e_a_to_the_detached_code():
    """The gradients of L_code_a are those of |E_a'(G(a, s_j)) - a.detach()| with E_a' the
    released trainer's frozen copy (through G and, with the live code, into E_a via a)."""
    steps = DGNetSteps(small_cfg(*only("loss.code_a=1")), K, torch.device("cpu"))
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    ref_loss = l1(frozen_copy(steps.E_a)(fwd.x_cross).code, fwd.a.detach())
    ref = reference_grads(ref_loss, steps.E_a, steps.E_s, steps.G)
    values = steps.g_step(fwd, y)
    assert values["g/code_a"] == pytest.approx(ref_loss.item(), rel=1e-5)
    assert_same(ref, step_grads(steps.E_a, steps.E_s, steps.G))


def test_code_s_re_encodes_the_detached_image_with_the_live_e_s():
    """loss.encoder_again=1: L_code_s trains E_s alone, on the detached generated image."""
    cfg = small_cfg(*only("loss.code_s=1"), "loss.encoder_again=1")
    steps = DGNetSteps(cfg, K, torch.device("cpu"))
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    assert fwd.encoder_again
    target = fwd.s[[2, 3, 0, 1]].detach()
    ref = reference_grads(l1(steps.E_s(fwd.x_cross.detach()), target), steps.E_s)
    steps.g_step(fwd, y)
    assert _all_zero(steps.G) and _all_zero(steps.E_a)
    assert_same(ref, step_grads(steps.E_s))


def test_code_s_reads_the_live_image_with_a_frozen_e_s():
    """loss.encoder_again=0: a frozen E_s reads the live image; gradients reach G (and E_s
    only through the structure code G was given), the target is detached."""
    cfg = small_cfg(*only("loss.code_s=1"), "loss.encoder_again=0")
    steps = DGNetSteps(cfg, K, torch.device("cpu"))
    x, xp, y = batch()
    fwd = steps.forward(x, xp, y, 0)
    assert not fwd.encoder_again
    ref_loss = l1(frozen_copy(steps.E_s)(fwd.x_cross), fwd.s[[2, 3, 0, 1]].detach())
    ref = reference_grads(ref_loss, steps.E_s, steps.G)
    steps.g_step(fwd, y)
    assert not _all_zero(steps.G)
    assert_same(ref, step_grads(steps.E_s, steps.G))


def test_the_encoder_branch_is_drawn_per_iteration_from_the_run_seed():
    a = DGNetSteps(small_cfg(), K, torch.device("cpu"))
    b = DGNetSteps(small_cfg("seed=1"), K, torch.device("cpu"))
    x, xp, y = batch()
    with torch.no_grad():
        draws = [a.forward(x, xp, y, i).encoder_again for i in range(60)]
        again = [a.forward(x, xp, y, i).encoder_again for i in range(60)]
        other = [b.forward(x, xp, y, i).encoder_again for i in range(60)]
    assert draws == again and draws != other and 15 < sum(draws) < 45


def test_each_pair_of_anchors_is_swapped_both_ways():
    """x_cross[i] = G(a_i, s_{i + P/2}): anchors 0 and 2 (1 and 3) exchange codes."""
    from genreid.engine.tasks.dgnet import swap_partners

    assert swap_partners(4).tolist() == [2, 3, 0, 1] and swap_partners(2).tolist() == [1, 0]
    steps = DGNetSteps(small_cfg(), K, torch.device("cpu"))
    steps.nets.eval()
    x, xp, y = batch()
    with torch.no_grad():
        fwd = steps.forward(x, xp, y, 0)
        a, s = steps.E_a(x).code, steps.E_s(x)
        assert torch.allclose(fwd.x_cross[0], steps.G(a[:1], s[2:3])[0], atol=1e-5)
        assert torch.allclose(fwd.x_cross[2], steps.G(a[2:3], s[:1])[0], atol=1e-5)
    assert fwd.donor.tolist() == [2, 3, 0, 1]
    with pytest.raises(ConfigError, match="even"):
        small_cfg("train.pairs=3")


def test_fine_head_learns_the_real_anchors_labels_at_lambda_fine():
    """g/fine_real = CE(fine head(real anchors), y), weighted fine_real x lambda_fine (the
    released weight_B = teacher_w x B_w): 0 before loss.start, ramping with lambda_prim."""
    cfg = small_cfg(*only("loss.fine=0.4"), "loss.start=2", "loss.warmup=4")
    steps = DGNetSteps(cfg, K, torch.device("cpu"))
    steps.nets.eval()  # no dropout: the logits by hand are those of the step
    torch.nn.init.normal_(steps.E_a.fine.classifier.weight, std=1.0)
    x, xp, y = batch()
    assert "g/fine_real" not in steps.g_step(steps.forward(x, xp, y, 1), y)
    with torch.no_grad():
        by_hand = F.cross_entropy(steps.E_a(x).fine, y).item()
    values = steps.g_step(steps.forward(x, xp, y, 3), y)  # lambda_fine = 0.4 x 2/4
    assert values["g/fine_real"] == pytest.approx(by_hand, rel=1e-5)
    expected = 0.2 * (values["g/fine"] + values["g/fine_real"])
    assert values["loss/g"] == pytest.approx(expected, rel=1e-5)
    off = DGNetSteps(small_cfg(*only("loss.fine=0.4"), "loss.start=0", "loss.fine_real=0"),
                     K, torch.device("cpu"))  # fmt: skip
    assert "g/fine_real" not in off.g_step(off.forward(x, xp, y, 0), y)


def test_erasing_boxes_and_erase_by_hand():
    from genreid.data.transforms import NO_ERASE, erase_, erasing_boxes

    g = torch.Generator().manual_seed(0)
    boxes = erasing_boxes(50, (64, 32), 1.0, (0.02, 0.4), 0.3, g)
    for i, j, h, w in boxes:
        if (i, j, h, w) != NO_ERASE:
            assert 0.02 * 2048 - 64 <= h * w <= 0.4 * 2048 + 64
            assert 0 <= i <= 64 - h and 0 <= j <= 32 - w and 0.3 / 2 < h / w < 2 / 0.3
    assert sum(b != NO_ERASE for b in boxes) >= 45
    assert erasing_boxes(20, (64, 32), 0.0, g=g) == [NO_ERASE] * 20
    x = torch.ones(2, 3, 6, 4)
    erase_(x, [(1, 2, 3, 1), NO_ERASE])
    assert x[0, :, 1:4, 2].eq(0).all() and x[0].sum() == 3 * 24 - 3 * 3 and x[1].eq(1).all()


def test_identity_losses_see_erased_copies_the_generator_the_originals():
    """With loss.erasing_p=1 L_id^s is the cross-entropy of the erased copies (boxes drawn
    from the iteration's generator), the reconstruction that of the unerased images."""
    from genreid.data.transforms import erase_, erasing_boxes
    from genreid.engine.tasks.dgnet import iteration_generator

    steps = DGNetSteps(small_cfg("loss.erasing_p=1"), K, torch.device("cpu"))
    steps.nets.eval()
    x, xp, y = batch()
    with torch.no_grad():
        fwd = steps.forward(x, xp, y, 7)
        g = iteration_generator(0, 7, 1)  # run seed 0, iteration 7, erasing stream of rank 0
        boxes = erasing_boxes(8, (64, 32), 1.0, (0.02, 0.4), 0.3, g)
        erased = erase_(torch.cat([x, xp]), boxes)
        prim = steps.E_a(erased).prim
        by_hand = (F.cross_entropy(prim[:4], y) + F.cross_entropy(prim[4:], y)) / 2
        recon = l1(steps.G(steps.E_a(x).code, steps.E_s(x)), x)
    assert fwd.parts["id"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert fwd.parts["img1"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert not torch.equal(erased[:4], x)


def test_erasing_costs_two_e_a_passes_only_when_on():
    """Two more E_a passes (the erased anchors and positives) with loss.erasing_p > 0, none
    at 0 (L_id^s then reuses the passes that give G its codes)."""
    x, xp, y = batch()
    for p, passes in ((0.0, 2), (0.5, 4)):
        steps = DGNetSteps(small_cfg(f"loss.erasing_p={p}"), K, torch.device("cpu"))
        calls = []
        steps.E_a.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        steps.forward(x, xp, y, 0)
        assert len(calls) == passes, p


def test_erasing_is_a_function_of_seed_iteration_and_rank():
    """The boxes come from a generator seeded by (run seed, iteration, rank): the same again,
    other boxes at another iteration or rank, and torch's global RNG is not touched."""
    steps = DGNetSteps(small_cfg(), K, torch.device("cpu"))
    other_rank = DGNetSteps(small_cfg(), K, torch.device("cpu"), rank=1)
    x, xp, _ = batch()
    state = torch.get_rng_state()
    first = steps.erased(x, xp, 5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, steps.erased(x, xp, 5))
    assert not torch.equal(first, steps.erased(x, xp, 6))
    assert not torch.equal(first, other_rank.erased(x, xp, 5))
    assert torch.equal(x, images(4))  # the originals are left as they were


def test_erasing_belongs_to_the_loss_section():
    with pytest.raises(ConfigError, match="loss.erasing_p"):
        small_cfg("data.erasing_p=0.5")
    with pytest.raises(ConfigError, match="loss.erasing_p"):
        small_cfg("loss.erasing_p=1.5")
    with pytest.raises(ConfigError, match="loss.encoder_again"):
        small_cfg("loss.encoder_again=-0.1")
    cfg = small_cfg()
    assert (cfg.loss.erasing_p, cfg.loss.encoder_again, cfg.loss.fine_real) == (0.5, 0.5, 1.0)
    assert cfg.loss.detach_appearance is False
