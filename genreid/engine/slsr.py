"""``genreid slsr``: SLSR's whole pipeline on the stage runner, for one or several seeds.

Per seed: train the baseline on labeled images; cluster its raw features of the training
images (k-means, silhouettes, k picked or given); train one GAN per cluster; sample N/k images
per cluster, tagged with it; train the comparison strategies (LSRO by default) and ``slsr``
under each identity-set rule on those images; evaluate every run. Then a table over seeds:
mean ± std of rank-1 and mAP, and a paired t-test of each method against the baseline.
Every stage is skipped when its output exists and resumed when interrupted.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from genreid.core.config import load_config
from genreid.core.errors import ConfigError, RegistryError
from genreid.core.files import atomic_write_text, write_json_atomic
from genreid.data.clusters import IDENTITY_RULES
from genreid.data.datasets import DATASETS, load_dataset
from genreid.data.generated import read_generated
from genreid.data.synthetic.spec import SyntheticSpec, holds_render
from genreid.engine.clustering import PICKS, check_generated, cluster_training_set
from genreid.engine.gan_sampling import sample_to_folder
from genreid.engine.stages import (
    Stage,
    eval_stage,
    read_json,
    record_pipeline,
    run_finished,
    run_stages,
    train_stage,
)
from genreid.engine.tasks.gan import GanConfig, train_gan
from genreid.engine.tasks.reid import ReIDTrainConfig, step_matched_epochs
from genreid.eval.significance import paired_t
from genreid.labels.registry import STRATEGIES
from genreid.viz.clusters import cluster_sheet
from genreid.viz.plots import plot_method_comparison


@dataclass
class SlsrDataConfig:
    """The dataset every stage uses (parser options such as a VIPeR split included)."""

    dataset: str = "market1501"
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)

    def check(self) -> None:
        try:
            DATASETS.key(self.dataset)
        except RegistryError as exc:
            raise ConfigError(f"data.dataset: {exc}") from None
        if self.synthetic.ids and self.root:
            raise ConfigError(
                "data: give either data.root (a dataset on disk) or data.synthetic.ids (render "
                "synthetic pedestrians), not both"
            )
        if self.synthetic.ids and DATASETS.key(self.dataset) != "market1501":
            raise ConfigError("data.dataset: synthetic pedestrians use the market1501 layout")
        if self.synthetic.ids < 0 or self.synthetic.cams < 2:
            raise ConfigError("data.synthetic: expected ids >= 0 and cams >= 2")

    def describe(self) -> str:
        """The dataset in words for titles: a rendered set is not Market-1501."""
        if self.synthetic.ids:
            return f"synthetic ({self.synthetic.ids} ids, {self.synthetic.cams} cams)"
        return self.dataset


@dataclass
class SlsrConfig:
    """The ``genreid slsr`` pipeline."""

    task: str = "slsr"
    seeds: list[int] = field(default_factory=lambda: [0])
    data: SlsrDataConfig = field(default_factory=SlsrDataConfig)
    recipe: str = "train/tiny"  # the re-ID config of every run (name or file)
    recipe_overrides: list[str] = field(default_factory=list)
    gan: str = "gan/dcgan_tiny_pretrained"  # the GAN config of every cluster's GAN
    gan_overrides: list[str] = field(default_factory=list)
    k: list[int] = field(default_factory=lambda: [2, 3, 4, 5])  # one value: that k
    pick: Literal["raw", "pca2"] = "raw"  # which silhouette picks k among several
    use_k: int | None = None  # train with this k (one of k) instead of the picked one
    generated: int = 0  # images sampled in all, N/k per cluster; 0: as many as real ones
    compare: list[str] = field(default_factory=lambda: ["lsro"])  # on the same images
    cluster_ids: list[str] = field(default_factory=lambda: ["majority", "any"])
    # also a baseline trained for as many steps as the runs with generated images (an epoch
    # of theirs holds the real and the generated images): more steps alone may explain a gain
    step_matched_baseline: bool = True
    threads: int | None = None  # train.threads of every run (null: the recipe's)

    def check(self) -> None:
        if self.task != "slsr":
            raise ConfigError(f"task: an SLSR pipeline config says task: slsr, got {self.task!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: expected distinct seeds, at least one; got {self.seeds}")
        if not self.k or min(self.k) < 2:
            raise ConfigError(f"k: expected cluster counts of 2 or more, got {self.k}")
        if self.use_k is not None and self.use_k not in self.k:
            raise ConfigError(f"use_k: {self.use_k} is not among k = {self.k}")
        if self.pick not in PICKS:
            raise ConfigError(f"pick: expected raw or pca2, got {self.pick!r}")
        for name in self.compare:
            if name not in STRATEGIES or name == "slsr":
                raise ConfigError(f"compare: {name!r} is not a strategy to compare with slsr")
        for rule in self.cluster_ids:
            if rule not in IDENTITY_RULES:
                raise ConfigError(f"cluster_ids: expected majority and/or any, got {rule!r}")
        if self.generated < 0:
            raise ConfigError(f"generated: expected 0 or more images, got {self.generated}")


# keys that may change in an existing pipeline folder: they add runs (or take them out of the
# summary) or change only the speed; every finished run stays valid
ADDS_RUNS_ONLY = ("seeds", "compare", "cluster_ids", "step_matched_baseline", "threads")


def method_names(cfg: SlsrConfig) -> list[str]:
    """Run folder names of one seed, baseline first."""
    control = ["baseline_steps"] if cfg.step_matched_baseline else []
    return ["baseline", *control, *cfg.compare, *(f"slsr_{rule}" for rule in cfg.cluster_ids)]


def synthetic_stage(cfg: SlsrConfig, out: Path) -> Stage:
    """Render the synthetic pedestrians once, for every seed (done when a complete render of
    the same arguments is there)."""
    spec, root = cfg.data.synthetic, out / "synthetic"
    return Stage(
        "synthetic",
        lambda: spec.render(root),
        lambda: holds_render(root, spec),
        f"render {spec.ids} synthetic identities ({spec.cams} cameras)",
    )


def dataset_root(cfg: SlsrConfig, out: Path) -> str:
    """Where the pipeline's dataset lies: ``data.root``, or OUT/synthetic."""
    if cfg.data.synthetic.ids:
        return str(out / "synthetic")
    if not cfg.data.root:
        raise ConfigError(
            "data.root is empty; give the dataset folder (data.root=PATH) or render synthetic "
            "pedestrians instead (data.synthetic.ids=120)"
        )
    return cfg.data.root


