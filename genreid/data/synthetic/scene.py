"""Cameras: a textured background scene with clutter plus the camera's light and optics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from genreid.data.synthetic import palette as pal
from genreid.data.synthetic.palette import RGB
from genreid.data.synthetic.seeding import CAMERA, stream

SCENE_KINDS = ("street", "plaza", "park", "indoor", "glass")


@dataclass(frozen=True, slots=True)
class Camera:
    """One camera's scene type, illumination and optics (a domain, as in multi-camera data)."""

    cam: int
    kind: str
    brightness: float
    gains: tuple[float, float, float]  # colour cast
    gamma: float
    blur: float  # base Gaussian blur radius in output pixels
    noise: float  # sensor noise sigma in 0..255 units
    lowres: float  # >1: the camera resolves less than the crop size
    view_probs: tuple[float, float, float]  # front, back, side
    light: float  # horizontal light direction for body shading, -1..1
    saturation: float = 1.0  # colour saturation (1: as drawn; style.camera varies it)


def _rgb(c: RGB, k: float = 1.0) -> RGB:
    return (int(min(255, c[0] * k)), int(min(255, c[1] * k)), int(min(255, c[2] * k)))


BRIGHTNESS = (0.75, 1.15)  # the range a camera's exposure is drawn from
GAMMA = (0.8, 1.25)  # and its gamma


