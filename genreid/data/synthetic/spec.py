"""A synthetic set as pipelines ask for it (``ids``, ``cams``, ``seed``), and whether a folder
already holds exactly that render (pipelines reuse it instead of rendering again)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genreid.data.synthetic.style import RenderStyle
from genreid.data.synthetic.writer import IMAGES_PER_ID, MANIFEST, render_dataset


@dataclass
class SyntheticSpec:
    """Built-in synthetic pedestrians to render first (``ids`` > 0), instead of a ``root``."""

    ids: int = 0
    cams: int = 6
    seed: int = 0
    size: list[int] = field(default_factory=lambda: [128, 64])  # [height, width]
    style: RenderStyle = field(default_factory=RenderStyle)  # renderer features beyond the original
    images_per_id: float = IMAGES_PER_ID  # mean images of an identity (Market-1501: about 17)

    def arguments(self) -> dict[str, Any]:
        """The render's identifying arguments, as its manifest records them."""
        args = {"ids": self.ids, "cams": self.cams, "seed": self.seed, "size": list(self.size)}
        if self.images_per_id != IMAGES_PER_ID:
            args["images_per_id"] = self.images_per_id
        if self.style.changes():
            args["style"] = self.style.changes()
        return args

    def render(self, root: str | Path, progress: bool = True) -> dict[str, Any]:
        """Render this set into ``root`` (``render_dataset``'s statistics)."""
        return render_dataset(
            root, ids=self.ids, cams=self.cams, seed=self.seed, size=tuple(self.size),
            progress=progress, style=self.style, images_per_id=self.images_per_id,
        )  # fmt: skip


def render_arguments(root: str | Path) -> dict[str, Any] | None:
    """The arguments of a complete render in ``root`` (None: none, or one cut short)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    return manifest["arguments"] if manifest.get("complete") else None


def holds_render(root: str | Path, spec: SyntheticSpec) -> bool:
    """``root`` holds a complete render of ``spec`` (at the default identity and junk rates)."""
    args = render_arguments(root)
    if args is None or args.get("style", {}) != spec.arguments().get("style", {}):
        return False
    if args.get("images_per_id", IMAGES_PER_ID) != spec.images_per_id:
        return False
    return all(args.get(k) == v for k, v in spec.arguments().items())
