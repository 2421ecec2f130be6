"""Image transforms: re-ID training augmentation, the test transform, and the GAN transform.

Generated images (e.g. 128x128 DCGAN output) go through the same resize, so they reach the
training size like the real images. Random choices draw from torch's RNG, which the training
dataset seeds per sample (see ``genreid.data.dataset``), so augmentation is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from genreid.data.config import DataConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(cfg: DataConfig) -> transforms.Compose:
    """Resize (to ``resize`` or the size), pad + random crop, flip, normalise, erase."""
    size = cfg.size
    resize = tuple(cfg.resize) or size
    ops: list = [transforms.Resize(resize, interpolation=transforms.InterpolationMode.BICUBIC)]
    if cfg.pad > 0:
        ops.append(transforms.Pad(cfg.pad))
    if cfg.pad > 0 or resize != size:
        ops.append(transforms.RandomCrop(size))
    if cfg.flip:
        ops.append(transforms.RandomHorizontalFlip())
    ops += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if cfg.erasing_p > 0:
        a = cfg.erasing_min_aspect
        ops.append(
            transforms.RandomErasing(
                cfg.erasing_p, scale=tuple(cfg.erasing_area), ratio=(a, 1 / a), value=0
            )
        )
    return transforms.Compose(ops)


def test_transform(size: Sequence[int]) -> transforms.Compose:
    """Resize to the test size and normalise (flipping for flip-averaging is done on tensors)."""
    return transforms.Compose(
        [
            transforms.Resize(tuple(size), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor 3xHxW in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


class GanTransform:
    """Resize bilinearly to (H, W), optional random horizontal flip, scale to [-1, 1].

    The flip draws from torch's global RNG, so with ``workers=0`` a run resumed from a
    checkpoint (which stores that RNG) sees the same flips as an uninterrupted one.
    """

    def __init__(self, size: Sequence[int], flip: bool = True) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.flip = flip

    def __call__(self, img: Image.Image) -> torch.Tensor:
        h, w = self.size
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        x = to_tensor(img).mul_(2).sub_(1)
        if self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x
