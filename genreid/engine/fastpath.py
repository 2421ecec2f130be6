"""The training precision and compilation a run uses: ``train.precision`` and
``train.compile``, with ``auto`` resolved per task and device from what the speed benchmarks
measured (benchmarks/train_speed.py, gan_speed.py, dgnet_speed.py: every variant's ratio to
fp32 in one process), falling back to fp32 where the CPU has no native bf16.

``fp32`` with compile off is the reference path: it reproduces earlier runs bitwise."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class CpuChoice(NamedTuple):
    """What ``auto`` resolves to on a CPU for one task."""

    precision: str  # fp32 or bf16 (bf16 only where the CPU has it natively)
    compile: bool
    channels_last: bool  # only together with bf16: fp32 stays the bitwise reference path
    fused: bool = False  # the optimisers' fused kernels (only together with bf16, as above)


# What `auto` picks on a CPU, per task. A variant moves here only when its benchmark is faster
# and its accuracy within noise of fp32 (docs/RESULTS.md, issue 27).
CPU_AUTO: dict[str, CpuChoice] = {
    # re-ID training step 1.44x fp32 (benchmarks/train_speed.py); VIPeR validation identities,
    # 10 splits: 35.9 +- 7.0 rank-1 against fp32's 35.4 +- 5.8 (paired p 0.59)
    "reid": CpuChoice("bf16", False, True),
    # DCGAN iteration 1.58x fp32; VIPeR splits 0-2, dcgan_tiny_pretrained: Frechet 0.067 +- 0.022
    # against fp32's 0.066 +- 0.007 (paired p 0.93), recall 0.84 against 0.81 (p 0.38). Only
    # for the architectures whose GanArch.cpu_auto_bf16 says so (WGAN-GP: unmeasured)
    "gan": CpuChoice("bf16", False, True),
}
CPU_DEFAULT = CpuChoice("fp32", False, False)
# Tasks whose auto stays fp32 on CUDA too: their GPU figures were measured in fp32.
CUDA_FP32_TASKS = frozenset({"gan"})


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def resolve_precision(mode: str, device: torch.device, task: str) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` (None: plain fp32). On CUDA ``auto`` is bf16
    where supported, else fp16; on a CPU it is the task's measured choice, fp32 without
    native bf16; fp16 autocast is CUDA only."""
    if mode == "auto":
        if device.type == "cuda":
            if task in CUDA_FP32_TASKS:
                return None
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        mode = CPU_AUTO.get(task, CPU_DEFAULT).precision if cpu_has_native_bf16() else "fp32"
    if mode == "fp32":
        return None
    if mode == "fp16" and device.type != "cuda":
        return None  # LoopConfig.check refuses fp16 on an explicit CPU device
    return torch.float16 if mode == "fp16" else torch.bfloat16


def resolve_compile(mode: bool | str, device: torch.device, task: str) -> bool:
    """Whether to ``torch.compile`` the task's modules: ``auto`` is the task's measured choice
    on a CPU and off on CUDA until measured there."""
    if mode == "auto":
        return device.type == "cpu" and CPU_AUTO.get(task, CPU_DEFAULT).compile
    return bool(mode)


def resolve_channels_last(
    mode: bool | str, device: torch.device, task: str, dtype: torch.dtype | None
) -> bool:
    """Whether modules and image batches use the channels_last memory format: ``auto`` is the
    task's measured choice on a CPU when its autocast dtype (``dtype``) is bf16, so that fp32
    keeps the contiguous reference path; off on CUDA until measured there."""
    if mode == "auto":
        choice = CPU_AUTO.get(task, CPU_DEFAULT)
        return device.type == "cpu" and dtype is torch.bfloat16 and choice.channels_last
    return bool(mode)


# Below this input width a ResNet's last stage (stride 16 before it) makes feature maps one
# pixel wide, where torch 2.14's CPU bf16 convolutions go NaN at random: on an AMD EPYC (AVX-512
# BF16) with one-pixel-wide inputs to its stride-2 3x3 conv (input width 16: NaN weight
# gradients in about a third of calls), on an Intel Xeon with AMX also with two-pixel-wide
# inputs and one-pixel-wide outputs (input width 32: a NaN loss within 6 steps in 15 of 72 short
# runs of the tiny model; at width 48, two-pixel outputs, none in 54; docs/RESULTS.md).
BF16_MIN_WIDTH = 48


def cpu_bf16_unsafe_width(train: Any, width: int) -> bool:
    """Whether ``train`` asks for bf16 on a possible CPU at an input narrower than
    ``BF16_MIN_WIDTH``."""
    on_cuda = str(train.device).startswith("cuda")
    return train.precision_mode == "bf16" and not on_cuda and width < BF16_MIN_WIDTH


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``, or nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def resolve_fused(
    mode: bool | str, device: torch.device, task: str, dtype: torch.dtype | None
) -> bool:
    """Whether the task's optimisers step with their fused kernels (one kernel over all
    parameters, rounding unlike the reference loop): ``auto`` is the task's measured choice on
    a CPU with bf16 autocast, so that fp32 keeps the bitwise reference path."""
    if mode == "auto":
        choice = CPU_AUTO.get(task, CPU_DEFAULT)
        return device.type == "cpu" and dtype is torch.bfloat16 and choice.fused
    return bool(mode)


def use_fused(optimizer: torch.optim.Optimizer, fused: bool) -> None:
    """Switch ``optimizer``'s fused kernel on or off in place (SGD and Adam read ``fused`` per
    parameter group at each step); a resumed run's setting wins over its checkpoint's."""
    for group in optimizer.param_groups:
        if "fused" in group:
            group["fused"] = fused or None
            if fused:
                group["foreach"] = None  # torch refuses both flags at once


class FastPath(NamedTuple):
    """What a run trains with: the autocast dtype (None: fp32), compilation, memory format,
    fused optimiser kernels."""

    amp: torch.dtype | None
    compile: bool
    channels_last: bool
    fused: bool = False

    def names(self) -> dict[str, Any]:
        """As results.json's ``fast_path`` records it (precision fp32, bf16 or fp16)."""
        names = {torch.bfloat16: "bf16", torch.float16: "fp16"}
        precision = names.get(self.amp, "fp32")
        return {
            "precision": precision,
            "compile": self.compile,
            "channels_last": self.channels_last,
            "fused_optimizer": self.fused,
        }


def resolve_fast_path(
    train: Any, device: torch.device, task: str, cpu_auto_bf16: Callable[[], bool]
) -> FastPath:
    """What a run's ``train`` keys resolve to on ``device`` for ``task``; ``auto`` stays fp32
    on a CPU where the run's ``cpu_auto_bf16()`` says bf16 was not measured as accurate."""
    amp = resolve_precision(train.precision_mode, device, task)
    unsafe = device.type == "cpu" and not cpu_auto_bf16()
    if train.precision_mode == "auto" and unsafe:
        amp = None
    compile_ = resolve_compile(train.compile, device, task)
    return FastPath(
        amp,
        compile_,
        resolve_channels_last(train.channels_last, device, task, amp),
        resolve_fused(train.fused, device, task, amp),
    )
