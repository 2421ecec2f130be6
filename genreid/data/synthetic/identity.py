"""Sampling identities: random combinations of body, clothing and accessories."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from genreid.data.synthetic import palette as pal
from genreid.data.synthetic.palette import RGB

PATTERNS = ("plain", "stripes", "checks", "two_tone", "logo")
LOWER_KINDS = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder", "handbag")
HATS = ("none", "cap", "beanie")
HAIR_LENGTHS = ("short", "medium", "long")
SLEEVES = ("short", "long")

# Attribute groups a near-duplicate identity may change (one or two of them).
_PERTURBABLE = ("build", "hair", "upper_color", "pattern", "lower", "shoes", "bag", "hat")


@dataclass(frozen=True, slots=True)
class Identity:
    """What a person looks like, independent of camera, pose and viewpoint."""

    height: float  # body height factor (about 0.9..1.05)
    width: float  # body width factor (about 0.85..1.2)
    skin: RGB
    hair_color: RGB
    hair_length: str
    upper_color: RGB
    upper_color2: RGB  # stripes, checks, second tone, logo
    upper_pattern: str
    pattern_scale: float  # stripe/check period in body heights
    sleeves: str
    lower_kind: str
    lower_color: RGB
    shoe_color: RGB
    bag: str
    bag_color: RGB
    bag_side: int  # +1 right shoulder/hand, -1 left
    hat: str
    hat_color: RGB


def _pick(rng: np.random.Generator, options: tuple, weights: tuple | None = None):
    """One element of ``options`` (optionally weighted), drawn from ``rng``."""
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, dtype=np.float64)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _jitter(rng: np.random.Generator, color: RGB, sigma: float = 7.0) -> RGB:
    """A palette colour moved slightly so that equal palette picks are near, not equal."""
    c = np.clip(np.asarray(color, dtype=np.float64) + rng.normal(0.0, sigma, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _contrast_color(rng: np.random.Generator, base: RGB) -> RGB:
    """A second garment colour that differs visibly from ``base``."""
    for _ in range(8):
        c = _pick(rng, pal.UPPER, pal.UPPER_WEIGHTS)
        if sum(abs(a - b) for a, b in zip(c, base, strict=True)) > 150:
            return _jitter(rng, c)
    return _jitter(rng, (235, 235, 232) if sum(base) < 380 else (30, 30, 34))


def _sample_group(rng: np.random.Generator, group: str, ident: dict) -> None:
    """(Re)draw one attribute group of an identity in place."""
    if group == "build":
        ident["height"] = float(rng.uniform(0.9, 1.05))
        ident["width"] = float(np.clip(rng.normal(1.0, 0.1), 0.82, 1.25))
    elif group == "skin":
        ident["skin"] = _jitter(rng, _pick(rng, pal.SKIN), 5.0)
    elif group == "hair":
        ident["hair_color"] = _jitter(rng, _pick(rng, pal.HAIR, pal.HAIR_WEIGHTS), 5.0)
        ident["hair_length"] = _pick(rng, HAIR_LENGTHS, (0.55, 0.2, 0.25))
    elif group == "upper_color":
        ident["upper_color"] = _jitter(rng, _pick(rng, pal.UPPER, pal.UPPER_WEIGHTS))
        ident["upper_color2"] = _contrast_color(rng, ident["upper_color"])
    elif group == "pattern":
        ident["upper_pattern"] = _pick(rng, PATTERNS, (0.46, 0.13, 0.11, 0.13, 0.17))
        ident["pattern_scale"] = float(rng.uniform(0.035, 0.07))
        ident["sleeves"] = _pick(rng, SLEEVES, (0.45, 0.55))
    elif group == "lower":
        ident["lower_kind"] = _pick(rng, LOWER_KINDS, (0.66, 0.19, 0.15))
        ident["lower_color"] = _jitter(rng, _pick(rng, pal.LOWER, pal.LOWER_WEIGHTS))
    elif group == "shoes":
        ident["shoe_color"] = _jitter(rng, _pick(rng, pal.SHOES, pal.SHOE_WEIGHTS), 5.0)
    elif group == "bag":
        ident["bag"] = _pick(rng, BAGS, (0.45, 0.25, 0.15, 0.15))
        ident["bag_color"] = _jitter(rng, _pick(rng, pal.BAG))
        ident["bag_side"] = int(rng.choice((-1, 1)))
    elif group == "hat":
        ident["hat"] = _pick(rng, HATS, (0.8, 0.12, 0.08))
        ident["hat_color"] = _jitter(rng, _pick(rng, pal.HAT))
    else:  # pragma: no cover - programming error
        raise KeyError(group)


def sample_identity(rng: np.random.Generator) -> Identity:
    """A fresh random identity."""
    ident: dict = {}
    for group in ("build", "skin", "hair", "upper_color", "pattern", "lower", "shoes", "bag"):
        _sample_group(rng, group, ident)
    _sample_group(rng, "hat", ident)
    return Identity(**ident)


def perturb_identity(rng: np.random.Generator, base: Identity) -> Identity:
    """A near-duplicate of ``base``: one or two attribute groups redrawn."""
    ident = {f.name: getattr(base, f.name) for f in fields(Identity)}
    groups = rng.choice(len(_PERTURBABLE), size=int(rng.integers(1, 3)), replace=False)
    for g in sorted(int(i) for i in groups):
        _sample_group(rng, _PERTURBABLE[g], ident)
    # Keep the build close to the original's, like relatives or colleagues in uniform.
    ident["height"] = float(np.clip(ident["height"] + rng.normal(0, 0.01), 0.88, 1.07))
    return replace(base, **ident)


def sample_identities(
    rng: np.random.Generator, n: int, near_duplicate_rate: float = 0.25
) -> list[Identity]:
    """``n`` identities; a share of them are perturbations of earlier ones (hard negatives)."""
    out: list[Identity] = []
    for _ in range(n):
        if out and rng.random() < near_duplicate_rate:
            out.append(perturb_identity(rng, out[int(rng.integers(len(out)))]))
        else:
            out.append(sample_identity(rng))
    return out