def seed_stages(cfg: SlsrConfig, out: Path, seed: int, root: str) -> list[Stage]:
    """Every stage of one seed's pipeline under ``out`` on the dataset at ``root``."""
    d = cfg.data
    data_keys = [f"data.dataset={d.dataset}", f"data.root={root}", f"seed={seed}"]
    data_keys += [f"data.options.{k}={v}" for k, v in d.options.items()]
    recipe = [*data_keys, *cfg.recipe_overrides]
    tag = f"seed {seed}: "
    stages = [
        train_stage(
            out / "baseline",
            cfg.recipe,
            [*recipe, "labels.strategy=baseline"],
            f"{tag}baseline",
            cfg.threads,
        ),  # fmt: skip
    ]
    clusters = out / "clusters"
    stages.append(
        Stage(
            "clusters",
            lambda: cluster_training_set(
                out / "baseline",
                d.dataset,
                root,
                clusters,
                cfg.k,
                seed,
                cfg.pick,
                d.options,
                use_k=cfg.use_k,
            ),  # fmt: skip
            lambda: (clusters / "clusters.json").is_file(),
            f"{tag}k-means on the baseline's features",
        )
    )
    gan_run, gen = out / "gan", out / "generated"

    extra = [f"train.threads={cfg.threads}"] if cfg.threads else []
    gcfg = load_config(  # loaded now: a bad override fails before any stage runs
        GanConfig, cfg.gan,
        [*data_keys, f"data.clusters={clusters / 'clusters.csv'}", *cfg.gan_overrides, *extra],
    )  # fmt: skip

    real = sum(r.pid >= 0 for r in load_dataset(d.dataset, root, **d.options).train)
    num_generated = cfg.generated or real

    def sample() -> None:
        sample_to_folder(gan_run, num_generated, gen, seed=seed)

    stages += [
        Stage(
            "gan",
            lambda: train_gan(gcfg, gan_run, resume="auto"),
            lambda: run_finished(gan_run),
            f"{tag}one GAN per cluster",
        ),
        Stage("sample", sample, lambda: (gen / "manifest.csv").is_file(), f"{tag}N/k per cluster"),
        Stage(
            "generated_check",
            lambda: check_stage(out, d.dataset, root, d.options),
            lambda: (out / "generated_check.json").is_file(),
            f"{tag}do the samples of each GAN look like its cluster?",
        ),
    ]
    if cfg.step_matched_baseline:
        epochs = load_config(ReIDTrainConfig, cfg.recipe, recipe).train.epochs
        long = step_matched_epochs(epochs, real, num_generated)
        stages.append(
            train_stage(
                out / "baseline_steps",
                cfg.recipe,
                [*recipe, "labels.strategy=baseline", f"train.epochs={long}"],
                f"{tag}baseline, {long} epochs (the steps of {epochs} with generated images)",
                cfg.threads,
            )  # fmt: skip
        )
    with_gen = [*recipe, f"data.generated={gen}"]
    for name in cfg.compare:
        stages.append(train_stage(out / name, cfg.recipe, [*with_gen, f"labels.strategy={name}"],
                                  f"{tag}{name}", cfg.threads))  # fmt: skip
    for rule in cfg.cluster_ids:
        keys = ["labels.strategy=slsr", f"labels.clusters={clusters / 'clusters.csv'}",
                f"labels.cluster_ids={rule}"]  # fmt: skip
        stages.append(train_stage(out / f"slsr_{rule}", cfg.recipe, [*with_gen, *keys],
                                  f"{tag}slsr ({rule})", cfg.threads))  # fmt: skip
    for name in method_names(cfg):
        stages.append(eval_stage(out / name, d.dataset, root, d.options, f"{tag}evaluate {name}"))
    return stages


