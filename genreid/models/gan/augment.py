"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020),
and an exponential moving average of the generator's weights for sampling.

DiffAugment applies the same kind of random transform to real and generated images before
every discriminator call (its loss, the generator's loss, a gradient penalty), so D cannot
memorise a small real set while G still gets gradients through the transform. The three
policies are the paper's: ``color`` (brightness, saturation, contrast), ``translation`` (up
to 1/8 of each side, zero fill) and ``cutout`` (a zeroed box of half each side). Images are
in [-1, 1]. The draws come from torch's global generator, which checkpoints save, so a
resumed run repeats them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from genreid.core.errors import ConfigError

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


# --- the transforms with their parameters given (known answers in the tests) ---------------
def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift`` (B) to every pixel."""
    return x + shift.view(-1, 1, 1, 1)


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each pixel's distance from its channel mean (0: grey, 1: unchanged)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * factor.view(-1, 1, 1, 1) + mean


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its mean value (over channels and pixels)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor.view(-1, 1, 1, 1) + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Move image b down by dy[b] and right by dx[b] pixels, zeros where nothing moves in."""
    B, _, H, W = x.shape
    rows = torch.arange(H, device=x.device).view(1, H, 1) - dy.view(B, 1, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W) - dx.view(B, 1, 1)
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)  # B x H x W
    b = torch.arange(B, device=x.device).view(B, 1, 1)
    moved = x.permute(0, 2, 3, 1)[b, rows.clamp(0, H - 1), cols.clamp(0, W - 1)]
    return moved.permute(0, 3, 1, 2) * inside.unsqueeze(1)


def cutout(
    x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Zero a ``size`` box of image b whose top-left corner is (top[b], left[b]) (it may
    reach past the border)."""
    B, _, H, W = x.shape
    rows = torch.arange(H, device=x.device).view(1, H, 1) - top.view(B, 1, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W) - left.view(B, 1, 1)
    box = (rows >= 0) & (rows < size[0]) & (cols >= 0) & (cols < size[1])
    return x * (~box).unsqueeze(1)


# --- random draws ----------------------------------------------------------------------------
def _uniform(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.shape[0], device=x.device, dtype=x.dtype)


def rand_color(x: torch.Tensor) -> torch.Tensor:
    x = brightness(x, _uniform(x) - 0.5)
    x = saturation(x, _uniform(x) * 2)
    return contrast(x, _uniform(x) + 0.5)


def rand_translation(x: torch.Tensor) -> torch.Tensor:
    B, _, H, W = x.shape
    sh, sw = int(H * TRANSLATION_RATIO + 0.5), int(W * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-sh, sh + 1, (B,), device=x.device)
    dx = torch.randint(-sw, sw + 1, (B,), device=x.device)
    return translate(x, dy, dx)


def rand_cutout(x: torch.Tensor) -> torch.Tensor:
    B, _, H, W = x.shape
    size = (int(H * CUTOUT_RATIO + 0.5), int(W * CUTOUT_RATIO + 0.5))
    # the box's centre anywhere in the image, as in the paper's code
    cy = torch.randint(0, H + (1 - size[0] % 2), (B,), device=x.device)
    cx = torch.randint(0, W + (1 - size[1] % 2), (B,), device=x.device)
    return cutout(x, cy - size[0] // 2, cx - size[1] // 2, size)


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": rand_color,
    "translation": rand_translation,
    "cutout": rand_cutout,
}


def parse_policy(policy: str) -> list[str]:
    """``color,translation,cutout`` -> names, checked (empty: no augmentation)."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ConfigError(
            f"train.augment: unknown DiffAugment polic{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(unknown)}; expected a comma-separated subset of {', '.join(POLICIES)} "
            "(or empty for none)"
        )
    return names


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """``x`` through every transform of ``policy`` in order, fresh draws per image."""
    for name in parse_policy(policy):
        x = POLICIES[name](x)
    return x.contiguous()


class Augmented:
    """A discriminator that sees every input through DiffAugment (a callable, not a module:
    the wrapped network is what is trained and saved)."""

    def __init__(self, D: Callable[[torch.Tensor], torch.Tensor], policy: str) -> None:
        self.D, self.policy = D, policy

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(diff_augment(x, self.policy))


# --- EMA of the generator --------------------------------------------------------------------
@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, updates: int) -> None:
    """ema <- d * ema + (1 - d) * model for the parameters, with the warm-up d = min(decay,
    (1 + updates) / (10 + updates)) so early averages do not drag the first random weights
    along; buffers (BN running statistics) are copied."""
    d = min(decay, (1 + updates) / (10 + updates))
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1 - d)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)
