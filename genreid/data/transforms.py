"""Image pipelines in stages: ``prepare`` (deterministic: resize to the working size, as
uint8), ``augment`` (random, per sample, on uint8 tensors) and ``finish`` (per batch: to
float, normalise, erase).

Splitting them lets the training dataset decode and resize every image once into a memory
cache (:class:`genreid.data.dataset.ImageDataset`) and run only the cheap random part per
epoch, with the float work done once per batch. The random choices are drawn in the same
order, from the same generator stream, as torchvision's ``Resize -> Pad -> RandomCrop ->
RandomHorizontalFlip -> ToTensor -> Normalize -> RandomErasing`` draw them, on the same
pixels, so the result is bitwise that of those transforms (a test compares them). Generated
images (e.g. 128x128 DCGAN output) go through the same resize, so they reach the training
size like the real images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from genreid.data.config import DataConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def to_uint8(img: Image.Image) -> np.ndarray:
    """PIL RGB -> H x W x 3 uint8 array."""
    return np.array(img, dtype=np.uint8)


def uint8_tensor(arr: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 array -> 3 x H x W uint8 tensor (a view when possible)."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor 3xHxW in [0, 1]."""
    return uint8_tensor(to_uint8(img)).float().div_(255.0)


def normalized(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B x) 3 x H x W -> float, /255, ImageNet mean/std (exactly ToTensor + Normalize)."""
    return x.to(torch.float32).div_(255).sub_(_MEAN).div_(_STD)


def denormalized(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`normalized` without the rounding: float (B x) 3 x H x W in [0, 1]
    for images in the normalised space (e.g. DG-Net's generated images), clamped."""
    return (x.float() * _STD.to(x.device) + _MEAN.to(x.device)).clamp_(0, 1)


NO_ERASE = (-1, -1, -1, -1)
Choices = tuple[bool, tuple[int, int, int, int]]  # (flip, erase box i, j, h, w)
KEEP: Choices = (False, NO_ERASE)


def _randint(high: int, g: torch.Generator | None) -> int:
    """One integer in [0, high), drawn as torchvision's ``get_params`` draw it."""
    return int(torch.randint(0, high, size=(1,), generator=g).item())


def _rand(g: torch.Generator | None) -> float:
    return float(torch.rand(1, generator=g))


def erase_box(
    size: Sequence[int], area: Sequence[float], min_aspect: float, g: torch.Generator | None
) -> tuple[int, int, int, int]:
    """A random erasing box (i, j, h, w) in an H x W image, or ``NO_ERASE`` after 10 tries:
    RandomErasing.get_params's draws (area fraction, log-uniform aspect, position), in order."""
    H, W = int(size[0]), int(size[1])
    lo, hi = torch.log(torch.tensor((min_aspect, 1 / min_aspect)))
    for _ in range(10):
        erase_area = H * W * torch.empty(1).uniform_(area[0], area[1], generator=g).item()
        aspect = torch.exp(torch.empty(1).uniform_(lo, hi, generator=g)).item()
        h = int(round(math.sqrt(erase_area * aspect)))
        w = int(round(math.sqrt(erase_area / aspect)))
        if h < H and w < W:
            return _randint(H - h + 1, g), _randint(W - w + 1, g), h, w
    return NO_ERASE  # RandomErasing leaves the image as it is


def erasing_boxes(
    n: int,
    size: Sequence[int],
    p: float,
    area: Sequence[float] = (0.02, 0.4),
    min_aspect: float = 0.3,
    g: torch.Generator | None = None,
) -> list[tuple[int, int, int, int]]:
    """Per image of ``n``: with probability ``p`` an :func:`erase_box`, else ``NO_ERASE``
    (random erasing of a batch already in tensor form, e.g. DG-Net's identity-loss copies)."""
    return [erase_box(size, area, min_aspect, g) if _rand(g) < p else NO_ERASE for _ in range(n)]


def erase_(x: torch.Tensor, boxes: Sequence[tuple[int, int, int, int]]) -> torch.Tensor:
    """Set box b of image b of a float batch to 0 (the mean, in the normalised space), in
    place; ``NO_ERASE`` boxes leave their image as it is."""
    for b, (i, j, h, w) in enumerate(boxes):
        if i >= 0:
            x[b, :, i : i + h, j : j + w] = 0.0
    return x


def _flip_(x: torch.Tensor, choices: Sequence[Choices]) -> torch.Tensor:
    """Mirror, in place, the images of a (freshly computed) batch whose flag is set."""
    idx = [b for b, (flip, _) in enumerate(choices) if flip]
    if idx:
        x[idx] = x[idx].flip(-1)
    return x


