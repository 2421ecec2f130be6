"""train.precision and train.compile: what auto resolves to, the old train.amp key, and a run
on the CPU fast path (bf16 autocast, compiled modules) that checkpoints the same keys."""

from __future__ import annotations

import pytest
import torch

import genreid.engine.fastpath as fastpath
from genreid.core.config import load_config
from genreid.core.errors import ConfigError
from genreid.engine.fastpath import (
    CpuChoice,
    resolve_channels_last,
    resolve_compile,
    resolve_fused,
    resolve_precision,
    use_fused,
)
from genreid.engine.tasks.reid import ReIDTrainConfig, train
from tests.test_train_engine import make_data, tiny_cfg

CPU = torch.device("cpu")


def test_explicit_precisions_and_the_fp16_refusal_on_a_cpu():
    assert resolve_precision("fp32", CPU, "reid") is None
    assert resolve_precision("bf16", CPU, "reid") is torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 autocast is for CUDA"):
        load_config(ReIDTrainConfig, "tiny", ["train.precision=fp16", "train.device=cpu"])


def test_auto_is_the_tasks_measured_choice_and_fp32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(fastpath, "CPU_AUTO", {"reid": CpuChoice("bf16", True, True)})
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU, "reid") is torch.bfloat16
    assert resolve_precision("auto", CPU, "gan") is None  # no entry: fp32
    assert resolve_compile("auto", CPU, "reid") and not resolve_compile("auto", CPU, "dgnet")
    assert not resolve_compile(False, CPU, "reid") and resolve_compile(True, CPU, "gan")
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", CPU, "reid") is None  # falls back where the CPU lacks it
    assert resolve_precision("bf16", CPU, "reid") is torch.bfloat16  # asked for: honoured
    # channels_last only with bf16 (fp32 stays the contiguous reference path)
    assert resolve_channels_last("auto", CPU, "reid", torch.bfloat16)
    assert not resolve_channels_last("auto", CPU, "reid", None)
    assert not resolve_channels_last("auto", CPU, "gan", torch.bfloat16)
    assert resolve_channels_last(True, CPU, "gan", None)


def test_the_shipped_auto_is_bf16_channels_last_for_reid_and_gans_fp32_for_dgnet(monkeypatch):
    want = ("bf16", False, True, False)  # precision, compile, channels_last, fused
    assert {"reid": want, "gan": want} == fastpath.CPU_AUTO
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", CPU, "reid") is torch.bfloat16
    assert resolve_precision("auto", CPU, "dgnet") is None
    assert not resolve_compile("auto", CPU, "reid")
    cuda = torch.device("cuda")  # the GANs' GPU figures are fp32: auto stays there
    assert resolve_precision("auto", cuda, "gan") is None


def test_the_old_amp_key_reads_as_precision():
    old = load_config(ReIDTrainConfig, "tiny", ["train.amp=off"])
    assert old.train.precision_mode == "fp32"
    assert load_config(ReIDTrainConfig, "tiny", ["train.amp=bf16"]).train.precision_mode == "bf16"
    assert load_config(ReIDTrainConfig, "tiny").train.precision_mode == "auto"
    with pytest.raises(ConfigError, match="old name of train.precision"):
        load_config(ReIDTrainConfig, "tiny", ["train.amp=off", "train.precision=bf16"])
    with pytest.raises(ConfigError, match="train.compile"):
        load_config(ReIDTrainConfig, "tiny", ["train.compile=sometimes"])


def test_bf16_on_a_cpu_refuses_inputs_narrow_enough_for_torchs_nan_convolution():
    """torch 2.14's CPU bf16 conv2d (3x3, stride 2, padding 1) returns NaN weight gradients at
    random where the last stage's maps are one pixel wide: a ResNet below input width 48."""
    base = ["train.precision=bf16", "train.device=cpu"]
    for narrow in (16, 32):  # 32: NaN losses on an Intel Xeon with AMX (engine/fastpath.py)
        with pytest.raises(ConfigError, match="data.width=48 or more"):
            load_config(ReIDTrainConfig, "tiny", [*base, f"data.width={narrow}", "data.height=64"])
    load_config(ReIDTrainConfig, "tiny", [*base, "data.width=48", "data.height=64"])
    load_config(ReIDTrainConfig, "tiny", ["train.precision=fp32", "data.width=16"])


@pytest.mark.parametrize(
    "fast",
    [
        ("train.precision=bf16", "train.channels_last=true"),
        ("train.precision=bf16", "train.compile=true", "train.channels_last=false"),
    ],
)
def test_bf16_autocast_and_compile_train_and_checkpoint_like_fp32(tmp_path, fast):
    """Same checkpoint keys and dtypes (fp32 master weights) as the reference path, finite
    weights, and weights that differ from fp32's: the fast path did run. 64x48 images: at
    64x32 the last stage is one pixel wide, where bf16 goes NaN at random (test above)."""
    root, _ = make_data(tmp_path, n_gen=0)
    size = ("train.epochs=1", "data.height=64", "data.width=48")
    ref = train(tiny_cfg(root, None, *size, "train.precision=fp32"), tmp_path / "a")
    fast_run = train(tiny_cfg(root, None, *size, *fast), tmp_path / "b")
    assert ref["status"] == fast_run["status"] == "done"
    a = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)["modules"]["model"]
    b = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)["modules"]["model"]
    assert a.keys() == b.keys() and not any("_orig_mod" in k for k in b)
    assert all(a[k].dtype == b[k].dtype for k in a)
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert all(torch.isfinite(v).all() for v in b.values() if v.is_floating_point())
    resolved = fast_run["fast_path"]
    assert resolved["precision"] == "bf16" and ref["fast_path"]["precision"] == "fp32"
    assert resolved["channels_last"] == ("train.channels_last=false" not in fast)
    assert resolved["compile"] == ("train.compile=true" in fast)


