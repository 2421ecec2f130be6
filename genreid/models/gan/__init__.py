"""Unconditional GANs that generate unlabeled pedestrian images: DCGAN and WGAN-GP ResNet."""

from __future__ import annotations

from typing import Any

from torch import nn

from genreid.models.gan.dcgan import DCGANDiscriminator, DCGANGenerator
from genreid.models.gan.wgangp import WGANGPCritic, WGANGPGenerator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "WGANGPCritic",
    "WGANGPGenerator",
    "build_gan",
]


def build_gan(cfg: Any) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for a resolved GanConfig (see genreid.engine.gan_config)."""
    m = cfg.model
    size = (int(cfg.data.size[0]), int(cfg.data.size[1]))
    if m.arch == "dcgan":
        g = DCGANGenerator(size, m.z_dim, m.width, m.depth, m.kernel)
        d = DCGANDiscriminator(size, m.width, m.depth, m.kernel)
    elif m.arch == "wgangp":
        g = WGANGPGenerator(size, m.z_dim, m.width, m.depth)
        d = WGANGPCritic(size, m.width, m.depth)
    else:
        raise ValueError(f"model.arch: expected dcgan or wgangp, got {m.arch!r}")
    return g, d
