"""Image grids: sheets of generated (and real) images for figures and TensorBoard."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (BxCxHxW) -> uint8 BxHxWxC on the CPU."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def to_pil(image: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """One image in [-1, 1] (CxHxW) -> PIL, resized bilinearly to ``size`` (H, W) when given."""
    img = Image.fromarray(to_uint8(image[None])[0].numpy())
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return img


def grid_image(images: torch.Tensor, nrow: int = 8) -> Image.Image:
    """A sheet of images in [-1, 1], ``nrow`` per row, 2-pixel white gaps."""
    n, _, h, w = images.shape
    cols = max(1, min(nrow, n))
    rows = math.ceil(n / cols)
    pad = 2
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), (255, 255, 255))
    arrays = to_uint8(images).numpy()
    for i, arr in enumerate(arrays):
        r, c = divmod(i, cols)
        sheet.paste(Image.fromarray(arr), (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write :func:`grid_image` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, nrow).save(path)
    return path
