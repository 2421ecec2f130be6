"""Contact sheet of a Market-layout folder: one row per identity, its images across cameras."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

_NAME = re.compile(r"(-1|\d{4})_c(\d)s\d_\d{6}_\d{2}\.jpg", re.IGNORECASE)
_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow without FreeType sizes
        return ImageFont.load_default()


def _scan(root: Path) -> dict[int, list[tuple[int, Path]]]:
    """pid -> [(camera, path)] over the train, query and gallery folders."""
    by_pid: dict[int, list[tuple[int, Path]]] = defaultdict(list)
    for folder in _FOLDERS:
        d = root / folder
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            m = _NAME.fullmatch(p.name)
            if m:
                by_pid[int(m.group(1))].append((int(m.group(2)), p))
    return by_pid


def _across_cameras(items: list[tuple[int, Path]], n: int) -> list[tuple[int, Path]]:
    """Up to ``n`` images, round-robin over cameras so every camera shows up early."""
    per_cam: dict[int, list[Path]] = defaultdict(list)
    for cam, p in sorted(items):
        per_cam[cam].append(p)
    out: list[tuple[int, Path]] = []
    depth = 0
    while len(out) < n and any(depth < len(v) for v in per_cam.values()):
        for cam in sorted(per_cam):
            if depth < len(per_cam[cam]) and len(out) < n:
                out.append((cam, per_cam[cam][depth]))
        depth += 1
    return out


def write_preview(
    root: str | Path,
    out_file: str | Path,
    num_ids: int = 12,
    per_id: int = 10,
    scale: int = 1,
    extras: bool = True,
) -> Path:
    """Write a PNG contact sheet of ``num_ids`` identities (rows) and ``per_id`` images each.

    Identities are spread over the pid range; ``extras`` adds a distractor row and a junk
    row; ``scale`` enlarges every image (e.g. 4 for close inspection).
    """
    root = Path(root).expanduser()
    by_pid = _scan(root)
    pids = sorted(p for p in by_pid if p > 0)
    if not pids:
        raise FileNotFoundError(f"no Market-style images (e.g. 0002_c1s1_000451_03.jpg) in {root}")
    step = max(1, len(pids) // max(1, num_ids))
    rows: list[tuple[str, list[tuple[int, Path]]]] = [
        (f"ID {pid:04d}", _across_cameras(by_pid[pid], per_id)) for pid in pids[::step][:num_ids]
    ]
    if extras:
        for pid, name in ((0, "distract."), (-1, "junk")):
            if by_pid.get(pid):
                rows.append((name, _across_cameras(by_pid[pid], per_id)))
    with Image.open(rows[0][1][0][1]) as first:
        w, h = first.size[0] * scale, first.size[1] * scale
    font = _font(10 * scale)
    pad, label_w, caption = 4 * scale, 58 * scale, 13 * scale
    cols = max(len(items) for _, items in rows)
    sheet = Image.new(
        "RGB", (label_w + cols * (w + pad) + pad, len(rows) * (h + caption + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for r, (label, items) in enumerate(rows):
        y = pad + r * (h + caption + pad)
        draw.text((pad, y + h // 2), label, fill="black", font=font)
        for c, (cam, path) in enumerate(items):
            x = label_w + c * (w + pad)
            with Image.open(path) as im:
                tile = im.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
            sheet.paste(tile, (x, y))
            draw.text((x + w // 2 - 6 * scale, y + h + scale), f"c{cam}", fill="black", font=font)
    out = Path(out_file).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def write_style_sheet(
    out_file: str | Path, seed: int = 1000, people: int = 3, per_person: int = 4, scale: int = 2
) -> Path:
    """A PNG with one row per renderer style (original, each feature alone, all of them), the
    same ``people`` identities and images in every row: what each feature changes."""
    from genreid.data.synthetic.identity import sample_identity  # lazy: preview-only
    from genreid.data.synthetic.render import render_image
    from genreid.data.synthetic.seeding import IDENTITY, PLAN, stream
    from genreid.data.synthetic.style import RenderStyle

    all_on = RenderStyle(True, True, True, True, 0.35)
    styles = {"original": RenderStyle(), "fresh noise": RenderStyle(fresh_noise=True),
              "3/4 views": RenderStyle(three_quarter=True), "texture": RenderStyle(texture=True),
              "lighting": RenderStyle(lighting=True), "occl. 0.35": RenderStyle(occlusion=0.35),
              "all": all_on}  # fmt: skip
    idents = [sample_identity(stream(seed, PLAN, 7, p)) for p in range(people)]
    keys = [(p, 1 + i % 3, i) for p in range(people) for i in range(per_person)]
    h, w = 128 * scale, 64 * scale
    font = _font(10 * scale)
    pad, label_w = 4 * scale, 70 * scale
    sheet = Image.new(
        "RGB", (label_w + len(keys) * (w + pad) + pad, len(styles) * (h + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for r, (name, style) in enumerate(styles.items()):
        y = pad + r * (h + pad)
        draw.text((pad, y + h // 2), name, fill="black", font=font)
        for c, (p, cam, index) in enumerate(keys):
            data = render_image(seed, IDENTITY, p + 1, cam, index, idents[p], (128, 64), style)
            with Image.open(io.BytesIO(data)) as im:
                tile = im.convert("RGB").resize((w, h), Image.Resampling.NEAREST)
            sheet.paste(tile, (label_w + c * (w + pad), y))
    out = Path(out_file).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