def test_auto_takes_the_measured_choice_and_falls_back_on_narrow_inputs(tmp_path, monkeypatch):
    """With bf16 + channels_last as reid's measured choice on a CPU with native bf16, auto trains
    that way at 64x48 and in fp32 at 32x16 (one-pixel-wide maps: torch's bf16 NaN)."""
    monkeypatch.setattr(fastpath, "CPU_AUTO", {"reid": CpuChoice("bf16", False, True)})
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    root, _ = make_data(tmp_path, n_gen=0)
    wide = train(tiny_cfg(root, None, "train.epochs=1", "data.height=64", "data.width=48"),
                 tmp_path / "wide")  # fmt: skip
    want = {"precision": "bf16", "compile": False, "channels_last": True, "fused_optimizer": False}
    assert wide["fast_path"] == want
    narrow = train(tiny_cfg(root, None, "train.epochs=1"), tmp_path / "narrow")
    want = {"precision": "fp32", "compile": False, "channels_last": False, "fused_optimizer": False}
    assert narrow["fast_path"] == want


def test_fused_optimisers_only_with_bf16_under_auto_and_as_asked_otherwise(monkeypatch):
    monkeypatch.setattr(fastpath, "CPU_AUTO", {"gan": CpuChoice("bf16", False, True, True)})
    assert resolve_fused("auto", CPU, "gan", torch.bfloat16)
    assert not resolve_fused("auto", CPU, "gan", None)  # fp32: the reference path
    assert not resolve_fused("auto", CPU, "reid", torch.bfloat16)  # not its measured choice
    assert not resolve_fused("auto", torch.device("cuda"), "gan", torch.bfloat16)
    assert resolve_fused(True, CPU, "reid", None) and not resolve_fused(False, CPU, "gan", None)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_use_fused_switches_the_kernel_in_place_and_steps_like_the_loop(kind):
    """The fused kernel's update equals the per-tensor loop's to rounding (not bitwise), and
    switching back restores torch's default (None), so fp32 runs stay the reference."""
    torch.manual_seed(0)
    w0 = [torch.randn(7, 5), torch.randn(5)]
    grads = [[torch.randn_like(w) for w in w0] for _ in range(4)]

    def run(fused: bool) -> list[torch.Tensor]:
        ws = [w.clone().requires_grad_(True) for w in w0]
        make = torch.optim.SGD if kind == "sgd" else torch.optim.Adam
        extra = {"momentum": 0.9} if kind == "sgd" else {}
        opt = make(ws, lr=0.01, weight_decay=5e-4, **extra)
        use_fused(opt, fused)
        assert opt.param_groups[0]["fused"] is (True if fused else None)
        for g in grads:
            for w, gw in zip(ws, g, strict=True):
                w.grad = gw.clone()
            opt.step()
        return [w.detach() for w in ws]

    for a, b in zip(run(False), run(True), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_run_asked_for_fused_optimisers_records_and_uses_them(tmp_path):
    root, _ = make_data(tmp_path, n_gen=0)
    ref = train(tiny_cfg(root, None, "train.epochs=1", "train.precision=fp32"), tmp_path / "a")
    run = train(
        tiny_cfg(root, None, "train.epochs=1", "train.precision=fp32", "train.fused=true"),
        tmp_path / "b",
    )
    assert run["fast_path"]["fused_optimizer"] and not ref["fast_path"]["fused_optimizer"]
    opt = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)["optimizers"]
    assert all(g["fused"] is True for state in opt.values() for g in state["param_groups"])
    a = torch.load(tmp_path / "a/checkpoints/last.pt", weights_only=True)["modules"]["model"]
    b = torch.load(tmp_path / "b/checkpoints/last.pt", weights_only=True)["modules"]["model"]
    for k in a:  # the same training to rounding: only the update kernel differs
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)


def test_dgnet_padding_skips_autocasts_fp32_round_trip_and_keeps_the_values():
    """CPU autocast runs reflection padding in fp32; DG-Net's blocks pad in the activation's
    own dtype instead: the same bf16 values, no cast to fp32 and back."""
    import torch.nn.functional as F  # lazy: this test only

    from genreid.models.dgnet.blocks import ConvBlock, pad_as_is  # lazy: this test only

    x = torch.randn(2, 4, 9, 6).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = F.pad(x, [2] * 4, mode="reflect")
        ours = pad_as_is(x, 2, "reflect")
    assert plain.dtype == torch.float32 and ours.dtype == torch.bfloat16
    assert torch.equal(plain.to(torch.bfloat16), ours)
    torch.manual_seed(0)
    block = ConvBlock(4, 4, 3, norm="in")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        padded = F.pad(x.float(), [1] * 4, mode="reflect")
        want = block.act(block.norm(block.conv(padded)))
    assert torch.equal(y, want)
    assert torch.equal(
        pad_as_is(x.float(), 2, "reflect"), F.pad(x.float(), [2] * 4, mode="reflect")
    )
