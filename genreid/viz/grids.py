"""Image grids: sheets of generated (and real) images for figures and TensorBoard, with rows
named real or generated where both are shown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (BxCxHxW) -> uint8 BxHxWxC on the CPU."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def to_pil(image: torch.Tensor, size: tuple[int, int] | None = None) -> Image.Image:
    """One image in [-1, 1] (CxHxW) -> PIL, resized bilinearly to ``size`` (H, W) when given."""
    img = Image.fromarray(to_uint8(image[None])[0].numpy())
    if size is not None and (img.height, img.width) != tuple(size):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return img


def grid_image(images: torch.Tensor, nrow: int = 8) -> Image.Image:
    """A sheet of images in [-1, 1], ``nrow`` per row, 2-pixel white gaps."""
    n, _, h, w = images.shape
    cols = max(1, min(nrow, n))
    rows = math.ceil(n / cols)
    pad = 2
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), (255, 255, 255))
    arrays = to_uint8(images).numpy()
    for i, arr in enumerate(arrays):
        r, c = divmod(i, cols)
        sheet.paste(Image.fromarray(arr), (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write :func:`grid_image` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(images, nrow).save(path)
    return path


Box = tuple[int, int, int, int]  # left, top, right, bottom (PIL's crop box)
LABEL_COLORS = {"real": (43, 108, 176), "generated": (215, 48, 39)}


def _label_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def labelled_grid(
    rows: Sequence[tuple[str, Sequence[Image.Image]]],
    cols: int,
    tile: tuple[int, int],
    pad: int = 2,
) -> tuple[Image.Image, list[list[Box]]]:
    """A sheet of rows of images, each row named at its left (``real``, ``generated``, ...).

    Every image must be ``tile`` (H, W) in size; it is pasted unchanged, so a tile cropped at
    its box equals the image. Returns the sheet and each row's tile boxes. A label that starts
    with ``real`` or ``generated`` is drawn in that kind's colour.
    """
    h, w = tile
    font = _label_font()
    draw_probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max([draw_probe.textlength(name, font=font) for name, _ in rows] + [0.0])
    left = int(math.ceil(label_w)) + 3 * pad
    sheet = Image.new(
        "RGB", (left + cols * (w + pad) + pad, len(rows) * (h + pad) + pad), (255, 255, 255)
    )
    draw = ImageDraw.Draw(sheet)
    boxes: list[list[Box]] = []
    for r, (name, images) in enumerate(rows):
        top = pad + r * (h + pad)
        color = next((v for k, v in LABEL_COLORS.items() if name.startswith(k)), (40, 40, 40))
        draw.text((pad, top + h / 2), name, fill=color, font=font, anchor="lm")
        row_boxes = []
        for c, img in enumerate(list(images)[:cols]):
            if (img.height, img.width) != (h, w):
                raise ValueError(
                    f"tile {c} of row {name!r} is {img.height}x{img.width}, not {h}x{w}"
                )
            box = (left + c * (w + pad), top, left + c * (w + pad) + w, top + h)
            sheet.paste(img.convert("RGB"), box[:2])
            row_boxes.append(box)
        boxes.append(row_boxes)
    return sheet, boxes
