"""Camera optics on a rendered picture: resolution, blur, tone, noise, JPEG compression."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from genreid.data.synthetic.scene import Camera
from genreid.data.synthetic.seeding import CAMERA, stream

_MOTION = ImageFilter.Kernel((5, 5), [0] * 10 + [1] * 5 + [0] * 10, scale=5)


@lru_cache(maxsize=8)
def noise_bank(seed: int, h: int, w: int) -> np.ndarray:
    """Standard normal noise, (2h, 2w, 3); images take shifted windows (cheaper than drawing)."""
    return stream(seed, CAMERA, 0, 2).standard_normal((2 * h, 2 * w, 3), dtype=np.float32)


_CHANNEL = np.array([0, 256, 512], dtype=np.intp)


def finish(
    img: Image.Image,
    rng: np.random.Generator,
    cam: Camera,
    brightness: float,
    h: int,
    w: int,
    noise: np.ndarray,
) -> bytes:
    """Downsample, camera optics, illumination, sensor noise and JPEG compression.

    ``noise``: standard normal, (2h, 2w, 3) to take a random window of, or (h, w, 3) to use.
    """
    img = img.reduce(2) if img.size != (w, h) else img
    if cam.lowres > 1.0:
        f = cam.lowres * rng.uniform(0.9, 1.1)
        img = img.resize((max(8, int(w / f)), max(8, int(h / f))), Image.Resampling.BILINEAR)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    radius = cam.blur + rng.uniform(0.0, 0.35)
    if rng.random() < 0.08:
        img = img.filter(_MOTION)
    elif radius > 0.2:
        img = img.filter(ImageFilter.BoxBlur(radius))
    gains = np.asarray(cam.gains) * (1.0 + rng.normal(0.0, 0.025, 3))
    gamma = cam.gamma * rng.uniform(0.95, 1.05)
    x = np.arange(256, dtype=np.float32) / 255.0
    lut = np.clip(x[None, :] * (brightness * gains[:, None]).astype(np.float32), 0.0, 1.0)
    lut = 255.0 * lut**gamma + 0.5  # (3, 256) tone curve: brightness, colour cast, gamma
    arr = lut.astype(np.float32).reshape(-1)[np.asarray(img) + _CHANNEL]
    if cam.saturation != 1.0:
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + cam.saturation * (arr - grey)
    ny, nx = int(rng.integers(0, h + 1)), int(rng.integers(0, w + 1))
    window = noise if noise.shape[:2] == (h, w) else noise[ny : ny + h, nx : nx + w]
    arr += window * np.float32(cam.noise * rng.uniform(0.7, 1.3))
    np.clip(arr, 0, 255, out=arr)
    out = Image.fromarray(arr.astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=int(rng.integers(70, 96)))
    return buf.getvalue()
