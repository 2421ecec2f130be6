"""``genreid slsr``: SLSR's whole pipeline as a plan of jobs, for one or several seeds.

Per seed: train the baseline on labeled images; cluster its raw features of the training
images (k-means, silhouettes, k picked or given); train one GAN per cluster; sample N/k images
per cluster, tagged with it; train the comparison strategies (LSRO by default) and ``slsr``
under each identity-set rule on those images; evaluate every run. Then a table over seeds:
mean ± std of rank-1 and mAP, and a paired t-test of each method against the baseline.
The steps are jobs with dependencies run by the reproduce runner (``run_jobs``): every job is
skipped when its output exists and resumed when interrupted, and with ``jobs`` > 1 independent
ones (another seed, the step-matched baseline, the runs on the same samples) run side by side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.console import Console
from rich.table import Table

from genreid.core.config import CONFIG_VERSION, to_dict
from genreid.core.cpu import threads_per_job
from genreid.core.errors import ConfigError, RegistryError
from genreid.core.files import atomic_write_text, write_json_atomic
from genreid.data.clusters import IDENTITY_RULES
from genreid.data.datasets import DATASETS
from genreid.data.synthetic.spec import SyntheticSpec
from genreid.engine.clustering import PICKS
from genreid.engine.reproduce.plan import Job
from genreid.engine.reproduce.runner import check_executor, check_jobs, run_jobs
from genreid.engine.runspec import Change, DataSource, RunSpec, parse_changes
from genreid.engine.stages import override_list_v2, read_json, record_pipeline
from genreid.engine.tasks.reid import step_matched_epochs
from genreid.eval.ranking.significance import paired_t
from genreid.labels.registry import STRATEGIES
from genreid.viz.plots import plot_method_comparison


@dataclass
class SlsrDataConfig:
    """The dataset every job uses (parser options such as a VIPeR split included)."""

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


def migrate_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2 of an SLSR pipeline: its override lists in the runs' current
    layout (a GAN's ``train.lr=X`` -> ``optim.gen.lr=X``, ``optim.dis.lr=X``), the GAN's as its
    ``gan`` config's architecture reads them."""
    data = override_list_v2(data, "recipe_overrides", "reid")  # runs of several strategies
    return override_list_v2(data, "gan_overrides", "gan", str(data.get("gan", SlsrConfig.gan)))


@dataclass
class SlsrConfig:
    """The ``genreid slsr`` pipeline."""

    task: str = "slsr"
    version: int = CONFIG_VERSION  # the key layout of the override lists (older: migrated)
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
    threads: int | None = None  # train.threads of every run (null: the recipe's, or cores/jobs)
    jobs: int = 1  # jobs run side by side (worker processes); 1: one after another, in here
    # local (this process, or `jobs` worker processes) or dask: the workers of the Dask
    # scheduler at `address` (tcp://HOST:PORT; docs/REPRODUCE.md, a shared file system)
    executor: str = "local"
    address: str = ""

    migrations: ClassVar[dict[int, Callable[[dict], dict]]] = {2: migrate_v2}

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
        if self.jobs < 1 or (self.threads is not None and self.threads < 1):
            raise ConfigError(
                f"jobs/threads: expected 1 or more, got jobs={self.jobs}, threads={self.threads}"
            )
        if self.generated < 0:
            raise ConfigError(f"generated: expected 0 or more images, got {self.generated}")
        check_executor(self.executor, self.address, "executor", "address")


# keys that may change in an existing pipeline folder: they add runs (or take them out of the
# summary) or change only the speed; every finished run stays valid
ADDS_RUNS_ONLY = (
    "seeds", "compare", "cluster_ids", "step_matched_baseline", "threads", "jobs", "executor",
    "address",
)  # fmt: skip


def method_names(cfg: SlsrConfig) -> list[str]:
    """Run folder names of one seed, baseline first."""
    control = ["baseline_steps"] if cfg.step_matched_baseline else []
    return ["baseline", *control, *cfg.compare, *(f"slsr_{rule}" for rule in cfg.cluster_ids)]


