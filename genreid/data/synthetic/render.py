"""Rendering one image: a person (or junk) seen by one camera, as JPEG bytes."""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from genreid.data.synthetic import body
from genreid.data.synthetic.body import FAR, Placement
from genreid.data.synthetic.identity import Identity, sample_identity
from genreid.data.synthetic.scene import Camera, make_camera, scene_image
from genreid.data.synthetic.seeding import IDENTITY, IMAGE, JUNK, TRACK, stream

VIEWS = ("front", "back", "side")
_MOTION = ImageFilter.Kernel((5, 5), [0] * 10 + [1] * 5 + [0] * 10, scale=5)


@lru_cache(maxsize=64)
def _camera(seed: int, cam: int) -> Camera:
    return make_camera(seed, cam)


@lru_cache(maxsize=64)
def _scene(seed: int, cam: int, h2: int, w2: int) -> np.ndarray:
    """Per-process cache: every image of a camera crops the same panorama."""
    return scene_image(_camera(seed, cam), seed, h2, w2)


def _lut(ident: Identity) -> np.ndarray:
    """Label -> RGB (float32); far-side labels are darker copies."""
    lut = np.zeros((body.NUM_LABELS, 3), dtype=np.float32)
    colors = {
        body.SKIN: ident.skin,
        body.HAIR: ident.hair_color,
        body.UPPER: ident.upper_color,
        body.UPPER2: ident.upper_color2,
        body.LOWER: ident.lower_color,
        body.SHOES: ident.shoe_color,
        body.BAG: ident.bag_color,
        body.STRAP: tuple(int(c * 0.7) for c in ident.bag_color),
        body.HAT: ident.hat_color,
        body.DARK: (35, 25, 25),
    }
    for label, c in colors.items():
        lut[label] = c
        lut[label + FAR] = np.asarray(c, dtype=np.float32) * 0.72
    return lut


def _colorize(
    labels: np.ndarray, ident: Identity, at: Placement, light: float
) -> tuple[np.ndarray, np.ndarray]:
    """RGB of a label map with garment pattern and body shading; returns (rgb, mask)."""
    lut = _lut(ident)
    rgb = lut[labels]
    pattern = ident.upper_pattern
    if pattern in ("stripes", "checks", "two_tone"):
        ys, xs = np.nonzero((labels & 15) == body.UPPER)
        v = (ys.astype(np.float32) - at.y0) / at.s
        period = ident.pattern_scale
        if pattern == "stripes":
            sel = np.mod((v - 0.16) / period, 1.0) < 0.45
        elif pattern == "checks":
            u = (xs.astype(np.float32) - at.cx) / at.s
            sel = (np.mod(v / period, 1.0) < 0.25) | (np.mod(u / period, 1.0) < 0.25)
        else:
            sel = (v > 0.34) if period > 0.0525 else (v < 0.3)
        far = (labels[ys[sel], xs[sel]] >= FAR)[:, None]
        c2 = np.asarray(ident.upper_color2, dtype=np.float32)
        rgb[ys[sel], xs[sel]] = np.where(far, c2 * 0.72, c2)
    h, w = labels.shape
    x = (np.arange(w, dtype=np.float32) - at.cx) / (0.14 * at.s * ident.width) - light * 0.6
    col = 1.08 - 0.3 * np.minimum(x * x, 1.6)
    y = (np.arange(h, dtype=np.float32) - at.y0) / at.s
    row = 1.0 - 0.12 * np.clip(y - 0.5, 0.0, 0.5)
    rgb *= col[None, :, None] * row[:, None, None]
    return rgb, labels > 0


def _person_layer(
    ident: Identity, view: str, facing: int, phase: float, cx: float, y0: float, s: float,
    h2: int, w2: int, light: float,
) -> tuple[np.ndarray, np.ndarray, Placement]:
    canvas = Image.new("L", (w2, h2), 0)
    at = body.draw_person(ImageDraw.Draw(canvas), ident, view, facing, phase, cx, y0, s)
    rgb, mask = _colorize(np.asarray(canvas), ident, at, light)
    return rgb, mask, at


