"""The quickstart job: everything genreid can do so far, on the built-in synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console


def run_quickstart(out: str | Path, ids: int = 120, cams: int = 6, seed: int = 0) -> dict:
    """Render the synthetic dataset, read it back with the Market-1501 parser, describe it."""
    from genreid.data.cli import _print_stats
    from genreid.data.datasets import load_dataset
    from genreid.data.records import dataset_stats
    from genreid.data.synthetic import render_dataset, write_preview
    from genreid.viz.dataset import plot_images_per_identity

    console = Console()
    out = Path(out)
    data_root = out / "synthetic"
    console.rule("[bold]1. Render synthetic pedestrians (Market-1501 layout)")
    render = render_dataset(data_root, ids=ids, cams=cams, seed=seed)
    console.print(
        f"{render.get('images', '?')} images in {render.get('seconds', 0):.1f} s "
        f"({render.get('images_per_second', 0):.0f} images/s) -> {data_root}"
    )
    console.rule("[bold]2. Read it back with the market1501 parser")
    ds = load_dataset("market1501", data_root)
    stats = dataset_stats(ds)
    _print_stats(stats)
    console.rule("[bold]3. Figures")
    preview = write_preview(data_root, out / "preview.png")
    hist = plot_images_per_identity(ds, out / "images_per_identity.png")
    console.print(f"contact sheet: {preview}\nimages per identity: {hist}")
    summary = {"render": render, "dataset": stats, "preview": str(preview), "histogram": str(hist)}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary: {out / 'results.json'}")
    return summary
