"""What a task calls on the loop (``Loop`` inherits it): register its modules, optimizers,
schedulers and AMP scalers by name (saved in every checkpoint), put image batches on the
device, autocast, check that a loss is finite, and log a record."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn

from genreid.core import distributed as ddp
from genreid.core.runs import RunDir
from genreid.engine.epoch_stats import StepInfo
from genreid.engine.errors import NonFiniteError
from genreid.engine.fastpath import FastPath, autocast


class TaskServices:
    """The loop as its task sees it: the device and fast path set up, the objects registered."""

    task: Any
    device: torch.device  # the run's, once set up
    step: int  # steps done in all
    position: StepInfo  # the step under way (or last done)
    rundir: RunDir | None

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.dist: ddp.DistInfo | None = None
        self.amp: torch.dtype | None = None  # the fast path (engine/fastpath.py)
        self.compile = self.channels_last = self.fused = False

    def module(self, name: str, module: nn.Module, ddp_wrap: bool = True) -> nn.Module:
        """Register a module (moved to the device; saved in checkpoints). Returns what the
        task should call for training forwards: the module, or its DDP wrapper when run by
        torchrun and it has trainable parameters."""
        module.to(self.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        self.modules[name] = module
        if self.compile:
            module.compile()  # in place: state_dict keys and checkpoints stay the same
        trainable = any(p.requires_grad for p in module.parameters())
        if ddp_wrap and self.dist.enabled and trainable:
            ids = [self.device.index] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return module

    def optimizer(self, name: str, opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Register an optimizer (saved in checkpoints)."""
        self.optimizers[name] = opt
        return opt

    def scheduler(self, name: str, sched: Any) -> Any:
        """Register anything with ``state_dict``/``load_state_dict`` that schedules lr."""
        self.schedulers[name] = sched
        return sched

    def scaler(self, name: str = "scaler") -> torch.amp.GradScaler:
        """A registered AMP gradient scaler, enabled only for fp16 autocast."""
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.scalers[name] = scaler
        return scaler

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        """An image batch on the device, in the memory format the modules use."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return batch.to(self.device, non_blocking=True, memory_format=fmt)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for training forwards (a no-op at ``train.precision`` fp32)."""
        return autocast(self.device, self.amp)

    def fast_path(self) -> dict[str, Any]:
        """What ``train.precision``, ``train.compile``, ``train.channels_last`` and
        ``train.fused`` resolved to."""
        return FastPath(self.amp, self.compile, self.channels_last, self.fused).names()

    def finite(self, what: str, loss: torch.Tensor) -> float:
        """The loss as a float; stops the run (on every rank) if it is NaN or infinite. Call it
        before ``backward`` so that no NaN ever reaches the weights."""
        value = float(loss.detach())
        if ddp.any_rank(not math.isfinite(value), self.device):
            shown = "NaN" if math.isnan(value) else str(value)
            raise NonFiniteError(f"the {what} became {shown}", self.task.nan_advice)
        return value

    def log(self, record: dict[str, Any]) -> None:
        """Append a record (with the current step and epoch) to metrics.jsonl and TensorBoard."""
        record = {"step": self.step, "epoch": self.position.epoch + 1, **record}
        self.rundir.log_metrics(record, step=self.step)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder (rank 0, or the only process)."""
        return self.dist.is_main
