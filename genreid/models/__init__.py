"""Re-ID networks, backbones and GANs (imported on first use to keep start-up fast)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = ("ARCHS", "ModelSpec", "PretrainedError", "ReIDModel", "build_model")

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module("genreid.models.reid"), name)
    raise AttributeError(f"module 'genreid.models' has no attribute {name!r}")
