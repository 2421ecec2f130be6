"""Per-recipe image transforms: resize, random crop with padding, flip, erasing, normalise.

Generated images (e.g. 128x128 DCGAN output) go through the same resize, so they reach the
training size like the real images. Random choices draw from torch's RNG, which the training
dataset seeds per sample (see ``reid_dataset``), so augmentation is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torchvision import transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentSpec:
    """Sizes are (height, width); ``resize`` empty means resize straight to ``size``."""

    size: tuple[int, int] = (256, 128)
    resize: tuple[int, ...] = ()
    pad: int = 0
    flip: bool = True
    erasing_p: float = 0.0
    erasing_area: tuple[float, float] = (0.02, 0.4)
    erasing_min_aspect: float = 0.3


def train_transform(spec: AugmentSpec) -> transforms.Compose:
    """Resize (to ``resize`` or ``size``), pad + random crop to ``size``, flip, normalise, erase."""
    size = tuple(spec.size)
    resize = tuple(spec.resize) or size
    ops: list = [transforms.Resize(resize, interpolation=transforms.InterpolationMode.BICUBIC)]
    if spec.pad > 0:
        ops.append(transforms.Pad(spec.pad))
    if spec.pad > 0 or resize != size:
        ops.append(transforms.RandomCrop(size))
    if spec.flip:
        ops.append(transforms.RandomHorizontalFlip())
    ops += [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if spec.erasing_p > 0:
        a = spec.erasing_min_aspect
        ops.append(
            transforms.RandomErasing(
                spec.erasing_p, scale=tuple(spec.erasing_area), ratio=(a, 1 / a), value=0
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
