"""CMC and ranked-list figures are valid PNGs; missing images become gray placeholders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genreid.viz import plot_cmc, plot_ranklist, ranked_gallery


def test_plot_cmc_png(tmp_path: Path) -> None:
    cmc = np.linspace(0.5, 1.0, 50)
    out = plot_cmc({"plain": cmc, "rerank": np.minimum(cmc + 0.1, 1)}, tmp_path / "a" / "c.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 100


def test_ranked_gallery_skips_junk_and_same_camera() -> None:
    dist = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    g_pids = np.array([7, -1, 3, 7, 4])
    g_cams = np.array([1, 2, 2, 2, 2])
    assert ranked_gallery(dist, 7, 1, g_pids, g_cams, topk=10).tolist() == [2, 3, 4]
    assert ranked_gallery(dist, 7, 1, g_pids, g_cams, topk=2).tolist() == [2, 3]


def test_plot_ranklist_with_missing_image(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (32, 64), (40 * i, 80, 120)).save(p)
        paths.append(str(p))
    g_paths = paths[1:] + [str(tmp_path / "missing.png")]
    dist = np.random.default_rng(0).random((2, 6))
    with pytest.warns(UserWarning, match="1 image") as rec:
        missing = plot_ranklist(
            dist,
            [0, 1],
            paths[:2],
            g_paths,
            np.array([1, 2]),
            np.array([1, 2, 3, 1, 2, 5]),
            np.array([1, 1]),
            np.array([2, 2, 2, 2, 2, 2]),
            tmp_path / "r.png",
            topk=10,
        )
    assert missing == 1 and len(rec) == 1
    with Image.open(tmp_path / "r.png") as img:
        assert img.format == "PNG"
