"""Compositing people into a picture: colouring label maps, shadows, and occluders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from genreid.data.synthetic import body
from genreid.data.synthetic.body import SHADE, Placement
from genreid.data.synthetic.identity import Identity, sample_identity

VIEWS = ("front", "back", "side")


_SHADE_OF = np.ones(body.NUM_LABELS, dtype=np.float32)  # label offset -> brightness factor
for _offset, _k in SHADE.items():
    _SHADE_OF[_offset] = _k


def _lut(ident: Identity) -> np.ndarray:
    """Label -> RGB (float32); far-side and arm labels are darker copies."""
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
        for offset, k in SHADE.items():
            lut[label + offset] = np.asarray(c, dtype=np.float32) * k
    return lut


def colorize(
    labels: np.ndarray,
    ident: Identity,
    at: Placement,
    light: float,
    ox: int,
    oy: int,
    fabric: tuple[Fabric, np.random.Generator] | None = None,
) -> np.ndarray:
    """RGB (uint8) of a label crop whose top-left canvas pixel is (ox, oy): pattern, shading."""
    rgb = _lut(ident)[labels]
    pattern = ident.upper_pattern
    if pattern in ("stripes", "checks", "two_tone"):
        ys, xs = np.nonzero((labels & 15) == body.UPPER)
        v = (ys.astype(np.float32) + (oy - at.y0)) / at.s
        period = ident.pattern_scale
        if pattern == "stripes":
            sel = np.mod((v - 0.16) / period, 1.0) < 0.45
        elif pattern == "checks":
            u = (xs.astype(np.float32) + (ox - at.cx)) / at.s
            sel = (np.mod(v / period, 1.0) < 0.25) | (np.mod(u / period, 1.0) < 0.25)
        else:
            sel = (v > 0.34) if period > 0.0525 else (v < 0.3)
        c2 = np.asarray(ident.upper_color2, dtype=np.float32)
        shade = _SHADE_OF[labels[ys[sel], xs[sel]] & 0xF0][:, None]
        rgb[ys[sel], xs[sel]] = c2 * shade
    if fabric is not None:
        weave(rgb, labels, *fabric)
    h, w = labels.shape
    x = (np.arange(ox, ox + w, dtype=np.float32) - at.cx) / (0.14 * at.s * ident.width)
    x -= light * 0.6
    col = 1.08 - 0.3 * np.minimum(x * x, 1.6)
    y = (np.arange(oy, oy + h, dtype=np.float32) - at.y0) / at.s
    row = 1.0 - 0.12 * np.clip(y - 0.5, 0.0, 0.5)
    rgb *= col[None, :, None] * row[:, None, None]
    np.minimum(rgb, 255.0, out=rgb)
    return rgb.astype(np.uint8)


@dataclass(frozen=True, slots=True)
class Fabric:
    """Garment texture of one identity: grain strength and cell size (canvas pixels) per part."""

    upper: tuple[float, int]
    lower: tuple[float, int]

    @staticmethod
    def sample(rng: np.random.Generator) -> Fabric:
        """Smooth cloth, fine grain (knit, denim) or coarse weave, for top and bottom."""

        def one() -> tuple[float, int]:
            kind = int(rng.integers(3))  # the canvas is twice the image size: cell 2 = 1 px
            if kind == 0:
                return float(rng.uniform(0.02, 0.06)), 6
            return float(rng.uniform(0.1, 0.25)), (2 if kind == 1 else int(rng.integers(4, 7)))

        return Fabric(one(), one())


_FABRIC_PART = {body.UPPER: "upper", body.UPPER2: "upper", body.LOWER: "lower"}


def weave(rgb: np.ndarray, labels: np.ndarray, fabric: Fabric, rng: np.random.Generator) -> None:
    """Multiply garment pixels by fabric grain (in place): 1 +- strength, at the part's scale."""
    h, w = labels.shape
    parts = labels & 15
    for part in ("upper", "lower"):
        strength, cell = getattr(fabric, part)
        sel = np.isin(parts, [k for k, v in _FABRIC_PART.items() if v == part])
        if not sel.any():
            continue
        grid = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
        field = np.kron(grid, np.ones((cell, cell), np.float32))[:h, :w]
        rgb[sel] *= (1.0 + strength * (2.0 * field[sel] - 1.0))[:, None]


