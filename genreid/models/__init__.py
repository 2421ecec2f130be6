"""Re-ID networks, backbones and GANs (imported on first use to keep start-up fast)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHS": "genreid.models.reid",
    "REID_ARCHS": "genreid.models.reid",
    "ModelConfig": "genreid.models.reid",
    "PretrainedError": "genreid.models.pretrained",
    "ReIDModel": "genreid.models.reid",
    "build_model": "genreid.models.reid",
    "load_run_model": "genreid.models.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # lazy: importing genreid.models must not import torch
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genreid.models' has no attribute {name!r}")
