"""Optional renderer features measured for pretraining transfer (all off: renderer 1's bytes).

Each feature draws from its own random streams (tag STYLE), so switching one on leaves the
draws of everything else as they were and an ablation changes one thing at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from genreid.data.errors import DatasetError

DEFAULT_OCCLUSION = 0.18


@dataclass(frozen=True)
class RenderStyle:
    """What the renderer adds to the original look of its pedestrians."""

    fresh_noise: bool = False  # a new sensor-noise field per image, not windows of one bank
    three_quarter: bool = False  # half the front/back views turned a quarter towards a side
    texture: bool = False  # fabric grain on garments, its strength and scale per identity
    lighting: bool = False  # a light gradient across each image and, sometimes, a cast shadow
    occlusion: float = DEFAULT_OCCLUSION  # share of identity images with something in front
    camera: float = 1.0  # how far cameras (and tracks) differ in exposure, colour cast,
    # gamma and saturation: the original spread x this
    width: float = 1.0  # body width x this (x U(0.9, 1.1) per image): real crops' people are
    # wider than the original renderer's (VIPeR's, stretched from 48 to 64 pixels, even more)

    def changes(self) -> dict[str, Any]:
        """The features that differ from the default (empty: the original renderer)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}  # fmt: skip

    def check(self) -> None:
        if not 0.0 <= self.occlusion <= 1.0:
            raise DatasetError(
                f"style.occlusion must be a share in [0, 1], got {self.occlusion}; "
                f"the original renderer uses {DEFAULT_OCCLUSION}"
            )
        if not 0.0 <= self.camera <= 3.0:
            raise DatasetError(
                f"style.camera must be a spread factor in [0, 3], got {self.camera}; "
                "the original renderer uses 1"
            )
        if not 0.5 <= self.width <= 2.0:
            raise DatasetError(
                f"style.width must be a body-width factor in [0.5, 2], got {self.width}; "
                "the original renderer uses 1"
            )

    @classmethod
    def from_changes(cls, changes: dict[str, Any] | None) -> RenderStyle:
        """The style a manifest's ``style`` entry describes (None or {}: the default)."""
        return cls(**(changes or {}))
