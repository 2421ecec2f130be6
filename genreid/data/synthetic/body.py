"""Drawing a pedestrian as a part-label map (skin, hair, garments, bag...) with PIL.

Coordinates are in body units: ``v`` runs from the top of the head (0) to the soles (1),
``u`` sideways in the same unit (the person's right for front/back views, forward for side
views). The label map is coloured later, so patterns and shading are vectorised numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import ImageDraw

from genreid.data.synthetic.identity import Identity

# Part labels; FAR is added for limbs on the far side of the body (drawn darker), ARM for
# arms (a little darker, so that a sleeve stands out against a torso of the same colour).
BG, SKIN, HAIR, UPPER, UPPER2, LOWER, SHOES, BAG, STRAP, HAT, DARK = range(11)
FAR, ARM = 16, 32
SHADE = {0: 1.0, FAR: 0.72, ARM: 0.86, FAR + ARM: 0.64}
NUM_LABELS = 64


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the body sits in the canvas: centre x, top y and height in pixels, and mirroring."""

    cx: float
    y0: float
    s: float
    mirror: int  # image x = cx + mirror * u * s * squash
    squash: float = 1.0  # < 1: a body turned away from the camera looks narrower


class Painter:
    """Draws body-unit shapes into a label image."""

    def __init__(self, draw: ImageDraw.ImageDraw, at: Placement) -> None:
        self.d = draw
        self.at = at

    def p(self, u: float, v: float) -> tuple[float, float]:
        """Body units to canvas pixels."""
        at = self.at
        return (at.cx + at.mirror * u * at.s * at.squash, at.y0 + v * at.s)

    def poly(self, pts: list[tuple[float, float]], label: int) -> None:
        """Filled polygon."""
        self.d.polygon([self.p(u, v) for u, v in pts], fill=label)

    def ellipse(self, cu: float, cv: float, ru: float, rv: float, label: int) -> None:
        """Filled axis-aligned ellipse (centre, radii)."""
        x, y = self.p(cu, cv)
        rx, ry = ru * self.at.s * self.at.squash, rv * self.at.s
        self.d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=label)

    def arc(self, cu, cv, ru, rv, t0: float, t1: float, label: int, n: int = 14) -> None:
        """Filled chord of an ellipse between angles t0..t1 (degrees, 0 = +u, 90 = up)."""
        pts = []
        for i in range(n + 1):
            t = math.radians(t0 + (t1 - t0) * i / n)
            pts.append((cu + ru * math.cos(t), cv - rv * math.sin(t)))
        self.poly(pts, label)

    def limb(self, a, b, wa: float, wb: float, label: int, cap: bool = True) -> None:
        """A tapered segment from a to b (widths wa, wb), with a round cap at b."""
        du, dv = b[0] - a[0], b[1] - a[1]
        n = math.hypot(du, dv) or 1e-6
        pu, pv = -dv / n, du / n
        self.poly(
            [
                (a[0] + pu * wa / 2, a[1] + pv * wa / 2),
                (b[0] + pu * wb / 2, b[1] + pv * wb / 2),
                (b[0] - pu * wb / 2, b[1] - pv * wb / 2),
                (a[0] - pu * wa / 2, a[1] - pv * wa / 2),
            ],
            label,
        )
        if cap:
            self.ellipse(b[0], b[1], wb / 2, wb / 2, label)


