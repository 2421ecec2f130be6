"""The ``train`` keys every task shares (threads, device, precision, evaluation and checkpoint
cadence); a task's train section subclasses :class:`LoopConfig` and adds its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genreid.core.errors import ConfigError


@dataclass
class LoopConfig:
    """The ``train`` keys every task shares."""

    epochs: int = 50
    device: str = "auto"  # auto, cpu, cuda, cuda:1
    threads: int | None = None  # torch CPU threads (null: torch's default, all cores)
    # autocast: auto (CUDA: bf16 or fp16; CPU: the task's measured choice, engine/fastpath.py),
    # fp32 (none: the reference path, bitwise as before), bf16, fp16 (CUDA only)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool | Literal["auto"] = "auto"  # torch.compile the task's modules
    # channels_last memory format for modules and image batches (auto: with bf16 on a CPU,
    # where the task measured it faster)
    channels_last: bool | Literal["auto"] = "auto"
    # the optimisers' fused kernels (auto: with bf16 on a CPU, where the task measured it faster)
    fused: bool | Literal["auto"] = "auto"
    # the name of `precision` before 2026-12-07 (off = fp32), read from older run folders
    amp: Literal["auto", "bf16", "fp16", "off"] | None = None
    progress: bool = True  # bar with ETA on a terminal, a plain line every 10 s in a log
    eval_every: int = 0  # epochs between evaluations; 0 = only at the end
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0 = at epoch ends only
    keep_checkpoints: bool = False  # also keep checkpoints/epoch_NNN.pt

    def check(self) -> None:
        """Valid counts, a known device, and precision set once (not with the old ``amp``)."""
        if self.epochs < 1:
            raise ConfigError(f"train.epochs: expected 1 or more, got {self.epochs}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads: expected 1 or more (or null), got {self.threads}")
        for key in ("eval_every", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: expected 0 or more, got {getattr(self, key)}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(
                f"train.device: expected auto, cpu, cuda or cuda:N, got {self.device}"
            )
        if self.amp is not None and self.precision != "auto":
            raise ConfigError(
                "train.amp is the old name of train.precision; set only train.precision "
                f"(got amp={self.amp}, precision={self.precision})"
            )
        if self.precision_mode == "fp16" and self.device == "cpu":
            raise ConfigError("train.precision: fp16 autocast is for CUDA; on a CPU use bf16")

    @property
    def precision_mode(self) -> str:
        """``precision``, or the old ``amp`` key's value in its terms."""
        if self.amp is None:
            return self.precision
        return "fp32" if self.amp == "off" else self.amp
