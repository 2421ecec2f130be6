"""The quickstart job: the whole pipeline at tiny scale on the built-in synthetic pedestrians.

1. render the synthetic dataset (Market-1501 layout) and describe it;
2. train a small DCGAN on its training images and sample unlabeled pedestrians;
3. train the baseline and LSRO re-ID networks (tiny recipe);
4. extract features and evaluate both, with and without re-ranking, with figures;
5. compare the three runs in ``report.html`` (``genreid report``).

Every stage writes its own run folder under ``--out`` and runs on the shared stage runner
(:mod:`genreid.engine.stages`): running the job again skips finished stages and resumes an
interrupted one, so nothing already computed is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from genreid.core.config import load_config
from genreid.core.files import write_json_atomic
from genreid.data.datasets import load_dataset
from genreid.data.stats import dataset_stats, stats_table
from genreid.data.synthetic import write_preview
from genreid.data.synthetic.spec import SyntheticSpec, holds_render
from genreid.engine.gan_sampling import sample_to_folder
from genreid.engine.stages import (
    Stage,
    eval_stage,
    read_json,
    run_finished,
    run_stages,
    train_stage,
)
from genreid.engine.tasks.gan import GanConfig, train_gan
from genreid.eval.run_report import write_report
from genreid.viz.dataset import plot_images_per_identity


def _render(out: Path, ids: int, cams: int, seed: int, console: Console) -> Path:
    root = out / "synthetic"
    spec = SyntheticSpec(ids, cams, seed)
    if holds_render(root, spec):  # a render cut short is redone
        console.print(f"already rendered: {root}")
        return root
    stats = spec.render(root)
    console.print(
        f"{stats['images']} images in {stats['seconds']:.1f} s "
        f"({stats['images_per_second']:.0f} images/s) -> {root}"
    )
    return root


def _gan_stages(out: Path, root: Path, epochs: int, seed: int) -> list[Stage]:
    """Train the tiny DCGAN (or resume it), then sample as many images as real training ones."""
    run, gen = out / "gan", out / "generated"
    cfg = load_config(
        GanConfig, "gan/dcgan_tiny", [f"data.root={root}", f"train.epochs={epochs}", f"seed={seed}"]
    )

    def sample() -> None:
        num = len(load_dataset("market1501", root).train)
        sample_to_folder(run, num, gen, seed=seed, grid=out / "gan_samples.png")
        Console().print(f"{num} generated images -> {gen} (sheet: {out / 'gan_samples.png'})")

    title = "2. DCGAN: train on the training images, sample unlabeled pedestrians"
    return [
        Stage("gan", lambda: train_gan(cfg, run, resume="auto"), lambda: run_finished(run), title),
        Stage("sample", sample, lambda: (gen / "manifest.csv").is_file(), "2. DCGAN: sample"),
    ]


def _reid_stages(out: Path, root: Path, epochs: int, seed: int) -> list[Stage]:
    """Baseline and LSRO (tiny recipe), each trained and then evaluated with re-ranking."""
    stages = []
    for step, strategy in ((3, "baseline"), (4, "lsro")):
        overrides = [f"data.root={root}", f"labels.strategy={strategy}",
                     f"train.epochs={epochs}", f"seed={seed}"]  # fmt: skip
        if strategy != "baseline":
            overrides.append(f"data.generated={out / 'generated'}")
        run = out / strategy
        stages.append(
            train_stage(run, "train/tiny", overrides, f"{step}. Re-ID training: {strategy}")
        )
        stages.append(
            eval_stage(
                run,
                "market1501",
                root,
                title=f"{step}. Evaluate {strategy}",
                ranklist=6,
                rerank=True,
            )  # fmt: skip
        )
    return stages


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
        run_stages(
            _gan_stages(out, root, gan_epochs, seed) + _reid_stages(out, root, epochs, seed),
            console,
        )
        table = Table(title="tiny re-ID on synthetic pedestrians (query vs gallery, %)")
        for col in ("strategy", "rank-1", "rank-5", "mAP", "mINP", "rank-1 RR", "mAP RR"):
            table.add_column(col, justify="left" if col == "strategy" else "right")
        summary["runs"] = {}
        for strategy in ("baseline", "lsro"):
            res = read_json(out / strategy / "eval/results.json")
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
        runs = [out / "baseline", out / "lsro", out / "gan"]
        summary["report"] = str(write_report(runs, out / "report.html", "genreid quickstart"))
        console.print(f"report (open in a browser): {summary['report']}")
    write_json_atomic(summary, out / "results.json")
    console.print(f"summary: {out / 'results.json'}")
    return summary
