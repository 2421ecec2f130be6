"""Unconditional GANs that generate unlabeled pedestrian images: DCGAN and WGAN-GP ResNet."""

from __future__ import annotations

from genreid.models.gan.base import (
    GAN_ARCHS,
    GanArch,
    GanModelConfig,
    GanOptions,
    build_gan,
    gan_options,
)

__all__ = ["GAN_ARCHS", "GanArch", "GanModelConfig", "GanOptions", "build_gan", "gan_options"]
