"""The quickstart job: the whole pipeline at tiny scale on the built-in synthetic pedestrians.

1. render the synthetic dataset (Market-1501 layout) and describe it;
2. train a small DCGAN on its training images and sample unlabeled pedestrians;
3. train the baseline and LSRO re-ID networks (tiny recipe);
4. extract features and evaluate both, with and without re-ranking, with figures.

Every stage writes its own run folder under ``--out``; running the job again skips finished
stages and resumes an interrupted one, so nothing already computed is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from genreid.core.config import load_config
from genreid.core.files import write_json_atomic
from genreid.core.runs import read_results
from genreid.data.datasets import load_dataset
from genreid.data.stats import dataset_stats, stats_table
from genreid.data.synthetic import render_dataset, write_preview
from genreid.engine.gan_sampling import sample_to_folder
from genreid.engine.tasks.gan import GanConfig, train_gan
from genreid.engine.tasks.reid import ReIDTrainConfig, train
from genreid.eval.extract import load_trained_model, reid_features, save_dataset_features
from genreid.eval.report import run_evaluation
from genreid.viz.dataset import plot_images_per_identity


def _render(out: Path, ids: int, cams: int, seed: int, console: Console) -> Path:
    root = out / "synthetic"
    meta = root / "dataset.json"
    if meta.is_file():
        args = json.loads(meta.read_text()).get("arguments", {})
        if (args.get("ids"), args.get("cams"), args.get("seed")) == (ids, cams, seed):
            console.print(f"already rendered: {root}")
            return root
    stats = render_dataset(root, ids=ids, cams=cams, seed=seed)
    console.print(
        f"{stats['images']} images in {stats['seconds']:.1f} s "
        f"({stats['images_per_second']:.0f} images/s) -> {root}"
    )
    return root


def _gan(out: Path, root: Path, epochs: int, seed: int, console: Console) -> Path:
    """Train the tiny DCGAN (or resume it) and sample as many images as real training ones."""
    run, gen = out / "gan", out / "generated"
    if (read_results(run) or {}).get("status") != "done":
        cfg = load_config(
            GanConfig,
            "gan/dcgan_tiny",
            [f"data.root={root}", f"train.epochs={epochs}", f"seed={seed}"],
        )
        train_gan(cfg, run, resume="auto")
    if not (gen / "manifest.csv").is_file():
        num = len(load_dataset("market1501", root).train)
        sample_to_folder(run, num, gen, seed=seed, grid=out / "gan_samples.png")
        console.print(f"{num} generated images -> {gen} (sheet: {out / 'gan_samples.png'})")
    return gen


def _train(
    out: Path, root: Path, gen: Path, strategy: str, epochs: int, seed: int
) -> dict[str, Any]:
    run = out / strategy
    results = read_results(run) or {}
    # runs of genreid 0.1.0 wrote no status: a finished one counts as done
    if results.get("status", "done") == "done" and results.get("epochs_completed") == epochs:
        return results
    overrides = [
        f"data.root={root}",
        f"labels.strategy={strategy}",
        f"train.epochs={epochs}",
        f"seed={seed}",
    ]
    if strategy != "baseline":
        overrides.append(f"data.generated={gen}")
    cfg = load_config(ReIDTrainConfig, "train/tiny", overrides)
    return train(cfg, run, resume="auto")


def _evaluate(out: Path, root: Path, strategy: str, ranklist: int) -> dict[str, Any]:
    """Features of the run's query/gallery, then plain and re-ranked metrics and figures."""
    model, data, _, device = load_trained_model(out / strategy)
    ds = load_dataset("market1501", root)
    qf = reid_features(model, ds.query, data.size, device=device)
    gf = reid_features(model, ds.gallery, data.size, device=device)
    features = save_dataset_features(out / strategy / "features.npz", ds, qf, gf)
    return run_evaluation(features, out / strategy / "eval", ranklist=ranklist, rerank=True)


def run_quickstart(
    out: str | Path,
    ids: int = 120,
    cams: int = 6,
    seed: int = 0,
    epochs: int = 8,
    gan_epochs: int = 5,
    data_only: bool = False,
) -> dict:
    """Run the whole pipeline (or only the data stage) and write ``OUT/results.json``."""
    console = Console()
    out = Path(out)
    console.rule("[bold]1. Synthetic pedestrians (Market-1501 layout)")
    root = _render(out, ids, cams, seed, console)
    ds = load_dataset("market1501", root)
    stats = dataset_stats(ds)
    console.print(stats_table(stats))
    preview = write_preview(root, out / "preview.png")
    hist = plot_images_per_identity(ds, out / "images_per_identity.png")
    console.print(f"contact sheet: {preview}\nimages per identity: {hist}")
    summary: dict[str, Any] = {"dataset": stats, "preview": str(preview), "histogram": str(hist)}
    if not data_only:
        console.rule("[bold]2. DCGAN: train on the training images, sample unlabeled pedestrians")
        gen = _gan(out, root, gan_epochs, seed, console)
        table = Table(title="tiny re-ID on synthetic pedestrians (query vs gallery, %)")
        for col in ("strategy", "rank-1", "rank-5", "mAP", "mINP", "rank-1 RR", "mAP RR"):
            table.add_column(col, justify="left" if col == "strategy" else "right")
        summary["runs"] = {}
        for step, strategy in ((3, "baseline"), (4, "lsro")):
            console.rule(f"[bold]{step}. Re-ID training: {strategy}")
            _train(out, root, gen, strategy, epochs, seed)
            res = _evaluate(out, root, strategy, ranklist=6)
            plain, rr = res["results"]["plain"], res["results"]["rerank"]
            summary["runs"][strategy] = res["results"]
            table.add_row(
                strategy,
                *(f"{100 * v:.1f}" for v in (plain["rank1"], plain["rank5"], plain["mAP"])),
                f"{100 * plain['mINP']:.1f}",
                f"{100 * rr['rank1']:.1f}",
                f"{100 * rr['mAP']:.1f}",
            )
        console.rule("[bold]5. Results")
        console.print(table)
        console.print(f"figures: {out}/<strategy>/eval/cmc.png, ranklist.png")
    write_json_atomic(summary, out / "results.json")
    console.print(f"summary: {out / 'results.json'}")
    return summary