def make_camera(seed: int, cam: int) -> Camera:
    """Camera ``cam``'s fixed properties, drawn from (seed, cam)."""
    rng = stream(seed, CAMERA, cam)
    views = rng.dirichlet((2.0, 2.0, 2.5))
    return Camera(
        cam=cam,
        kind=SCENE_KINDS[int(rng.integers(len(SCENE_KINDS)))],
        brightness=float(rng.uniform(*BRIGHTNESS)),
        gains=tuple(float(g) for g in np.clip(1.0 + rng.normal(0, 0.07, 3), 0.82, 1.18)),
        gamma=float(rng.uniform(*GAMMA)),
        blur=float(rng.uniform(0.0, 0.6)),
        noise=float(rng.uniform(1.5, 6.0)),
        lowres=float(rng.choice((1.0, 1.0, 1.3, 1.7))),
        view_probs=(float(views[0]), float(views[1]), float(views[2])),
        light=float(rng.uniform(-0.8, 0.8)),
    )


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], shape (h, w): random grid upsampled bilinearly."""
    grid = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def _windows(d: ImageDraw.ImageDraw, rng: np.random.Generator, x0, y0, x1, y1, glass: RGB):
    """A grid of windows on a facade."""
    ww, wh = int(rng.integers(14, 30)), int(rng.integers(18, 34))
    gx, gy = ww + int(rng.integers(8, 22)), wh + int(rng.integers(10, 22))
    for y in range(y0 + 6, y1 - wh, gy):
        for x in range(x0 + int(rng.integers(0, gx)), x1 - ww, gx):
            d.rectangle((x, y, x + ww, y + wh), fill=_rgb(glass, rng.uniform(0.7, 1.2)))


def _tiles(d: ImageDraw.ImageDraw, y0: int, w: int, h: int, step: int, line: RGB) -> None:
    """Paving joints: horizontal lines getting denser towards the horizon, verticals."""
    y = h - 1
    gap = float(step)
    while y > y0 and gap >= 3:
        d.line((0, int(y), w, int(y)), fill=line, width=1)
        y -= gap
        gap *= 0.85
    for x in range(0, w, step * 2):
        d.line((x, y0, x, h), fill=line, width=1)


def _clutter(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, ground: int):
    """Poles, bins, signs, benches and planters standing on the ground line."""
    for _ in range(int(rng.integers(w // 90, w // 40))):
        x = int(rng.integers(0, w))
        c = pal.CLUTTER[int(rng.integers(len(pal.CLUTTER)))]
        kind = int(rng.integers(5))
        base = int(ground + rng.integers(0, max(1, (h - ground) // 3)))
        if kind == 0:  # pole with a sign
            pw = int(rng.integers(3, 7))
            d.rectangle((x, int(base - h * 0.8), x + pw, base), fill=_rgb(c, 0.6))
            sy = int(base - h * rng.uniform(0.6, 0.8))
            d.rectangle((x - 10, sy, x + pw + 10, sy + 16), fill=c)
        elif kind == 1:  # bin
            d.rectangle((x, base - 36, x + 24, base), fill=c, outline=_rgb(c, 0.5))
        elif kind == 2:  # bench
            d.rectangle((x, base - 22, x + 70, base - 16), fill=_rgb(c, 0.8))
            d.rectangle((x + 4, base - 16, x + 8, base), fill=_rgb(c, 0.5))
            d.rectangle((x + 62, base - 16, x + 66, base), fill=_rgb(c, 0.5))
        elif kind == 3:  # planter with a shrub
            f = pal.FOLIAGE[int(rng.integers(len(pal.FOLIAGE)))]
            d.rectangle((x, base - 24, x + 44, base), fill=_rgb(c, 0.7))
            d.ellipse((x - 6, base - 64, x + 50, base - 14), fill=f)
        else:  # parked bicycle: two wheels and a frame
            d.ellipse((x, base - 26, x + 26, base), outline=(30, 30, 30), width=2)
            d.ellipse((x + 34, base - 26, x + 60, base), outline=(30, 30, 30), width=2)
            d.line((x + 13, base - 13, x + 30, base - 30, x + 47, base - 13), fill=c, width=3)


def scene_image(camera: Camera, seed: int, height: int, width: int) -> np.ndarray:
    """The camera's background panorama, uint8 (1.3*height, 6*width, 3); crops are taken from it."""
    rng = stream(seed, CAMERA, camera.cam, 1)
    h, w = int(height * 1.3), width * 6
    wall = pal.WALLS[int(rng.integers(len(pal.WALLS)))]
    ground_c = pal.GROUND[int(rng.integers(len(pal.GROUND)))]
    horizon = int(h * rng.uniform(0.35, 0.6))
    img = Image.new("RGB", (w, h), wall)
    d = ImageDraw.Draw(img)
    step = int(rng.integers(16, 40))
    if camera.kind == "street":
        d.rectangle((0, horizon, w, h), fill=ground_c)
        x = 0
        while x < w:  # facades of varying colour and width
            fw = int(rng.integers(80, 220))
            fc = pal.WALLS[int(rng.integers(len(pal.WALLS)))]
            d.rectangle((x, 0, x + fw, horizon), fill=fc)
            _windows(d, rng, x, 0, x + fw, horizon - 30, (70, 85, 105))
            if rng.random() < 0.5:  # shop sign
                sc = pal.CLUTTER[int(rng.integers(len(pal.CLUTTER)))]
                d.rectangle((x + 6, horizon - 28, x + fw - 6, horizon - 14), fill=sc)
            x += fw
        _tiles(d, horizon, w, h, step, _rgb(ground_c, 0.8))
        d.rectangle((0, h - 10, w, h), fill=_rgb(ground_c, 0.7))  # kerb
    elif camera.kind == "plaza":
        d.rectangle((0, 0, w, horizon), fill=_rgb(wall, 1.05))
        for _ in range(w // 60):  # distant trees
            x = int(rng.integers(0, w))
            f = pal.FOLIAGE[int(rng.integers(len(pal.FOLIAGE)))]
            d.ellipse((x - 30, horizon - 90, x + 30, horizon - 10), fill=f)
            d.rectangle((x - 3, horizon - 20, x + 3, horizon), fill=(70, 55, 40))
        d.rectangle((0, horizon, w, h), fill=ground_c)
        _tiles(d, horizon, w, h, step, _rgb(ground_c, 0.82))
    elif camera.kind == "park":
        d.rectangle((0, 0, w, horizon), fill=(170, 190, 205))
        for _ in range(w // 25):
            x = int(rng.integers(0, w))
            f = pal.FOLIAGE[int(rng.integers(len(pal.FOLIAGE)))]
            r = int(rng.integers(25, 60))
            d.ellipse((x - r, horizon - 2 * r - 10, x + r, horizon + 5), fill=f)
        d.rectangle((0, horizon, w, h), fill=(85, 120, 60))
        path_top = int(horizon + (h - horizon) * rng.uniform(0.2, 0.5))
        d.rectangle((0, path_top, w, h), fill=(170, 155, 125))
    elif camera.kind == "indoor":
        d.rectangle((0, 0, w, 14), fill=(235, 235, 225))  # ceiling lights
        for x in range(int(rng.integers(0, 120)), w, int(rng.integers(120, 220))):
            dc = pal.CLUTTER[int(rng.integers(len(pal.CLUTTER)))]
            d.rectangle((x, int(horizon * 0.3), x + 44, horizon), fill=_rgb(dc, 0.8))  # door
            px = x + int(rng.integers(60, 90))
            pc = pal.UPPER[int(rng.integers(len(pal.UPPER)))]
            d.rectangle((px, int(horizon * 0.35), px + 28, int(horizon * 0.7)), fill=pc)  # poster
        floor = _rgb(ground_c, 1.15)
        d.rectangle((0, horizon, w, h), fill=floor)
        _tiles(d, horizon, w, h, step + 10, _rgb(floor, 0.85))
    else:  # glass office front
        x = 0
        mull = int(rng.integers(30, 60))
        while x < w:
            d.rectangle((x, 0, x + mull, horizon), fill=_rgb((95, 120, 140), rng.uniform(0.8, 1.2)))
            d.rectangle((x, 0, x + 4, horizon), fill=(60, 60, 65))
            x += mull
        d.rectangle((0, horizon, w, h), fill=ground_c)
        _tiles(d, horizon, w, h, step, _rgb(ground_c, 0.85))
    _clutter(d, rng, w, h, horizon)
    arr = np.asarray(img, dtype=np.float32)
    shade = 0.82 + 0.36 * _smooth_noise(rng, h, w, 24)  # uneven light and dirt
    fine = 0.93 + 0.14 * _smooth_noise(rng, h, w, 3)  # surface texture
    arr = arr * (shade * fine)[..., None]
    return np.clip(arr, 0, 255).astype(np.uint8)
