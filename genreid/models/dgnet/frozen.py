"""A network evaluated as a frozen copy of itself: what the released DG-Net trainer gets from
``copy.deepcopy(net).eval()`` with BN put back in training mode, without the copy."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.func import functional_call

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _frozen_modes(module: nn.Module) -> None:
    """Dropout (and everything else) in eval mode, batch norm on batch statistics."""
    module.eval()
    for m in module.modules():
        if isinstance(m, BATCH_NORMS):
            m.train()


def frozen_call(module: nn.Module, *args: Any) -> Any:
    """``module(*args)`` on detached parameters and cloned buffers, dropout off and BN on batch
    statistics: gradients reach the inputs only, and the module (weights, running statistics,
    modes) is left exactly as it was."""
    modes = {m: m.training for m in module.modules()}
    state = {name: p.detach() for name, p in module.named_parameters()}
    state.update({name: b.clone() for name, b in module.named_buffers()})
    _frozen_modes(module)
    try:
        return functional_call(module, state, args)
    finally:
        for m, mode in modes.items():
            m.training = mode
