"""Independent random streams keyed by what they are for, so output never depends on order."""

from __future__ import annotations

import numpy as np

# Stream tags: different tags never collide, whatever the other key values are.
PLAN, CAMERA, TRACK, IMAGE, STYLE = 0, 1, 2, 3, 4
# Image kinds, part of the image key (junk has pid -1, which a SeedSequence cannot take).
IDENTITY, DISTRACTOR, JUNK = 0, 1, 2


def stream(seed: int, tag: int, *key: int) -> np.random.Generator:
    """A generator for (seed, tag, *key); the same key always gives the same numbers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, tag, *key])))
