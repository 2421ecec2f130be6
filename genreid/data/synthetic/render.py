"""Rendering one image: a person (or junk) seen by one camera, as JPEG bytes."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
from PIL import Image

from genreid.data.synthetic.compose import (
    VIEWS,
    Fabric,
    occluder,
    paste_person,
    relight,
    shadow,
)
from genreid.data.synthetic.identity import Identity, sample_identity
from genreid.data.synthetic.optics import finish, noise_bank
from genreid.data.synthetic.scene import BRIGHTNESS, GAMMA, Camera, make_camera, scene_image
from genreid.data.synthetic.seeding import IDENTITY, IMAGE, JUNK, STYLE, TRACK, stream
from genreid.data.synthetic.style import RenderStyle

_DEFAULT_STYLE = RenderStyle()


@lru_cache(maxsize=64)
def _camera(seed: int, cam: int) -> Camera:
    return make_camera(seed, cam)


@lru_cache(maxsize=64)
def _styled_camera(seed: int, cam: int, spread: float) -> Camera:
    """The camera with its exposure, colour cast and gamma ``spread`` times as far from the
    middle of their ranges, and a saturation of its own (``style.camera``)."""
    c = _camera(seed, cam)
    z = float(stream(seed, STYLE, 0, 0, 2, cam, 0).standard_normal())
    mid_b, mid_g = sum(BRIGHTNESS) / 2, sum(GAMMA) / 2
    return replace(
        c,
        brightness=mid_b + spread * (c.brightness - mid_b),
        gains=tuple(1.0 + spread * (g - 1.0) for g in c.gains),
        gamma=max(0.4, mid_g + spread * (c.gamma - mid_g)),
        saturation=float(np.clip(1.0 + 0.2 * (spread - 1.0) * z, 0.3, 1.7)),
    )


@lru_cache(maxsize=64)
def _scene(seed: int, cam: int, h2: int, w2: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-process cache: every image of a camera crops the same panorama (or its mirror)."""
    scene = scene_image(_camera(seed, cam), seed, h2, w2)
    return scene, np.ascontiguousarray(scene[:, ::-1])


def _detector_box(
    rng: np.random.Generator, ident: Identity, junk_mode: int, h2: int, w2: int
) -> tuple[float, float, float]:
    """Body centre x, top y and height in the canvas, as a person detector would crop it.

    Usually tight; sometimes too big or off-centre (cut-off limbs). Junk: a zoomed-in
    fragment (mode 1) or a small, mostly outside person (mode 2).
    """
    fill = ident.height * rng.uniform(0.82, 0.96)
    dx, dy = rng.normal(0, 0.06 * w2), rng.normal(0, 0.03 * h2)
    if junk_mode < 0 and rng.random() < 0.12:
        fill *= rng.uniform(1.05, 1.3)
        dy += rng.normal(0, 0.08 * h2)
        dx += rng.normal(0, 0.1 * w2)
    if junk_mode == 1:
        fill = rng.uniform(1.8, 3.5)
        dy = rng.uniform(-1.0, 1.0) * fill * h2 * 0.4
        dx = rng.normal(0, 0.3 * w2)
    elif junk_mode == 2:
        fill = rng.uniform(0.35, 0.7)
        dx = rng.choice((-1, 1)) * rng.uniform(0.25, 0.6) * w2
        dy = rng.uniform(-0.3, 0.3) * h2
    s = fill * h2
    return w2 / 2 + dx, (h2 - s) / 2 + dy, s


def render_image(
    seed: int,
    kind: int,
    pid: int,
    cam: int,
    index: int,
    ident: Identity | None,
    size: tuple[int, int] = (128, 64),
    style: RenderStyle = _DEFAULT_STYLE,
) -> bytes:
    """JPEG bytes of one image, a pure function of its arguments.

    ``kind`` is IDENTITY, DISTRACTOR or JUNK; distractors and junk draw their own random
    person. The track stream (shared by one identity's images in one camera) fixes walking
    direction, position in the scene and light; the image stream varies the rest. ``style``'s
    features draw from streams of their own: per person (fabric) and per image.
    """
    h, w = size
    h2, w2 = 2 * h, 2 * w
    camera = _camera(seed, cam) if style.camera == 1.0 else _styled_camera(seed, cam, style.camera)
    scene, mirrored = _scene(seed, cam, h2, w2)
    track = stream(seed, TRACK, kind, max(pid, 0), cam, 0 if kind == IDENTITY else index)
    rng = stream(seed, IMAGE, kind, max(pid, 0), cam, index)
    if ident is None:
        ident = sample_identity(track)
    track_view = VIEWS[int(track.choice(3, p=camera.view_probs))]
    facing = int(track.choice((-1, 1)))
    sx = int(track.integers(0, scene.shape[1] - w2))
    brightness = camera.brightness * track.uniform(0.88, 1.12) * rng.uniform(0.94, 1.06)
    if style.camera != 1.0:  # sun and shade within one camera, as far apart as its spread
        brightness = camera.brightness + style.camera * (brightness - camera.brightness)
    light = camera.light + track.normal(0, 0.2)

    view = track_view if rng.random() < 0.8 else VIEWS[int(rng.integers(3))]
    x0 = int(np.clip(sx + rng.normal(0, w2 * 0.4), 0, scene.shape[1] - w2))
    y0_bg = int(rng.integers(0, scene.shape[0] - h2 + 1))
    bg = (mirrored if rng.random() < 0.5 else scene)[y0_bg : y0_bg + h2, x0 : x0 + w2].copy()

    junk_mode = int(rng.choice(3, p=(0.4, 0.35, 0.25))) if kind == JUNK else -1
    cx, y0, s = _detector_box(rng, ident, junk_mode, h2, w2)
    phase = float(rng.uniform(0, 2 * math.pi))

    person_key = 0 if kind == IDENTITY else index
    drawn = style.three_quarter or style.texture or style.lighting or style.fresh_noise
    drawn = drawn or style.width != 1.0
    # this image's style draws (not made for the default style: the renderer's hot path)
    srng = stream(seed, STYLE, kind, max(pid, 0), 1, cam, index) if drawn else None
    turn = 0.0
    if style.three_quarter and view != "side" and srng.random() < 0.5:
        turn = facing * float(srng.uniform(0.4, 1.0))
    widen = style.width * float(srng.uniform(0.9, 1.1)) if style.width != 1.0 else 1.0
    fabric = None
    if style.texture:
        fabric = (Fabric.sample(stream(seed, STYLE, kind, max(pid, 0), 0, 0, person_key)), srng)

    if junk_mode != 0:  # junk mode 0: background only
        shadow(bg, cx, y0 + 0.985 * s, s)
    img = Image.fromarray(bg)
    if junk_mode != 0:
        paste_person(img, ident, view, facing, phase, cx, y0, s, light, turn, fabric, widen)
    if rng.random() < (0.3 if kind == JUNK else style.occlusion):
        occluder(img, rng, w2, h2, light)
    if style.lighting:
        img = relight(img, srng)
    if style.fresh_noise:
        noise = srng.standard_normal((h, w, 3), dtype=np.float32)
    else:
        noise = noise_bank(seed, h, w)
    return finish(img, rng, camera, float(brightness), h, w, noise)
