"""Re-ID networks and backbones."""

from genreid.models.reid import ARCHS, ModelSpec, PretrainedError, ReIDModel, build_model

__all__ = ["ARCHS", "ModelSpec", "PretrainedError", "ReIDModel", "build_model"]
