"""Renderer style features (pretraining experiments): off by default, each one local and seeded."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import load_config
from genreid.data.errors import DatasetError
from genreid.data.synthetic import RenderStyle, body, render_dataset
from genreid.data.synthetic.compose import Fabric, relight, weave
from genreid.data.synthetic.identity import sample_identity
from genreid.data.synthetic.render import render_image
from genreid.data.synthetic.seeding import DISTRACTOR, IDENTITY, JUNK, stream
from genreid.data.synthetic.spec import SyntheticSpec, holds_render, render_arguments
from genreid.engine.pretrain import PretrainConfig

# sha256 of 24 images (one identity, a distractor and junk; 2 cameras x 4 images, 64x32) from
# the renderer before style features existed: the default style must keep every byte.
ORIGINAL_BYTES = "ef417b3a719ec1d4a0e129a37633c96de9a0be3cc2d4391ff39b42bc5ad65848"


def _images(style: RenderStyle | None = None) -> list[bytes]:
    out = []
    for kind, pid in ((IDENTITY, 3), (DISTRACTOR, 0), (JUNK, -1)):
        ident = sample_identity(stream(5, 99, pid + 1)) if kind == IDENTITY else None
        for cam in (1, 2):
            for index in range(4):
                args = (5, kind, pid, cam, index, ident, (64, 32))
                out.append(render_image(*args) if style is None else render_image(*args, style))
    return out


def test_default_style_keeps_the_original_bytes() -> None:
    digest = hashlib.sha256(b"".join(_images())).hexdigest()
    assert digest == ORIGINAL_BYTES
    assert _images(RenderStyle()) == _images()


@pytest.mark.parametrize(
    "style",
    [
        RenderStyle(fresh_noise=True),
        RenderStyle(three_quarter=True),
        RenderStyle(texture=True),
        RenderStyle(lighting=True),
        RenderStyle(occlusion=1.0),
        RenderStyle(width=1.4),
        RenderStyle(camera=2.0),
    ],
    ids=["fresh_noise", "three_quarter", "texture", "lighting", "occlusion", "width", "camera"],
)
def test_each_feature_changes_images_and_is_deterministic(style: RenderStyle) -> None:
    base, styled = _images(), _images(style)
    changed = sum(a != b for a, b in zip(base, styled, strict=True))
    assert changed >= 2, f"{style.changes()} changed {changed} of {len(base)} images"
    assert styled == _images(style)  # a pure function of its arguments


def test_three_quarter_leaves_side_views_and_junk_background_alone() -> None:
    """Only front/back people turn: the turn draws from a stream of its own, so an image the
    feature leaves alone keeps every byte (junk mode 0 shows background only)."""
    base, styled = _images(), _images(RenderStyle(three_quarter=True))
    assert 0 < sum(a != b for a, b in zip(base, styled, strict=True)) < len(base)


def test_turned_body_is_narrower_and_turn_zero_is_the_original() -> None:
    ident = sample_identity(stream(1, 99, 1))

    def labels(**kw) -> np.ndarray:
        img = Image.new("L", (128, 256), 0)
        body.draw_person(ImageDraw.Draw(img), ident, "front", 1, 0.3, 64, 10, 230, **kw)
        return np.asarray(img)

    def width(a: np.ndarray) -> int:
        cols = np.nonzero((a & 15) == body.UPPER)[1]  # the torso and sleeves
        return int(cols.max() - cols.min())

    assert np.array_equal(labels(), labels(turn=0.0))
    assert width(labels(turn=0.9)) < 0.9 * width(labels())
    assert np.any((labels(turn=0.9) & body.FAR) != 0)  # the far arm is drawn darker


def test_widened_body_is_wider_by_the_factor_and_stays_in_the_image() -> None:
    ident = sample_identity(stream(2, 99, 1))

    def cols(view: str, **kw) -> np.ndarray:
        img = Image.new("L", (128, 256), 0)
        body.draw_person(ImageDraw.Draw(img), ident, view, 1, 0.3, 64, 10, 230, **kw)
        return np.nonzero(np.asarray(img))[1]

    for view in ("front", "side"):
        plain, wide = cols(view), cols(view, widen=1.4)
        ratio = np.ptp(wide) / np.ptp(plain)
        assert 1.3 < ratio < 1.5, f"{view}: {ratio}"
    assert np.array_equal(cols("back"), cols("back", widen=1.0))
    for data in _images(RenderStyle(width=2.0)):  # the widest allowed: decodes at its size
        assert Image.open(io.BytesIO(data)).size == (32, 64)


def test_weave_touches_garments_only_and_keeps_their_mean() -> None:
    labels = np.full((60, 40), body.SKIN, dtype=np.uint8)
    labels[10:30] = body.UPPER
    labels[30:] = body.LOWER
    rgb = np.full((60, 40, 3), 100.0, dtype=np.float32)
    weave(rgb, labels, Fabric((0.2, 2), (0.2, 4)), np.random.default_rng(0))
    assert np.all(rgb[:10] == 100.0)  # skin
    for rows in (slice(10, 30), slice(30, 60)):
        part = rgb[rows]
        assert part.std() > 3.0 and abs(part.mean() - 100.0) < 3.0
        assert part.min() >= 80.0 - 1e-4 and part.max() <= 120.0 + 1e-4  # 1 +- strength
    fabric = Fabric.sample(stream(3, 4, 0, 7, 0, 0, 0))
    assert fabric == Fabric.sample(stream(3, 4, 0, 7, 0, 0, 0))  # one identity, one fabric


def test_relight_is_a_bounded_smooth_gain() -> None:
    img = Image.new("RGB", (64, 128), (120, 120, 120))
    out = np.asarray(relight(img, np.random.default_rng(4)), dtype=np.float32) / 120.0
    assert out.min() > 0.35 and out.max() < 1.3
    assert out.std() > 0.01
    assert np.abs(np.diff(out[..., 0], axis=1)).max() < 0.2  # no hard edges between columns


def test_style_recorded_and_a_render_is_reused_only_for_its_own_style(tmp_path) -> None:
    plain, styled = tmp_path / "plain", tmp_path / "styled"
    render_dataset(plain, ids=4, cams=2, seed=1, size=(32, 16), workers=1, progress=False)
    style = RenderStyle(texture=True, occlusion=0.3)
    render_dataset(
        styled, ids=4, cams=2, seed=1, size=(32, 16), workers=1, progress=False, style=style
    )
    assert "style" not in json.loads((plain / "dataset.json").read_text())["arguments"]
    recorded = json.loads((styled / "dataset.json").read_text())["arguments"]["style"]
    assert recorded == {"texture": True, "occlusion": 0.3}
    assert RenderStyle.from_changes(recorded) == style
    spec = SyntheticSpec(ids=4, cams=2, seed=1, size=[32, 16])
    assert holds_render(plain, spec) and not holds_render(styled, spec)
    spec.style = style
    assert holds_render(styled, spec) and not holds_render(plain, spec)


def test_images_per_identity_is_recorded_and_a_render_reused_only_for_its_own(tmp_path) -> None:
    spec = SyntheticSpec(ids=6, cams=2, seed=1, size=[32, 16], images_per_id=40.0)
    stats = spec.render(tmp_path / "many", progress=False)
    assert stats["images_per_identity"] > 25  # the plan's draw around the mean
    assert render_arguments(tmp_path / "many")["images_per_id"] == 40.0
    assert spec.arguments()["images_per_id"] == 40.0
    assert holds_render(tmp_path / "many", spec)
    assert not holds_render(tmp_path / "many", SyntheticSpec(ids=6, cams=2, seed=1, size=[32, 16]))
    assert "images_per_id" not in SyntheticSpec(ids=6).arguments()  # old manifests stay valid
    with pytest.raises(Exception, match="images_per_id"):
        load_config(PretrainConfig, "pretrain_tiny", ["synthetic.images_per_id=1"])


def test_bad_style_and_config_keys() -> None:
    with pytest.raises(DatasetError, match="occlusion"):
        render_dataset("unused", ids=4, cams=2, seed=1, style=RenderStyle(occlusion=1.5))
    with pytest.raises(DatasetError, match="style.width"):
        render_dataset("unused", ids=4, cams=2, seed=1, style=RenderStyle(width=3.0))
    cfg = load_config(
        PretrainConfig, "pretrain_tiny", ["synthetic.style.texture=true", "synthetic.ids=10"]
    )
    assert cfg.synthetic.style == RenderStyle(texture=True)
    assert cfg.synthetic.arguments()["style"] == {"texture": True}
    with pytest.raises(Exception, match="Did you mean 'synthetic.style.lighting'"):
        load_config(PretrainConfig, "pretrain_tiny", ["synthetic.style.lightning=true"])


def test_cli_flags(tmp_path) -> None:
    out = tmp_path / "set"
    res = CliRunner().invoke(
        app,
        ["data", "synth", "--out", str(out), "--ids", "4", "--cams", "2", "--size", "32x16",
         "--workers", "1", "--lighting", "--three-quarter", "--width", "1.3",
         "--camera", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    args = json.loads((out / "dataset.json").read_text())["arguments"]
    assert args["style"] == {"three_quarter": True, "lighting": True, "camera": 2.0, "width": 1.3}


def test_style_sheet_has_a_row_per_style(tmp_path) -> None:
    from genreid.data.synthetic.preview import write_style_sheet

    out = write_style_sheet(tmp_path / "styles.png", people=1, per_person=2, scale=1)
    with Image.open(out) as im:
        assert im.size == (70 + 2 * (64 + 4) + 4, 7 * (128 + 4) + 4)