def render_job(cfg: SlsrConfig, out: Path) -> Job:
    """Render the synthetic pedestrians once, for every seed, into OUT/synthetic (done when a
    complete render of the same arguments is there)."""
    spec = cfg.data.synthetic
    title = f"render {spec.ids} synthetic identities ({spec.cams} cameras)"
    return Job("synthetic", "render", str(out / "synthetic"), {"spec": to_dict(spec)}, [], title)


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


def run_threads(cfg: SlsrConfig) -> int | None:
    """``train.threads`` of every run: ``threads``, else cores / ``jobs`` when jobs run side by
    side (None: the recipe's)."""
    return cfg.threads or (threads_per_job(cfg.jobs) if cfg.jobs > 1 else None)


@dataclass
class SeedPlanner:
    """Builds one seed's jobs under OUT/seed_S; job ids are relative to OUT."""

    cfg: SlsrConfig
    out: Path
    seed: int
    root: str

    @property
    def folder(self) -> Path:
        """OUT/seed_S, where every job of the seed writes."""
        return self.out / f"seed_{self.seed}"

    @property
    def data(self) -> DataSource:
        """The dataset, its folder and its parser options."""
        return DataSource(self.cfg.data.dataset, self.root, dict(self.cfg.data.options))

    @cached_property
    def recipe(self) -> tuple[Change, ...]:
        """The keys of every re-ID run before its own: ``recipe_overrides``, read once."""
        return parse_changes(self.cfg.recipe_overrides)

    def run(self, config: str, changes: Sequence[Change] = ()) -> RunSpec:
        """A run of ``config`` on the pipeline's data with this seed and ``changes``."""
        return RunSpec(config, self.data, tuple(changes), self.seed, run_threads(self.cfg))

    def job(
        self, name: str, kind: str, params: dict[str, Any], deps: list[str], title: str,
        out: Path | None = None,
    ) -> Job:  # fmt: skip
        """Job ``seed_S/name`` writing OUT/seed_S/``name`` (or ``out``), after the seed's jobs
        ``deps``."""
        prefix = f"seed_{self.seed}/"
        return Job(prefix + name, kind, str(out or self.folder / name), params,
                   [prefix + d for d in deps], f"seed {self.seed}: {title}")  # fmt: skip

    def train(
        self, name: str, config: str, changes: Sequence[Change], deps: list[str], title: str
    ) -> Job:
        """A training run (re-ID or GAN: its config's task) of ``config`` with ``changes``."""
        return self.job(name, "train", self.run(config, changes).params(), deps, title)

    def evaluation(self, name: str) -> Job:
        """The evaluation of run ``name`` into RUN/eval."""
        params = {**self.data.params(), "rerank": False, "folder": "eval", "overrides": []}
        return self.job(f"{name}/eval", "eval", params, [name], f"evaluate {name}",
                        self.folder / name)  # fmt: skip

    def generated(self) -> list[Job]:
        """k-means on the baseline's features, a GAN per cluster, N/k samples of each, and the
        check of those samples against their clusters."""
        cfg, folder = self.cfg, self.folder
        clusters = {"run": str(folder / "baseline"), **self.data.params(), "ks": list(cfg.k),
                    "seed": self.seed, "pick": cfg.pick, "use_k": cfg.use_k}  # fmt: skip
        gan = [Change("data.clusters", str(folder / "clusters/clusters.csv"))]
        gan += parse_changes(cfg.gan_overrides)
        sample = {"run": str(folder / "gan"), "num": self.sampled(),
                  "seed": self.seed, "device": "cpu"}  # fmt: skip
        check = self.data.params()
        return [
            self.job("clusters", "clusters", clusters, ["baseline"],
                     "k-means on the baseline's features"),
            self.train("gan", cfg.gan, gan, ["clusters"], "one GAN per cluster"),
            self.job("generated", "sample", sample, ["gan"], "N/k per cluster"),
            self.job("generated_check", "generated_check", check, ["generated"],
                     "do the samples of each GAN look like its cluster?", folder),
        ]  # fmt: skip

    @cached_property
    def real_images(self) -> int:
        """Labeled training images of the dataset (read once)."""
        return sum(r.pid >= 0 for r in self.data.load().train)

    def runs(self) -> list[Job]:
        """The step-matched baseline, the compared strategies and slsr per identity-set rule."""
        cfg, folder, recipe = self.cfg, self.folder, self.recipe
        jobs = []
        if cfg.step_matched_baseline:
            epochs = self.run(cfg.recipe, recipe).load().train.epochs
            long = step_matched_epochs(epochs, self.real_images, self.sampled())
            jobs.append(self.train(
                "baseline_steps", cfg.recipe,
                [*recipe, Change("labels.strategy", "baseline"), Change("train.epochs", long)],
                [], f"baseline, {long} epochs (the steps of {epochs} with generated images)",
            ))  # fmt: skip
        with_gen = [*recipe, Change("data.generated", str(folder / "generated"))]
        for name in cfg.compare:
            jobs.append(self.train(name, cfg.recipe,
                                   [*with_gen, Change("labels.strategy", name)],
                                   ["generated"], name))  # fmt: skip
        for rule in cfg.cluster_ids:
            keys = [Change("labels.strategy", "slsr"),
                    Change("labels.options.clusters", str(folder / "clusters/clusters.csv")),
                    Change("labels.options.cluster_ids", rule)]  # fmt: skip
            jobs.append(self.train(f"slsr_{rule}", cfg.recipe, [*with_gen, *keys],
                                   ["generated", "clusters"], f"slsr ({rule})"))  # fmt: skip
        return jobs

    def sampled(self) -> int:
        """Generated images sampled in all: ``generated``, or as many as the real ones."""
        return self.cfg.generated or self.real_images

    def jobs(self) -> list[Job]:
        """Every job of the seed, in the order one worker runs them."""
        own = [*self.recipe, Change("labels.strategy", "baseline")]
        baseline = self.train("baseline", self.cfg.recipe, own, [], "baseline")
        evals = [self.evaluation(name) for name in method_names(self.cfg)]
        return [baseline, *self.generated(), *self.runs(), *evals]


