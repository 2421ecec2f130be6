"""The quickstart job: the whole pipeline at tiny scale on the built-in synthetic pedestrians.

1. render the synthetic dataset (Market-1501 layout) and describe it;
2. train a small DCGAN on its training images and sample unlabeled pedestrians;
3. train the baseline, LSRO and FAPL-distributed re-ID networks (tiny recipe);
4. extract features and evaluate each, with and without re-ranking, with figures, and print
   the table with each method's difference from the baseline and a paired test over queries;
5. compare the runs in ``report.html`` (``genreid report``).

``dataset``/``root`` run the same on a real dataset (e.g. VIPeR's split 0) instead.

Every step is a job of a plan on the reproduce runner (:mod:`genreid.engine.reproduce.runner`,
as ``genreid slsr`` and ``genreid reproduce``), writing its own run folder under ``--out``:
running it again skips finished jobs and resumes an interrupted one, so nothing already
computed is lost; with ``--jobs`` N independent ones (the baseline beside the DCGAN, the
strategies once the samples exist) run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from genreid.core.config import to_dict
from genreid.core.cpu import threads_per_job
from genreid.core.errors import ConfigError
from genreid.core.files import write_json_atomic
from genreid.data.errors import DatasetError
from genreid.data.stats import dataset_stats, stats_table
from genreid.data.synthetic import write_preview
from genreid.data.synthetic.spec import SyntheticSpec
from genreid.engine.reproduce.plan import Job
from genreid.engine.reproduce.runner import check_executor, check_jobs, run_jobs, stage_of
from genreid.engine.runspec import Change, DataSource, RunSpec
from genreid.engine.stages import read_json
from genreid.eval.ranking.report import PER_QUERY, read_per_query
from genreid.eval.ranking.significance import paired_queries
from genreid.viz.dataset import plot_images_per_identity

# (run folders, page file, title) -> the page written: ``genreid report``'s writer, passed in
# by the command since reporting reads every task's runs from a layer above the engine
ReportWriter = Callable[[Sequence[Path], Path, str], Path]


def _render(out: Path, ids: int, cams: int, seed: int, console: Console) -> Path:
    """OUT/synthetic: a render job run here (planning counts its images), or the complete
    render already there (one cut short is redone)."""
    spec = SyntheticSpec(ids, cams, seed)
    title = f"render {ids} synthetic identities ({cams} cameras)"
    job = Job("synthetic", "render", str(out / "synthetic"), {"spec": to_dict(spec)}, [], title)
    root = Path(job.out)
    if stage_of(job).done():
        console.print(f"already rendered: {root}")
        return root
    start = time.perf_counter()
    run_jobs({job.id: job}, logs=out / "logs", console=console)
    console.print(f"rendered in {time.perf_counter() - start:.1f} s -> {root}")
    return root


STRATEGIES = ("baseline", "lsro", "fapl_dist")


# a tenth of the real training images kept out of the GAN's training to measure it against
GAN_HOLDOUT = 0.1
# the GAN recipe: the shipped synthetic-pedestrian DCGAN fine-tuned, sampling from G's EMA
GAN_CONFIG = "gan/dcgan_tiny_pretrained"
# fine-tuned from the shipped generator, 400 iterations on the 955 kept images reach precision
# 0.84 and recall 0.87 (from scratch, 145 iterations gave grey blobs and 800 recall 0.5-0.6)
SYNTHETIC_GAN_ITERS = 400


@dataclass(frozen=True)
class QuickPlanner:
    """Builds the quickstart's jobs under OUT (job ids relative to OUT): the DCGAN and its
    samples, then each strategy's training run and its evaluation."""

    out: Path
    data: DataSource
    seed: int
    threads: int | None = None  # train.threads of every run (None: the recipe's)

    def train(self, name: str, config: str, changes: list[Change], deps: list[str],
              title: str) -> Job:  # fmt: skip
        """Training run OUT/``name`` (re-ID or GAN: its config's task) on the data."""
        run = RunSpec(config, self.data, tuple(changes), self.seed, self.threads)
        return Job(name, "train", str(self.out / name), run.params(), deps, title)

    def gan(self, epochs: int, iters: int | None, config: str, num: int) -> list[Job]:
        """Train the tiny DCGAN (or resume it), then sample ``num`` images (as many as the
        real training ones, counted by the caller, which parsed the data already). ``iters``
        replaces the config's iteration floor (``train.min_iters``)."""
        out = self.out
        keys = [Change("train.epochs", epochs), Change("measure.holdout", GAN_HOLDOUT)]
        keys += [] if iters is None else [Change("train.min_iters", iters)]
        sample = {"run": str(out / "gan"), "num": num, "seed": self.seed, "device": "cpu",
                  "grid": str(out / "gan_samples.png")}  # fmt: skip
        title = "2. DCGAN: train on the training images, sample unlabeled pedestrians"
        return [
            self.train("gan", config, keys, [], title),
            Job("generated", "sample", str(out / "generated"), sample, ["gan"],
                "2. DCGAN: sample"),
        ]  # fmt: skip

    def reid(self, epochs: int) -> list[Job]:
        """Baseline, LSRO and FAPL-distributed (tiny recipe), each trained, then evaluated
        with and without re-ranking."""
        data, jobs = self.data, []
        evaluation = {**data.params(), "rerank": True, "ranklist": 6}
        for step, strategy in enumerate(STRATEGIES, start=3):
            keys = [Change("labels.strategy", strategy), Change("train.epochs", epochs)]
            deps = []
            if strategy != "baseline":
                keys.append(Change("data.generated", str(self.out / "generated")))
                deps = ["generated"]
            jobs.append(self.train(strategy, "train/tiny", keys, deps,
                                   f"{step}. Re-ID training: {strategy}"))  # fmt: skip
            jobs.append(Job(f"{strategy}/eval", "eval", str(self.out / strategy), dict(evaluation),
                            [strategy], f"{step}. Evaluate {strategy}"))  # fmt: skip
        return jobs


