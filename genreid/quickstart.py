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

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _config_file(name: str) -> Path:
    path = CONFIGS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run the quickstart from a genreid checkout (configs/ beside "
            "the package)"
        )
    return path


def _render(out: Path, ids: int, cams: int, seed: int, console: Console) -> Path:
    from genreid.data.synthetic import render_dataset

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
    from genreid.config import load_config
    from genreid.data.datasets import load_dataset
    from genreid.engine.gan_config import GanConfig
    from genreid.engine.gan_trainer import train_gan
    from genreid.engine.sampling import sample_to_folder

    run, gen = out / "gan", out / "generated"
    if not (run / "results.json").is_file():
        cfg = load_config(
            GanConfig,
            _config_file("gan/dcgan_tiny.yaml"),
            [f"data.root={root}", f"train.epochs={epochs}", f"seed={seed}"],
        )
        train_gan(cfg, run, resume=(run / "checkpoints" / "last.pt").is_file())
    if not (gen / "manifest.csv").is_file():
        num = len(load_dataset("market1501", root).train)
        sample_to_folder(run, num, gen, seed=seed, grid=out / "gan_samples.png")
        console.print(f"{num} generated images -> {gen} (sheet: {out / 'gan_samples.png'})")
    return gen


def _train(
    out: Path, root: Path, gen: Path, strategy: str, epochs: int, seed: int
) -> dict[str, Any]:
    from genreid.config import load_config
    from genreid.engine.reid_config import ReIDTrainConfig
    from genreid.engine.trainer import train

    run = out / strategy
    if (run / "results.json").is_file():
        results = json.loads((run / "results.json").read_text())
        if results.get("epochs_completed") == epochs:
            return results
    overrides = [
        f"data.root={root}",
        f"labels.strategy={strategy}",
        f"train.epochs={epochs}",
        f"seed={seed}",
    ]
    if strategy != "baseline":
        overrides.append(f"data.generated={gen}")
    cfg = load_config(ReIDTrainConfig, _config_file("train/tiny.yaml"), overrides)
    return train(cfg, run, resume=(run / "checkpoints" / "last.pt").is_file())


def _evaluate(out: Path, root: Path, strategy: str, ranklist: int) -> dict[str, Any]:
    """Features of the run's query/gallery, then plain and re-ranked metrics and figures."""
    from genreid.data.datasets import load_dataset
    from genreid.engine.extract import extract_features, load_trained_model, save_dataset_features
    from genreid.eval.cli import run_evaluation

    model, cfg, device = load_trained_model(out / strategy)
    ds = load_dataset("market1501", root)
    size = (cfg.data.height, cfg.data.width)
    qf = extract_features(model, ds.query, size, device=device)
    gf = extract_features(model, ds.gallery, size, device=device)
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
    from genreid.data.cli import print_stats
    from genreid.data.datasets import load_dataset
    from genreid.data.records import dataset_stats
    from genreid.data.synthetic import write_preview
    from genreid.engine.run import write_json_atomic
    from genreid.viz.dataset import plot_images_per_identity

    console = Console()
    out = Path(out)
    console.rule("[bold]1. Synthetic pedestrians (Market-1501 layout)")
    root = _render(out, ids, cams, seed, console)
    ds = load_dataset("market1501", root)
    stats = dataset_stats(ds)
    print_stats(stats)
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