def slsr_jobs(cfg: SlsrConfig, out: Path, root: str) -> dict[str, Job]:
    """The jobs of every seed (ids relative to OUT), dependencies before dependents."""
    jobs = [job for seed in cfg.seeds for job in SeedPlanner(cfg, out, seed, root).jobs()]
    return {job.id: job for job in jobs}


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


def run_plan(cfg: SlsrConfig, out: Path, root: str, console: Console) -> None:
    """The render first (planning counts the rendered images), then every seed's jobs on the
    reproduce runner: one at a time in this process, in plan order, or ``jobs`` side by side
    in worker processes (their output in OUT/logs)."""
    logs = out / "logs"
    if cfg.data.synthetic.ids:
        run_jobs({"synthetic": render_job(cfg, out)}, logs=logs, console=console)
    jobs = slsr_jobs(cfg, out, root)
    check_jobs(jobs)  # a bad override fails before any job runs
    run_jobs(jobs, cfg.jobs, run_threads(cfg), logs, console,
             executor=cfg.executor, address=cfg.address)  # fmt: skip


def run_slsr(cfg: SlsrConfig, out: str | Path, console: Console | None = None) -> dict[str, Any]:
    """The pipeline for every seed, then the summary (``summary.json``, ``summary.md``) and
    a figure of every method's rank-1 and mAP over seeds (``comparison.png``)."""
    console = console or Console(stderr=True)
    out = Path(out)
    if cfg.executor == "dask":  # the workers see the same files, not this working folder
        out = out.resolve()
    root = dataset_root(cfg, out)
    if cfg.executor == "dask":
        root = str(Path(root).resolve())
    record_slsr(cfg, out)
    run_plan(cfg, out, root, console)
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
