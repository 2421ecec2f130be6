"""What a GAN architecture provides: its networks, its losses, its collapse guard and its
training options (``train.options``, the arch's ``Options`` dataclass).

The GAN training task is written against this interface only, so it never branches on the
architecture's name; a new architecture registers a :class:`GanArch` subclass in
``genreid.models.gan.GAN_ARCHS`` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn

from genreid.core.errors import ConfigError, RegistryError
from genreid.core.registry import Registry


@dataclass
class GanModelConfig:
    """The ``model`` section of a GAN config: which generator/discriminator pair, how big."""

    arch: str = "dcgan"
    z_dim: int | None = None  # null: the arch's default (dcgan 100, wgangp 128)
    width: int = 64  # d: channels of the last generator layer / first critic layer
    depth: int | None = None  # stride-2 stages (dcgan 4, wgangp 5); start map = size / 2^depth
    kernel: int = 5  # DCGAN (de)convolution size
    # initial G and D: synthetic (genreid's shipped weights for this arch, width and size), a
    # GAN run folder or a weights file; null: the arch's random initialisation
    pretrained: str | None = None

    def check(self) -> None:
        try:
            GAN_ARCHS.key(self.arch)
        except RegistryError as exc:
            raise ConfigError(f"model.arch: {exc}") from None
        for key in ("z_dim", "depth"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"model.{key}: expected an integer >= 1, got {value}")
        if self.width < 1:
            raise ConfigError(f"model.width: expected an integer >= 1, got {self.width}")
        if self.kernel % 2 == 0:
            raise ConfigError(f"model.kernel: expected an odd size such as 5, got {self.kernel}")


@dataclass
class GanOptions:
    """What every architecture's ``train.options`` hold; an arch subclasses it as its
    ``Options`` with its own keys and paper defaults."""

    g_steps: int = 1  # generator updates per iteration

    @property
    def d_updates(self) -> int:
        """Discriminator (critic) updates per iteration, one real batch each."""
        raise NotImplementedError

    def check(self) -> None:
        """Every option's value is valid; counts of steps are 1 or more."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_steps") and value < 1:
                raise ConfigError(f"train.options.{f.name}: expected an integer >= 1, got {value}")


class GanArch:
    """A generator/discriminator pair with its losses; subclasses fill in each piece."""

    name: ClassVar[str] = ""
    # Paper defaults for config fields left null: model.z_dim, model.depth, and the lr and
    # betas of optim.gen and optim.dis (the arch's Options hold the rest)
    defaults: ClassVar[dict[str, Any]] = {}
    Options: ClassVar[type[GanOptions]] = GanOptions
    # train.precision: auto may train it in bf16 on a CPU (measured as accurate: fastpath.py)
    cpu_auto_bf16: ClassVar[bool] = False
    collapse_advice: ClassVar[str] = ""

    @classmethod
    def build(cls, model: GanModelConfig, size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator) for a resolved model config and image size (H, W)."""
        raise NotImplementedError

    @staticmethod
    def d_loss(
        D: nn.Module, real: torch.Tensor, fake: torch.Tensor, options: Any
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator loss on a real and a fake batch, and statistics to log."""
        raise NotImplementedError

    @staticmethod
    def g_loss(scores: torch.Tensor) -> torch.Tensor:
        """The generator loss from the discriminator's scores of fresh fakes."""
        raise NotImplementedError

    @staticmethod
    def collapsed(stats: dict[str, float], options: Any, patience: int) -> str | None:
        """What looks broken in this iteration's statistics (seen ``patience`` iterations in a
        row when it stops training), or None when all is well."""
        return None


def gan_options(arch: str) -> type[GanOptions]:
    """The ``Options`` dataclass of the architecture ``arch`` (an unknown name raises)."""
    return GAN_ARCHS.get(arch).Options


GAN_ARCHS: Registry[type[GanArch]] = Registry(
    "GAN architecture",
    {"dcgan": "genreid.models.gan.dcgan:DCGAN", "wgangp": "genreid.models.gan.wgangp:WGANGP"},
)


def build_gan(model: GanModelConfig, size: tuple[int, int]) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of a resolved model config at image size (H, W)."""
    return GAN_ARCHS.get(model.arch).build(model, (int(size[0]), int(size[1])))