def _pct(v: float | None, signed: bool = False) -> str:
    return "–" if v is None else f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return ("<0.01" if p < 0.01 else f"{p:.2f}") + ("*" if p < 0.05 else "")


def _generated(out: Path, console: Console) -> dict[str, Any] | None:
    """The DCGAN's generated-image measures (``gan/results.json``), printed with the real
    images' own halves beside them as the reference."""
    g = read_json(out / "gan" / "results.json").get("generated")
    if not g or "skipped" in g:
        return g
    console.print(
        f"generated images against {g['against']} ({g['fake_images']} vs {g['real_images']}; "
        f"docs/GAN.md): Frechet {g['frechet']:.3f}, KID {g['kid']:.4f}, precision "
        f"{g['precision']:.2f}, recall {g['recall']:.2f}"
    )
    return {k: g[k] for k in ("frechet", "kid", "precision", "recall", "against")}


def _comparison(out: Path, console: Console) -> dict[str, Any]:
    """The results table: each strategy's scores, and its difference from the baseline with
    paired tests over the queries (per-query AP: t-test; rank-1 hits: exact McNemar)."""
    table = Table(
        title="tiny re-ID (query vs gallery, %); Δ vs baseline, p paired over queries",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    cols = ("R-1", "mAP", "R-1 RR", "mAP RR", "ΔR-1", "p", "ΔmAP", "p")
    table.add_column("strategy", no_wrap=True, min_width=10)
    for col in cols:
        table.add_column(col, justify="right", no_wrap=True, min_width=5)
    runs: dict[str, Any] = {}
    base = read_per_query(out / "baseline/eval" / PER_QUERY)
    for strategy in STRATEGIES:
        res = read_json(out / strategy / "eval/results.json")
        plain, rr = res["results"]["plain"], res["results"]["rerank"]
        cells = ["–"] * 4
        paired = None
        if strategy != "baseline":
            pq = read_per_query(out / strategy / "eval" / PER_QUERY)
            paired = paired_queries(base["plain_ap"], pq["plain_ap"],
                                    base["plain_first_rank"], pq["plain_first_rank"])  # fmt: skip
            cells = [_pct(paired["d_rank1"], True), _p(paired["p_rank1"]),
                     _pct(paired["d_mAP"], True), _p(paired["p_mAP"])]  # fmt: skip
        runs[strategy] = {**res["results"], "vs_baseline": paired}
        table.add_row(
            strategy,
            *(_pct(plain[k]) for k in ("rank1", "mAP")),
            _pct(rr["rank1"]),
            _pct(rr["mAP"]),
            *cells,
        )
    console.rule(f"[bold]{len(STRATEGIES) + 3}. Results")
    console.print(table)
    console.print(
        "rank-5/10/20 and mINP: results.json and report.html. RR: with k-reciprocal "
        "re-ranking. p: paired over the queries of this one run per "
        "method (t-test on per-query AP, exact McNemar on rank-1 hits), * below 0.05; it says "
        "how sure the difference is over queries, not over training seeds (genreid reproduce "
        "runs several)."
    )
    console.print(f"figures: {out}/<strategy>/eval/cmc.png, ranklist.png")
    return runs


def _describe(
    data: DataSource, out: Path, synthetic: bool, console: Console
) -> tuple[dict[str, Any], int]:
    """Step 1's summary of the data, parsed once here: its statistics, images per identity
    and (synthetic) a contact sheet; and how many training images it has (the plan's count
    of DCGAN samples)."""
    ds = data.load()
    stats = dataset_stats(ds)
    console.print(stats_table(stats))
    hist = plot_images_per_identity(ds, out / "images_per_identity.png")
    summary: dict[str, Any] = {"dataset": stats, "histogram": str(hist)}
    if synthetic:
        summary["preview"] = str(write_preview(data.root, out / "preview.png"))
        console.print(f"contact sheet: {summary['preview']}")
    console.print(f"images per identity: {hist}")
    return summary, len(ds.train)


def _outcome(
    out: Path, sampled: Job, report: ReportWriter | None, console: Console
) -> dict[str, Any]:
    """After the jobs: the generated images' measures, the results table and (with a
    ``report`` writer) report.html, as entries of the summary."""
    console.print(f"{sampled.params['num']} generated images -> {out / 'generated'} "
                  f"(sheet: {sampled.params['grid']})")  # fmt: skip
    found = {"generated": _generated(out, console), "runs": _comparison(out, console)}
    if report is not None:
        runs = [out / s for s in STRATEGIES] + [out / "gan"]
        found["report"] = str(report(runs, out / "report.html", "genreid quickstart"))
        console.print(f"report (open in a browser): {found['report']}")
    return found


def run_quickstart(
    out: str | Path,
    ids: int = 120,
    cams: int = 6,
    seed: int = 0,
    epochs: int = 8,
    gan_epochs: int = 5,
    gan_iters: int | None = None,
    data_only: bool = False,
    dataset: str = "synthetic",
    root: str | Path | None = None,
    options: dict[str, Any] | None = None,
    gan_config: str = GAN_CONFIG,
    jobs: int = 1,
    threads: int | None = None,
    executor: str = "local",
    address: str = "",
    report: ReportWriter | None = None,
) -> dict:
    """Run the whole pipeline (or only the data stage) and write ``OUT/results.json``.

    ``dataset="synthetic"`` renders ``ids`` x ``cams`` pedestrians under OUT; any other name
    is a dataset parser run on ``root`` with ``options`` (e.g. ``viper``, ``split=0``). The
    DCGAN (``gan_config``, by default the shipped generator fine-tuned) trains at least
    ``gan_iters`` iterations (default: 400 on the synthetic set, the config's 1,500 on a real one).
    The steps are jobs on the reproduce runner: ``jobs`` side by side (``threads`` each, by
    default cores / jobs), or on the workers of the Dask scheduler at ``address``. ``report``
    writes step 5's ``report.html`` (``genreid quickstart`` passes ``genreid report``'s writer,
    which sits above the engine); without one the step is left out.
    """
    console = Console()
    check_executor(executor, address, "--executor", "--address")
    if jobs < 1 or (threads is not None and threads < 1):
        raise ConfigError(f"--jobs/--threads: expected 1 or more, got {jobs}, {threads}")
    out = Path(out)
    if executor == "dask":  # the workers see the same files, not this working folder
        out = out.resolve()
    if dataset == "synthetic":
        console.rule("[bold]1. Synthetic pedestrians (Market-1501 layout)")
        data = DataSource("market1501", str(_render(out, ids, cams, seed, console)))
    else:
        if root is None:
            raise DatasetError(f"--dataset {dataset} needs --root, the dataset's folder")
        console.rule(f"[bold]1. {dataset} at {root}")
        root = Path(root).resolve() if executor == "dask" else Path(root)
        data = DataSource(dataset, str(root), dict(options or {}))
    summary, train_images = _describe(data, out, dataset == "synthetic", console)
    if not data_only:
        # the synthetic set trains 400 iterations from the shipped generator (docs/RESULTS.md,
        # issue 24); a real dataset keeps the recipe's 1,500
        if gan_iters is None and dataset == "synthetic":
            gan_iters = SYNTHETIC_GAN_ITERS
        run_threads = threads or (threads_per_job(jobs) if jobs > 1 else None)
        planner = QuickPlanner(out, data, seed, run_threads)
        plan = [*planner.gan(gan_epochs, gan_iters, gan_config, train_images),
                *planner.reid(epochs)]  # fmt: skip
        todo = {job.id: job for job in plan}
        check_jobs(todo)  # a bad override fails before any job runs
        run_jobs(todo, jobs, run_threads, out / "logs", console,
                 executor=executor, address=address)  # fmt: skip
        summary.update(_outcome(out, todo["generated"], report, console))
    write_json_atomic(summary, out / "results.json")
    console.print(f"summary: {out / 'results.json'}")
    return summary