def _lerp(a, b, t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _leg(pt: Painter, ident: Identity, hip, knee, ankle, w: float, far: int, side: bool) -> None:
    """One leg: skin or trousers, shorts hem, shoe."""
    cloth = LOWER + far
    skin = SKIN + far
    full = ident.lower_kind == "trousers"
    pt.limb(hip, knee, 0.078 * w, 0.058 * w, cloth if full else skin)
    pt.limb(knee, ankle, 0.058 * w, 0.042 * w, cloth if full else skin)
    if ident.lower_kind == "shorts":
        pt.limb(hip, _lerp(hip, knee, 0.75), 0.084 * w, 0.07 * w, cloth, cap=False)
    if side:
        pt.ellipse(ankle[0] + 0.024, ankle[1] + 0.016, 0.045, 0.019, SHOES + far)
    else:
        pt.ellipse(ankle[0], ankle[1] + 0.018, 0.03, 0.02, SHOES + far)


def _arm(pt: Painter, ident: Identity, sh, el, wr, w: float, far: int) -> None:
    """One arm: skin, sleeve to the elbow or wrist, hand."""
    pt.limb(sh, el, 0.05 * w, 0.042 * w, SKIN + far)
    pt.limb(el, wr, 0.042 * w, 0.036 * w, SKIN + far)
    pt.ellipse(wr[0], wr[1] + 0.012, 0.019, 0.023, SKIN + far)
    if ident.sleeves == "long":
        pt.limb(sh, el, 0.056 * w, 0.048 * w, UPPER + far)
        pt.limb(el, wr, 0.048 * w, 0.042 * w, UPPER + far, cap=False)
    else:
        pt.limb(sh, _lerp(sh, el, 0.6), 0.058 * w, 0.052 * w, UPPER + far, cap=False)


def _handbag(pt: Painter, ident: Identity, wr, far: int) -> None:
    """A bag with two handles hanging from the wrist ``wr``."""
    u, v = wr
    pt.limb((u - 0.02, v + 0.05), (u, v + 0.01), 0.008, 0.008, STRAP + far, cap=False)
    pt.limb((u + 0.02, v + 0.05), (u, v + 0.01), 0.008, 0.008, STRAP + far, cap=False)
    pt.poly(
        [(u - 0.05, v + 0.05), (u + 0.05, v + 0.05), (u + 0.056, v + 0.13), (u - 0.056, v + 0.13)],
        BAG + far,
    )


def _hair_panel(pt: Painter, ident: Identity) -> None:
    """Medium or long hair hanging behind the head (over the back when seen from behind)."""
    if ident.hair_length != "short":
        low = 0.165 if ident.hair_length == "medium" else 0.27
        pt.poly(
            [
                (-0.05, 0.05),
                (0.05, 0.05),
                (0.062, low - 0.03),
                (0.045, low),
                (-0.045, low),
                (-0.062, low - 0.03),
            ],
            HAIR,
        )


def _head_front(pt: Painter, ident: Identity, back: bool, turn: float = 0.0) -> None:
    """Head, hair and hat seen from the front or the back; ``turn`` moves the face sideways."""
    if back:
        _hair_panel(pt, ident)
    pt.poly([(-0.021, 0.11), (0.021, 0.11), (0.023, 0.17), (-0.023, 0.17)], SKIN)
    if back:
        pt.ellipse(0, 0.07, 0.049, 0.062, HAIR)
    else:
        f = 0.03 * turn  # the face slides towards the side the person turns to
        pt.ellipse(0, 0.065, 0.05, 0.058, HAIR)
        pt.ellipse(f, 0.08, 0.044 - 0.01 * abs(turn), 0.054, SKIN)
        for eye in (-1, 1):
            if eye * turn > -0.5:  # the far eye hides behind the nose when turned well away
                pt.ellipse(eye * 0.018 + 1.3 * f, 0.077, 0.0065, 0.0055, DARK)
        pt.ellipse(1.3 * f, 0.112, 0.012, 0.004, SKIN + FAR)  # mouth shadow
    if ident.hat == "cap":
        pt.arc(0, 0.058, 0.053, 0.05, -5, 185, HAT)
        if not back:
            pt.ellipse(0, 0.058, 0.05, 0.011, HAT + FAR)
    elif ident.hat == "beanie":
        pt.arc(0, 0.066, 0.054, 0.064, -8, 188, HAT)


def _head_side(pt: Painter, ident: Identity) -> None:
    """Head in profile facing +u: face in front, hair over the top and back."""
    if ident.hair_length != "short":
        low = 0.16 if ident.hair_length == "medium" else 0.26
        pt.poly([(-0.058, 0.05), (-0.005, 0.05), (-0.015, low), (-0.062, low)], HAIR)
    pt.poly([(-0.02, 0.11), (0.02, 0.11), (0.022, 0.17), (-0.022, 0.17)], SKIN)
    pt.ellipse(0.006, 0.073, 0.05, 0.06, SKIN)
    pt.ellipse(0.052, 0.082, 0.011, 0.011, SKIN)  # nose
    pt.arc(0.002, 0.07, 0.055, 0.066, 40, 250, HAIR)
    pt.ellipse(0.034, 0.072, 0.006, 0.0055, DARK)
    if ident.hat == "cap":
        pt.arc(0.002, 0.058, 0.056, 0.05, -5, 185, HAT)
        pt.poly([(0.03, 0.05), (0.11, 0.056), (0.108, 0.064), (0.03, 0.062)], HAT + FAR)
    elif ident.hat == "beanie":
        pt.arc(0.002, 0.066, 0.058, 0.064, -8, 188, HAT)


def draw_front_back(
    pt: Painter, ident: Identity, back: bool, phase: float, turn: float = 0.0
) -> None:
    """Whole body seen from the front (``back=False``) or from behind.

    ``turn`` (-1..1, 0: square to the camera) is a three-quarter view: the arm on the far
    side is drawn darker and behind the torso, the face slides towards the near side.
    """
    w = ident.width
    sh, wa, hp = 0.105 * w, 0.085 * w, 0.09 * w
    sw = math.sin(phase)
    if not back:
        _hair_panel(pt, ident)  # behind the body: shows beside the neck only
    # legs: slight stride shows as one foot lifted and the legs a little apart
    for side in (-1, 1):
        lift = 0.03 * max(0.0, side * sw)
        hip = (side * 0.047 * w, 0.53)
        ankle = (side * 0.052 * w, 0.948 - lift)
        knee = (side * 0.05 * w, 0.74 - lift / 2)
        _leg(pt, ident, hip, knee, ankle, w, 0, side=False)
    pt.poly(
        [(-hp, 0.46), (hp, 0.46), (hp + 0.004, 0.57), (-hp - 0.004, 0.57)],
        LOWER if ident.lower_kind != "skirt" else SKIN,
    )
    if ident.lower_kind == "skirt":
        pt.poly([(-wa, 0.46), (wa, 0.46), (hp + 0.04, 0.7), (-hp - 0.04, 0.7)], LOWER)
    if turn != 0.0:  # the far arm, darker, half hidden by the torso
        side = -1 if turn > 0 else 1
        k = abs(math.sin(phase)) * 0.025
        shoulder, elbow = (side * (sh - 0.03), 0.19), (side * (sh - 0.004), 0.335 - k)
        wrist = (side * (sh + 0.004), 0.47 - 2 * k)
        _arm(pt, ident, shoulder, elbow, wrist, w, FAR + ARM)
        if ident.bag == "handbag" and side == ident.bag_side:
            _handbag(pt, ident, wrist, FAR)
    torso = [
        (-sh + 0.03, 0.155),
        (sh - 0.03, 0.155),
        (sh, 0.19),
        (wa + 0.005, 0.5),
        (-wa - 0.005, 0.5),
        (-sh, 0.19),
    ]
    pt.poly(torso, UPPER)
    if not back:
        pt.ellipse(0, 0.158, 0.026, 0.013, SKIN)  # neckline
        if ident.upper_pattern == "logo":
            pt.ellipse(0.0, 0.285, 0.035, 0.03, UPPER2)
    bs = ident.bag_side
    if ident.bag == "backpack":
        if back:
            pt.poly([(-0.08 * w, 0.2), (0.08 * w, 0.2), (0.085 * w, 0.44), (-0.085 * w, 0.44)], BAG)
            pt.poly([(-0.055, 0.35), (0.055, 0.35), (0.058, 0.43), (-0.058, 0.43)], STRAP)
        else:
            for side in (-1, 1):
                pt.limb((side * 0.06 * w, 0.16), (side * 0.065 * w, 0.34), 0.022, 0.02, STRAP)
    elif ident.bag == "shoulder":
        pt.limb((bs * 0.07 * w, 0.16), (-bs * 0.09 * w, 0.45), 0.014, 0.014, STRAP, cap=False)
        pt.poly(
            [
                (-bs * 0.04, 0.42),
                (-bs * 0.15 * w, 0.42),
                (-bs * 0.155 * w, 0.53),
                (-bs * 0.035, 0.53),
            ],
            BAG,
        )
    # arms swing a little: shorter when reaching forward or back
    for side in (-1, 1):
        if turn * side < 0:  # the far arm: drawn behind the torso (see below)
            continue
        k = abs(math.sin(phase)) * 0.025
        shoulder = (side * (sh - 0.02), 0.19)
        elbow = (side * (sh + 0.008), 0.335 - k)
        wrist = (side * (sh + 0.018), 0.47 - 2 * k)
        _arm(pt, ident, shoulder, elbow, wrist, w, ARM)
        if ident.bag == "handbag" and side == bs:
            _handbag(pt, ident, wrist, 0)
    _head_front(pt, ident, back, turn)


def draw_side(pt: Painter, ident: Identity, phase: float, near_side: int) -> None:
    """Whole body in profile, facing +u, walking with swinging legs and arms."""
    w = ident.width
    dc = 0.062 * w
    a = 0.4 * math.sin(phase)
    legs, arms = {}, {}
    for name, ang in (("near", a), ("far", -a)):
        bend = 0.12 + 0.45 * max(0.0, -ang / 0.4)
        hip = (0.0, 0.53)
        knee = (hip[0] + 0.215 * math.sin(ang), hip[1] + 0.215 * math.cos(ang))
        ankle = (knee[0] + 0.215 * math.sin(ang - bend), knee[1] + 0.215 * math.cos(ang - bend))
        legs[name] = (hip, knee, ankle)
        b = -0.75 * ang
        sh = (-0.005, 0.19)
        el = (sh[0] + 0.15 * math.sin(b), sh[1] + 0.15 * math.cos(b))
        wr = (el[0] + 0.135 * math.sin(b + 0.3), el[1] + 0.135 * math.cos(b + 0.3))
        arms[name] = (sh, el, wr)
    bag_near = ident.bag_side == near_side
    _arm(pt, ident, *arms["far"], w, FAR + ARM)
    if ident.bag == "handbag" and not bag_near:
        _handbag(pt, ident, arms["far"][2], FAR)
    _leg(pt, ident, *legs["far"], w, FAR, side=True)
    if ident.bag == "shoulder" and bag_near:  # cross-body: bag hangs on the far hip
        pt.poly([(-0.085, 0.42), (0.0, 0.42), (0.0, 0.53), (-0.088, 0.53)], BAG + FAR)
    _leg(pt, ident, *legs["near"], w, 0, side=True)
    pt.poly(
        [(-dc, 0.46), (dc, 0.46), (dc + 0.006, 0.58), (-dc - 0.004, 0.58)],
        LOWER if ident.lower_kind != "skirt" else SKIN,
    )
    if ident.lower_kind == "skirt":
        pt.poly([(-dc, 0.46), (dc, 0.46), (dc + 0.05, 0.7), (-dc - 0.04, 0.7)], LOWER)
    torso = [
        (-dc + 0.012, 0.155),
        (dc - 0.01, 0.155),
        (dc + 0.01, 0.24),
        (dc + 0.004, 0.36),
        (dc - 0.004, 0.5),
        (-dc + 0.002, 0.5),
        (-dc - 0.006, 0.3),
        (-dc, 0.2),
    ]
    pt.poly(torso, UPPER)
    if ident.bag == "backpack":
        pt.poly(
            [(-dc - 0.075, 0.2), (-dc + 0.01, 0.19), (-dc + 0.01, 0.44), (-dc - 0.08, 0.45)], BAG
        )
        pt.limb((-0.01, 0.165), (dc - 0.01, 0.3), 0.016, 0.014, STRAP, cap=False)
    elif ident.bag == "shoulder":
        pt.limb((0.0, 0.16), (-dc * 0.6, 0.46), 0.013, 0.013, STRAP, cap=False)
        if not bag_near:
            pt.poly([(-0.05, 0.42), (0.04, 0.42), (0.042, 0.53), (-0.052, 0.53)], BAG)
    _arm(pt, ident, *arms["near"], w, ARM)
    if ident.bag == "handbag" and bag_near:
        _handbag(pt, ident, arms["near"][2], 0)
    _head_side(pt, ident)


def draw_person(
    draw: ImageDraw.ImageDraw,
    ident: Identity,
    view: str,
    facing: int,
    phase: float,
    cx: float,
    y0: float,
    s: float,
    turn: float = 0.0,
    widen: float = 1.0,
) -> Placement:
    """Draw ``ident`` as labels; ``view`` is front/back/side, ``facing`` +1 right, -1 left.

    ``turn`` (front/back only, -1..1) turns the body by up to a quarter towards a side: it
    narrows (cos of the angle) and the far arm goes behind the torso. ``widen`` stretches
    the whole body sideways.
    """
    if view == "side":
        at = Placement(cx, y0, s, facing, widen)
        draw_side(Painter(draw, at), ident, phase, near_side=-facing)
    else:
        squash = (math.cos(turn * math.pi / 4) if turn else 1.0) * widen
        at = Placement(cx, y0, s, -1 if view == "front" else 1, squash)
        draw_front_back(Painter(draw, at), ident, view == "back", phase, turn)
    return at
