"""Procedural synthetic pedestrians in the Market-1501 layout, for tests, demos and smoke runs."""

from genreid.data.synthetic.preview import write_preview
from genreid.data.synthetic.style import RenderStyle
from genreid.data.synthetic.writer import render_dataset

__all__ = ["RenderStyle", "render_dataset", "write_preview"]