class Pipeline:
    """Three stages. ``prepare``: PIL -> uint8 H x W x 3 array of ``prepared_size`` (H, W)
    (deterministic, cacheable).
    ``augment(x, g)``: a uint8 3 x H x W tensor -> (a view of it at the output size, the
    per-image choices ``(flip, erase box)``), drawn from ``g`` (torch's global RNG when None).
    ``finish``: a stacked uint8 batch and its choices -> the float batch."""

    prepared_size: tuple[int, int]

    def prepare(self, img: Image.Image) -> np.ndarray:
        return to_uint8(img)

    def augment(
        self, x: torch.Tensor, g: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Choices]:
        return x, KEEP

    def finish(self, x: torch.Tensor, choices: Sequence[Choices]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """The whole pipeline on one image (random choices from torch's global RNG)."""
        x, choice = self.augment(uint8_tensor(self.prepare(img)))
        return self.finish(x[None], [choice])[0]


class TrainPipeline(Pipeline):
    """Resize (to ``data.resize`` or the size; bicubic) and zero-pad once (``prepare``); random
    crop to the size, flip and random erasing per image; normalise per batch: the re-ID
    training augmentation of a ``data`` section."""

    def __init__(self, cfg: DataConfig) -> None:
        self.size = cfg.size
        self.resize = tuple(cfg.resize) or self.size
        self.pad = cfg.pad
        self.crop = cfg.pad > 0 or self.resize != self.size
        self.flip = cfg.flip
        self.erasing_p = cfg.erasing_p
        self.erasing_scale = tuple(cfg.erasing_area)
        self.erasing_min_aspect = cfg.erasing_min_aspect

    @property
    def prepared_size(self) -> tuple[int, int]:
        """(H, W) of what ``prepare`` returns: the resize plus the padding."""
        return self.resize[0] + 2 * self.pad, self.resize[1] + 2 * self.pad

    def prepare(self, img: Image.Image) -> np.ndarray:
        arr = to_uint8(TF.resize(img, list(self.resize), TF.InterpolationMode.BICUBIC))
        if self.pad > 0:
            p = self.pad
            arr = np.pad(arr, ((p, p), (p, p), (0, 0)))  # zeros, as transforms.Pad
        return arr

    def augment(
        self, x: torch.Tensor, g: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Choices]:
        H, W = self.size
        if self.crop:
            ph, pw = x.shape[1], x.shape[2]
            if ph < H or pw < W:
                raise ValueError(f"image of {ph}x{pw} (padded) is smaller than the crop {H}x{W}")
            if (ph, pw) != (H, W):  # RandomCrop.get_params returns (0, 0) without drawing
                i, j = _randint(ph - H + 1, g), _randint(pw - W + 1, g)
                x = x[:, i : i + H, j : j + W]
        flip = self.flip and _rand(g) < 0.5
        box = NO_ERASE
        if self.erasing_p > 0 and _rand(g) < self.erasing_p:
            box = erase_box((H, W), self.erasing_scale, self.erasing_min_aspect, g)
        return x, (flip, box)

    def finish(self, x: torch.Tensor, choices: Sequence[Choices]) -> torch.Tensor:
        return erase_(_flip_(normalized(x), choices), [box for _, box in choices])


class TestPipeline(Pipeline):
    """Resize to the test size (bicubic) and normalise; flip-averaging is done on batches."""

    def __init__(self, size: Sequence[int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    @property
    def prepared_size(self) -> tuple[int, int]:
        return self.size

    def prepare(self, img: Image.Image) -> np.ndarray:
        return to_uint8(TF.resize(img, list(self.size), TF.InterpolationMode.BICUBIC))

    def finish(self, x: torch.Tensor, choices: Sequence[Choices]) -> torch.Tensor:
        return normalized(x)


class GanTransform(Pipeline):
    """Resize bilinearly to (H, W), optional random horizontal flip, scale to [-1, 1].

    The flip always draws from torch's global RNG (the GAN task seeds once and carries the
    RNG on), so with ``workers=0`` a resumed run sees the same flips as an uninterrupted one.
    """

    def __init__(self, size: Sequence[int], flip: bool = True) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.flip = flip

    @property
    def prepared_size(self) -> tuple[int, int]:
        return self.size

    def prepare(self, img: Image.Image) -> np.ndarray:
        h, w = self.size
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        return to_uint8(img)

    def augment(
        self, x: torch.Tensor, g: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Choices]:
        return x, (self.flip and bool(torch.rand(()) < 0.5), NO_ERASE)

    def finish(self, x: torch.Tensor, choices: Sequence[Choices]) -> torch.Tensor:
        return _flip_(x.float().div_(255.0).mul_(2).sub_(1), choices)


def train_transform(cfg: DataConfig) -> TrainPipeline:
    """The training pipeline of a ``data`` section."""
    return TrainPipeline(cfg)


def test_transform(size: Sequence[int]) -> TestPipeline:
    """The test pipeline at ``size`` (height, width)."""
    return TestPipeline(size)