def paste_person(
    img: Image.Image,
    ident: Identity,
    view: str,
    facing: int,
    phase: float,
    cx: float,
    y0: float,
    s: float,
    light: float,
    turn: float = 0.0,
    fabric: tuple[Fabric, np.random.Generator] | None = None,
    widen: float = 1.0,
) -> None:
    """Draw ``ident`` over ``img`` (in place): label map, colouring, then a masked paste.

    ``turn``: a three-quarter view (see ``body.draw_person``); ``fabric``: garment texture
    and the generator its grain is drawn from; ``widen``: the body stretched sideways.
    """
    canvas = Image.new("L", img.size, 0)
    draw = ImageDraw.Draw(canvas)
    at = body.draw_person(draw, ident, view, facing, phase, cx, y0, s, turn, widen)
    box = canvas.getbbox()
    if box is None:
        return
    labels = np.asarray(canvas.crop(box))
    rgb = colorize(labels, ident, at, light, box[0], box[1], fabric)
    mask = Image.fromarray(((labels > 0) * 255).astype(np.uint8))
    img.paste(Image.fromarray(rgb), box[:2], mask)


def shadow(img: np.ndarray, cx: float, fy: float, s: float) -> None:
    """Soft ground shadow under the feet, in place on a uint8 array (only its window)."""
    h, w, _ = img.shape
    rx, ry = 0.17 * s, 0.03 * s
    x0, x1 = max(0, int(cx - 2 * rx)), min(w, int(cx + 2 * rx) + 1)
    y0, y1 = max(0, int(fy - 2.5 * ry)), min(h, int(fy + 2.5 * ry) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    x = ((np.arange(x0, x1, dtype=np.float32) - cx) / rx) ** 2
    y = ((np.arange(y0, y1, dtype=np.float32) - fy) / ry) ** 2
    f = 1.0 - 0.35 * np.exp(-1.5 * (y[:, None] + x[None, :]))
    win = img[y0:y1, x0:x1]
    win[...] = (win * f[..., None]).astype(np.uint8)


def occluder(img: Image.Image, rng: np.random.Generator, w2: int, h2: int, light: float) -> None:
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
        d.rectangle((x0 + 8, top + 6, x1 - 8, top + max(6, (h2 - top) // 3)), fill=(60, 75, 90))
        d.ellipse((x0 + 10, h2 - 22, x0 + 50, h2 + 18), fill=(20, 20, 20))
    elif kind == 2:
        other = sample_identity(rng)
        s = h2 * rng.uniform(0.95, 1.2)
        cx = w2 * (0.5 + rng.choice((-1, 1)) * rng.uniform(0.55, 0.85))
        view = VIEWS[int(rng.integers(3))]
        facing = int(rng.choice((-1, 1)))
        phase = float(rng.uniform(0, 2 * math.pi))
        y0 = (h2 - s) / 2 + rng.normal(0, 0.04 * h2)
        paste_person(img, other, view, facing, phase, cx, y0, s, light)
    else:
        y = int(h2 * rng.uniform(0.6, 0.8))
        x = int(rng.uniform(-0.3, 0.6) * w2)
        g = (int(rng.integers(40, 80)), int(rng.integers(80, 120)), int(rng.integers(40, 70)))
        d.ellipse((x, y, x + int(w2 * 0.8), h2 + 40), fill=g)


def relight(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Uneven light over the whole picture: a gradient from one side and, in about a third of
    the pictures, the soft edge of a cast shadow (a building's or a tree's) across it."""
    arr = np.asarray(img, dtype=np.float32)
    h, w, _ = arr.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    angle = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + rng.uniform(0.1, 0.45) * (x * math.cos(angle) + y * math.sin(angle))
    if rng.random() < 0.35:
        a = rng.uniform(0, 2 * math.pi)
        d = x * math.cos(a) + y * math.sin(a) - rng.uniform(-0.35, 0.35)
        edge = 1.0 / (1.0 + np.exp(-d / rng.uniform(0.01, 0.06)))
        gain *= 1.0 - rng.uniform(0.25, 0.5) * edge
    arr *= gain[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
