"""DG-Net figures: the swap grid (paper Fig. 1: each row keeps an appearance, each column a
structure) and the appearance interpolation strip (Fig. 5), labelled, as PIL images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from genreid.viz.grids import to_uint8

PAD = 2
LABEL_H = 12  # pixels of a caption row
GAP = 6  # between the real images and the generated ones


def _caption(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int) -> None:
    """Text centred in a box ``width`` wide at ``xy``, cut to fit (the default bitmap font)."""
    font = ImageFont.load_default()
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    w = draw.textlength(text, font=font)
    draw.text((xy[0] + (width - w) / 2, xy[1]), text, fill=(0, 0, 0), font=font)


def _paste(sheet: Image.Image, image: torch.Tensor, xy: tuple[int, int]) -> None:
    sheet.paste(Image.fromarray(to_uint8(image[None])[0].numpy()), xy)


def swap_sheet(
    appearance: torch.Tensor,
    structure: torch.Tensor,
    swapped: torch.Tensor,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
) -> Image.Image:
    """Real appearance donors down the left, real structure donors along the top, and
    ``swapped[i, j]`` = G(a_i, s_j) in row i, column j. Images in [-1, 1]: ``appearance``
    n x 3 x H x W, ``structure`` m x 3 x H x W, ``swapped`` n x m x 3 x H x W. With labels a
    caption row names each column and a caption above each row names it."""
    n, m, _, h, w = swapped.shape
    cap = LABEL_H if (row_labels or col_labels) else 0
    head = LABEL_H  # "structure ->" / "appearance" captions
    left = PAD + w + GAP
    top = head + cap + PAD + h + GAP
    width = left + m * (w + PAD)
    height = top + n * (h + cap + PAD)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    _caption(draw, (left, 0), "structure ->", m * (w + PAD))
    _caption(draw, (0, 0), "appearance", w + PAD)
    for j in range(m):
        x0 = left + j * (w + PAD)
        if col_labels:
            _caption(draw, (x0, head), col_labels[j], w)
        _paste(sheet, structure[j], (x0, head + cap + PAD))
    for i in range(n):
        y0 = top + i * (h + cap + PAD)
        if row_labels:
            _caption(draw, (PAD, y0), row_labels[i], w)
        _paste(sheet, appearance[i], (PAD, y0 + cap))
        for j in range(m):
            _paste(sheet, swapped[i, j], (left + j * (w + PAD), y0 + cap))
    return sheet


def interpolation_strip(
    start: torch.Tensor,
    end: torch.Tensor,
    frames: torch.Tensor,
    alphas: Sequence[float],
    labels: tuple[str, str] = ("A", "B"),
) -> Image.Image:
    """Rows of ``frames`` (r x k x 3 x H x W in [-1, 1]: r structures, k appearance codes
    (1 - alpha) a_A + alpha a_B) between the real images A (``start``) and B (``end``),
    captioned with alpha."""
    r, k, _, h, w = frames.shape
    width = 2 * (w + GAP) + k * (w + PAD) + PAD
    height = LABEL_H + r * (h + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    _caption(draw, (PAD, 0), labels[0], w)
    _caption(draw, (width - w - PAD, 0), labels[1], w)
    x_frames = PAD + w + GAP
    for t, alpha in enumerate(alphas):
        _caption(draw, (x_frames + t * (w + PAD), 0), f"{alpha:.2g}", w)
    for row in range(r):
        y = LABEL_H + row * (h + PAD)
        _paste(sheet, start, (PAD, y))
        for t in range(k):
            _paste(sheet, frames[row, t], (x_frames + t * (w + PAD), y))
        _paste(sheet, end, (width - w - PAD, y))
    return sheet