def _shadow(img: np.ndarray, cx: float, fy: float, s: float) -> None:
    """Soft ground shadow under the feet, in place."""
    h, w, _ = img.shape
    x = ((np.arange(w, dtype=np.float32) - cx) / (0.17 * s)) ** 2
    y = ((np.arange(h, dtype=np.float32) - fy) / (0.03 * s)) ** 2
    d = y[:, None] + x[None, :]
    img *= (1.0 - 0.35 * np.exp(-d * 1.5))[..., None]


def _occluder(img: Image.Image, rng: np.random.Generator, seed: int, w2: int, h2: int,
              light: float) -> Image.Image:
    """Something partly in front of the person: a pole, a car, another person or a bush."""
    kind = int(rng.choice(4, p=(0.3, 0.25, 0.3, 0.15)))
    d = ImageDraw.Draw(img)
    if kind == 0:
        pw = int(rng.integers(w2 // 14, w2 // 6))
        x = int(rng.integers(0, w2 - pw))
        c = int(rng.integers(40, 150))
        d.rectangle((x, 0, x + pw, h2), fill=(c, c, c + 5))
        d.rectangle((x + pw // 4, 0, x + pw // 2, h2), fill=(c + 30, c + 30, c + 35))
    elif kind == 1:
        top = int(h2 * rng.uniform(0.55, 0.75))
        x0 = int(rng.uniform(-0.6, 0.2) * w2)
        x1 = x0 + int(w2 * rng.uniform(1.0, 1.8))
        col = tuple(int(c) for c in rng.integers(20, 220, 3))
        d.rounded_rectangle((x0, top, x1, h2 + 20), radius=w2 // 8, fill=col)
        d.rectangle((x0 + 8, top + 6, x1 - 8, top + (h2 - top) // 3), fill=(60, 75, 90))
        d.ellipse((x0 + 10, h2 - 22, x0 + 50, h2 + 18), fill=(20, 20, 20))
    elif kind == 2:
        other = sample_identity(rng)
        s = h2 * rng.uniform(0.95, 1.2)
        cx = w2 * (0.5 + rng.choice((-1, 1)) * rng.uniform(0.55, 0.85))
        view = VIEWS[int(rng.integers(3))]
        rgb, mask, _ = _person_layer(other, view, int(rng.choice((-1, 1))),
                                     float(rng.uniform(0, 2 * math.pi)), cx,
                                     (h2 - s) / 2 + rng.normal(0, 0.04 * h2), s, h2, w2, light)
        arr = np.asarray(img, dtype=np.float32)
        arr = np.where(mask[..., None], rgb, arr)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    else:
        y = int(h2 * rng.uniform(0.6, 0.8))
        x = int(rng.uniform(-0.3, 0.6) * w2)
        g = (int(rng.integers(40, 80)), int(rng.integers(80, 120)), int(rng.integers(40, 70)))
        d.ellipse((x, y, x + int(w2 * 0.8), h2 + 40), fill=g)
    return img


def _finish(img: Image.Image, rng: np.random.Generator, cam: Camera, brightness: float,
            h: int, w: int) -> bytes:
    """Downsample, camera optics, illumination, sensor noise and JPEG compression."""
    img = img.reduce(2) if img.size != (w, h) else img
    if cam.lowres > 1.0:
        f = cam.lowres * rng.uniform(0.9, 1.1)
        img = img.resize((max(8, int(w / f)), max(8, int(h / f))), Image.Resampling.BILINEAR)
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    radius = cam.blur + rng.uniform(0.0, 0.35)
    if rng.random() < 0.08:
        img = img.filter(_MOTION)
    elif radius > 0.2:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    gains = np.asarray(cam.gains) * (1.0 + rng.normal(0.0, 0.025, 3))
    gamma = cam.gamma * rng.uniform(0.95, 1.05)
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = [
        np.clip(255.0 * np.clip(x * brightness * g, 0.0, 1.0) ** gamma, 0, 255).astype(np.uint8)
        for g in gains
    ]
    img = img.point(np.concatenate(lut).tolist())
    arr = np.asarray(img, dtype=np.float32)
    sigma = cam.noise * rng.uniform(0.7, 1.3)
    arr = arr + rng.standard_normal(arr.shape, dtype=np.float32) * sigma
    out = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=int(rng.integers(70, 96)))
    return buf.getvalue()


def render_image(
    seed: int, kind: int, pid: int, cam: int, index: int, ident: Identity | None,
    size: tuple[int, int] = (128, 64),
) -> bytes:
    """JPEG bytes of one image, a pure function of its arguments.

    ``kind`` is IDENTITY, DISTRACTOR or JUNK; distractors and junk draw their own random
    person. The track stream (shared by one identity's images in one camera) fixes walking
    direction, position in the scene and light; the image stream varies the rest.
    """
    h, w = size
    h2, w2 = 2 * h, 2 * w
    camera = _camera(seed, cam)
    scene = _scene(seed, cam, h2, w2)
    track = stream(seed, TRACK, kind, max(pid, 0), cam, 0 if kind == IDENTITY else index)
    rng = stream(seed, IMAGE, kind, max(pid, 0), cam, index)
    if ident is None:
        ident = sample_identity(track)
    track_view = VIEWS[int(track.choice(3, p=camera.view_probs))]
    facing = int(track.choice((-1, 1)))
    sx = int(track.integers(0, scene.shape[1] - w2))
    brightness = camera.brightness * track.uniform(0.88, 1.12) * rng.uniform(0.94, 1.06)
    light = camera.light + track.normal(0, 0.2)

    view = track_view if rng.random() < 0.8 else VIEWS[int(rng.integers(3))]
    x0 = int(np.clip(sx + rng.normal(0, w2 * 0.4), 0, scene.shape[1] - w2))
    y0_bg = int(rng.integers(0, scene.shape[0] - h2 + 1))
    bg = scene[y0_bg : y0_bg + h2, x0 : x0 + w2].astype(np.float32)
    if rng.random() < 0.5:
        bg = bg[:, ::-1]

    # Detector-like box: usually tight, sometimes cutting limbs off or off-centre.
    fill = ident.height * rng.uniform(0.82, 0.96)
    dx, dy = rng.normal(0, 0.06 * w2), rng.normal(0, 0.03 * h2)
    junk_mode = int(rng.choice(3, p=(0.4, 0.35, 0.25))) if kind == JUNK else -1
    if kind != JUNK and rng.random() < 0.12:
        fill *= rng.uniform(1.05, 1.3)
        dy += rng.normal(0, 0.08 * h2)
        dx += rng.normal(0, 0.1 * w2)
    if junk_mode == 1:  # a fragment: zoomed in on part of a body
        fill = rng.uniform(1.8, 3.5)
        dy = rng.uniform(-1.0, 1.0) * fill * h2 * 0.4
        dx = rng.normal(0, 0.3 * w2)
    elif junk_mode == 2:  # a small or mostly outside person
        fill = rng.uniform(0.35, 0.7)
        dx = rng.choice((-1, 1)) * rng.uniform(0.25, 0.6) * w2
        dy = rng.uniform(-0.3, 0.3) * h2
    s = fill * h2
    cx, y0 = w2 / 2 + dx, (h2 - s) / 2 + dy
    phase = float(rng.uniform(0, 2 * math.pi))

    if junk_mode != 0:
        _shadow(bg, cx, y0 + 0.985 * s, s)
        rgb, mask, _ = _person_layer(ident, view, facing, phase, cx, y0, s, h2, w2, light)
        bg = np.where(mask[..., None], rgb, bg)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    if rng.random() < (0.18 if kind != JUNK else 0.3):
        img = _occluder(img, rng, seed, w2, h2, light)
    return _finish(img, rng, camera, float(brightness), h, w)