def check_stage(out: Path, dataset: str, root: str, options: dict[str, Any]) -> dict[str, Any]:
    """``check_generated`` into ``out/generated_check.json`` with a line on the console, and
    ``out/generated_samples.png``: per cluster a row of real images and one of its samples."""
    res = check_generated(
        out / "baseline", out / "clusters/clusters.csv", dataset, root, out / "generated", options
    )
    with (out / "clusters/clusters.csv").open(newline="") as fh:
        real = [(r["path"], int(r["cluster"])) for r in csv.DictReader(fh)]
    generated = read_generated(out / "generated")
    rows: dict[str, list[str]] = {}
    rng = random.Random(0)
    for c in res["clusters"]:  # a row of real images (drawn at random), then of its samples
        paths = [path for path, k in real if k == c]
        rows[f"cluster {c} real"] = rng.sample(paths, min(12, len(paths)))
        rows[f"cluster {c} GAN"] = [g.path for g in generated if g.cluster == c][:12]
    cluster_sheet(rows, out / "generated_samples.png")
    write_json_atomic(res, out / "generated_check.json")  # last: the stage is done
    Console().print(
        f"{100 * res['nearest_own_centre']:.1f}% of generated images lie nearest to their own "
        f"cluster's centre (all in one cluster would give {100 * res['largest_tag_share']:.1f}%)",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    return res


def summarize(cfg: SlsrConfig, out: Path) -> dict[str, Any]:
    """Per method: rank-1 and mAP per seed, mean ± std, and the paired test vs the baseline."""
    per: dict[str, dict[str, list[float]]] = {}
    for seed in cfg.seeds:
        for name in method_names(cfg):
            plain = read_json(out / f"seed_{seed}" / name / "eval/results.json")["results"]["plain"]
            for key in ("rank1", "mAP"):
                per.setdefault(name, {}).setdefault(key, []).append(plain[key])
    rows = {}
    for name, vals in per.items():
        row: dict[str, Any] = {"runs": len(vals["rank1"])}
        for key, xs in vals.items():
            diffs = [a - b for a, b in zip(xs, per["baseline"][key], strict=True)]
            row[key] = {
                "per_seed": xs,
                "mean": statistics.fmean(xs),
                "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
                "paired_p_vs_baseline": None if name == "baseline" else paired_t(diffs),
            }
            if "baseline_steps" in per and name not in ("baseline", "baseline_steps"):
                ref = per["baseline_steps"][key]
                row[key]["paired_p_vs_baseline_steps"] = paired_t(
                    [a - b for a, b in zip(xs, ref, strict=True)]
                )
        rows[name] = row
    clusters = [read_json(out / f"seed_{s}" / "clusters/clusters.json") for s in cfg.seeds]
    return {
        "dataset": cfg.data.describe(),
        "seeds": cfg.seeds,
        "methods": rows,
        "k": [c["k"] for c in clusters],
        "silhouette": {str(s): c["silhouette"] for s, c in zip(cfg.seeds, clusters, strict=True)},
        "identity_set_sizes": {
            str(s): {r: c["identity_sets"][r]["total"] for r in IDENTITY_RULES}
            for s, c in zip(cfg.seeds, clusters, strict=True)
        },
        "images_in_own_set": [
            c["identity_sets"]["majority"]["images_in_own_set"] for c in clusters
        ],
        "generated_nearest_own_centre": [
            read_json(out / f"seed_{s}" / "generated_check.json")["nearest_own_centre"]
            for s in cfg.seeds
        ],
    }


def _p(value: float | None) -> str:
    return (
        "–" if value is None or math.isnan(value) else f"{value:.3f}{' *' if value < 0.05 else ''}"
    )


def table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table: mean ± std in percent, paired p against the
    baseline (and the step-matched baseline when there is one; * marks p < 0.05)."""
    steps = "baseline_steps" in summary["methods"]
    header = ["method", "runs", "rank-1 %", "mAP %", "p rank-1", "p mAP"]
    header += ["p rank-1 (steps)", "p mAP (steps)"] if steps else []
    rows = []
    for name, row in summary["methods"].items():
        cells = [name, str(row["runs"])]
        cells += [
            f"{100 * row[k]['mean']:.1f} ± {100 * row[k]['std']:.1f}" for k in ("rank1", "mAP")
        ]
        cells += [_p(row[k]["paired_p_vs_baseline"]) for k in ("rank1", "mAP")]
        if steps:
            cells += [_p(row[k].get("paired_p_vs_baseline_steps")) for k in ("rank1", "mAP")]
        rows.append(cells)
    return header, rows


def markdown(summary: dict[str, Any]) -> str:
    """The summary as markdown: what the clusters and samples look like, then the table."""
    pct = lambda xs: ", ".join(f"{100 * x:.0f}%" for x in xs)  # noqa: E731
    header, rows = table(summary)
    lines = [
        f"{summary['dataset']}, seeds {summary['seeds']}, k per seed {summary['k']}; real images "
        f"whose identity is in their cluster's majority set: {pct(summary['images_in_own_set'])}; "
        f"generated images nearest their own cluster's centre: "
        f"{pct(summary['generated_nearest_own_centre'])}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]
    return "\n".join(lines) + "\n"


def record_slsr(cfg: SlsrConfig, out: Path) -> None:
    """OUT/config.yaml and env.json; a folder holding another SLSR pipeline is refused."""
    record_pipeline(cfg, out, ADDS_RUNS_ONLY, "an SLSR pipeline", {"seeds": cfg.seeds})


def run_slsr(cfg: SlsrConfig, out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """The pipeline for every seed, then the summary (``summary.json``, ``summary.md``) and
    a figure of every method's rank-1 and mAP over seeds (``comparison.png``)."""
    console = console or Console(stderr=True)
    out = Path(out)
    root = dataset_root(cfg, out)
    record_slsr(cfg, out)
    if cfg.data.synthetic.ids:
        run_stages([synthetic_stage(cfg, out)], console)
    for seed in cfg.seeds:
        run_stages(seed_stages(cfg, out / f"seed_{seed}", seed, root), console)
    summary = summarize(cfg, out)
    write_json_atomic(summary, out / "summary.json")
    atomic_write_text(out / "summary.md", markdown(summary))
    per_seed = {
        name: {"rank-1": row["rank1"]["per_seed"], "mAP": row["mAP"]["per_seed"]}
        for name, row in summary["methods"].items()
    }
    plot_method_comparison(
        per_seed, out / "comparison.png", f"{cfg.data.describe()}: {len(cfg.seeds)} seed(s)"
    )
    header, rows = table(summary)
    shown = Table(title=f"SLSR pipeline on {cfg.data.describe()} ({len(cfg.seeds)} seed(s))")
    for col in header:
        shown.add_column(col, justify="left" if col == "method" else "right")
    for cells in rows:
        shown.add_row(*cells)
    Console().print(shown)
    return summary


class SlsrPipeline:
    """The ``slsr`` pipeline as a registry entry (``task: slsr`` in a config)."""

    name = "slsr"
    config_class = SlsrConfig
    run = staticmethod(run_slsr)
