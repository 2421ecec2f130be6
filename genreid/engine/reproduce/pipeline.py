"""``genreid reproduce TABLE``: plan a paper table, run it (resumably, side by side, or on a
Dask cluster), write it.

Writes into OUT: ``config.yaml`` and ``env.json`` (a folder continues only the same table,
scale and data; seeds, splits, jobs, threads, rows, rerank and the executor may change),
``choices.json`` (every value the table did not sweep, the value used and where it came
from), ``cells.jsonl`` (every run's metrics), ``table.md`` (the paper's layout: ours as mean ±
std with * where a paired test against the reference cell gives p < 0.05, the paper's number
beside it), ``table.csv`` (the p-values) and ``summary.json``; with ``--rerank`` also the same
table re-ranked (in table.md, ``table_rerank.csv``). Runs live in ``OUT/runs/CELL/REPLICATE``; GANs,
samples and clusters in ``OUT/gan``, ``OUT/generated`` and ``OUT/clusters``; tuning in
``OUT/tune``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.console import Console

from genreid.core.config import CONFIG_VERSION, parse_override
from genreid.core.cpu import cores, threads_per_job
from genreid.core.errors import ConfigError, RegistryError
from genreid.core.files import atomic_write_text, update_marked_block, write_json_atomic
from genreid.data.datasets import DATASETS, load_dataset
from genreid.engine.reproduce.estimate import estimate_gpu_hours
from genreid.engine.reproduce.plan import (
    CellRun,
    Context,
    Job,
    Plan,
    Planner,
    check_rows,
    plan_table,
    replicates,
    substitute,
    tuning_plan,
)
from genreid.engine.reproduce.runner import check_executor, check_jobs, run_jobs
from genreid.engine.reproduce.spec import SCALES, TableSpec, load_table, table_names
from genreid.engine.stages import check_pipeline, override_list_v2, read_json, record_pipeline
from genreid.eval.ranking.report import EVAL_DEFAULTS
from genreid.eval.ranking.tables import TableLayout, as_dict, csv_text, markdown, summarize

# add runs or scores, or run them elsewhere or faster
MAY_CHANGE = ("seeds", "splits", "jobs", "threads", "rows", "rerank", "executor", "address")
TUNE_FRACTION = 0.2


def migrate_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Config version 1 -> 2 of a reproduction: ``--override``, ``--gan-override`` and
    ``--dgnet-override`` in the runs' current layout (a table's runs have several strategies
    and architectures: an option moves to the plugin that has it)."""
    for key, task in (
        ("overrides", "reid"),
        ("gan_overrides", "gan"),
        ("dgnet_overrides", "dgnet"),
    ):
        data = override_list_v2(data, key, task)
    return data


@dataclass
class ReproduceConfig:
    """One reproduction of a paper table (what ``genreid reproduce`` records)."""

    task: str = "reproduce"
    version: int = CONFIG_VERSION  # the key layout of the override lists (older: migrated)
    table: str = ""  # a table name (`genreid reproduce --list`) or a spec file
    scale: str = ""  # tiny or paper; "" = the table's default
    dataset: str = ""  # "" = the table's default
    root: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # dataset parser options
    seeds: int = 1
    splits: int | None = None  # the first N splits (VIPeR, PRID2011); None = all
    jobs: int = 1
    threads: int | None = None  # per job; None = cores / jobs
    executor: str = "local"  # local (a process pool) or dask (the workers of a scheduler)
    address: str = ""  # the Dask scheduler's address, tcp://HOST:PORT
    validation: float = 0.0  # > 0: evaluate on this share of training identities, not the test
    tune: bool = False  # choose the tunable values on validation identities first
    tune_fraction: float = TUNE_FRACTION
    choices: dict[str, Any] = field(default_factory=dict)  # --set NAME=VALUE
    overrides: list[str] = field(default_factory=list)  # every re-ID run
    gan_overrides: list[str] = field(default_factory=list)
    dgnet_overrides: list[str] = field(default_factory=list)
    unlabeled_dataset: str = ""
    unlabeled_root: str = ""
    rows: list[str] = field(default_factory=list)  # only these rows (+ their references)
    rerank: bool = False  # also a table of the same runs with k-reciprocal re-ranking

    migrations: ClassVar[dict[int, Callable[[dict], dict]]] = {2: migrate_v2}

    def check(self) -> None:
        if self.task != "reproduce":
            raise ConfigError(f"task: a reproduction says task: reproduce, got {self.task!r}")
        if self.scale and self.scale not in SCALES:
            raise ConfigError(f"--scale: expected tiny or paper, got {self.scale!r}")
        if self.jobs < 1 or (self.threads is not None and self.threads < 1):
            raise ConfigError(
                f"--jobs/--threads: expected 1 or more, got {self.jobs}, {self.threads}"
            )
        self._check_executor()
        shares = {"--validation": self.validation, "tune_fraction": self.tune_fraction}
        for name, share in shares.items():
            if not 0 <= share < 1:
                raise ConfigError(f"{name}: expected a share of training identities in [0, 1)")
        if self.dataset:
            try:
                DATASETS.key(self.dataset)
            except RegistryError as exc:
                raise ConfigError(f"--dataset: {exc}") from None
        for items in (self.overrides, self.gan_overrides, self.dgnet_overrides):
            for item in items:
                parse_override(item)

    def _check_executor(self) -> None:
        check_executor(self.executor, self.address, "--executor", "--address")


def list_tables() -> list[tuple[str, str, str, str]]:
    """(name, title, what it sweeps, default dataset and scale) of every shipped table."""
    out = []
    for name in table_names():
        spec = load_table(name)
        out.append((name, spec.title, spec.sweeps, f"{spec.dataset}, {spec.scale}"))
    return out


def resolve(cfg: ReproduceConfig) -> tuple[ReproduceConfig, TableSpec]:
    """The spec, and the config with the table's defaults and absolute paths filled in."""
    spec = load_table(cfg.table)
    is_file = Path(cfg.table).suffix in (".yaml", ".yml")
    table = str(spec.path.resolve()) if is_file else spec.name
    dataset = DATASETS.key(cfg.dataset or spec.dataset)
    if not cfg.root:
        raise ConfigError(f"--root: give the {dataset} folder (e.g. --root /data/Market-1501)")
    check_rows(spec, cfg.rows)
    unknown = set(cfg.choices) - set(spec.choices)
    if unknown:
        raise ConfigError(
            f"--set: {sorted(unknown)} are not choices of {spec.name}; it has "
            f"{', '.join(spec.choices) or 'none'}"
        )
    root = str(Path(cfg.root).expanduser().resolve())
    unl = str(Path(cfg.unlabeled_root).expanduser().resolve()) if cfg.unlabeled_root else ""
    return replace(cfg, table=table, scale=cfg.scale or spec.scale, dataset=dataset, root=root,
                   unlabeled_root=unl), spec  # fmt: skip


def context(cfg: ReproduceConfig, spec: TableSpec, out: Path) -> Context:
    """The planning context of a resolved config (labeled training images counted once per
    set of options)."""
    counts: dict[str, int] = {}

    def real_images(options: dict[str, Any]) -> int:
        key = repr(sorted(options.items()))
        if key not in counts:
            ds = load_dataset(cfg.dataset, cfg.root, **options)
            counts[key] = sum(r.pid >= 0 for r in ds.train)
        return counts[key]

    unlabeled = None
    if cfg.unlabeled_root:
        sources = [s.real for s in spec.sources.values() if s.real]
        unlabeled = (cfg.unlabeled_dataset or (sources[0] if sources else ""), cfg.unlabeled_root)
    return Context(
        scale=cfg.scale, dataset=cfg.dataset, root=cfg.root, out=out,
        replicates=replicates(cfg.dataset, cfg.seeds, cfg.splits, cfg.options),
        real_images=real_images, options=dict(cfg.options), validation=cfg.validation,
        threads=cfg.threads or threads_per_job(cfg.jobs), reid_overrides=list(cfg.overrides),
        gan_overrides=list(cfg.gan_overrides), dgnet_overrides=list(cfg.dgnet_overrides),
        unlabeled=unlabeled, rerank=cfg.rerank,
    )  # fmt: skip


def run_metrics(run: CellRun, kind: str = "plain") -> dict[str, float]:
    """The metrics of a finished run's evaluation: plain, or ``rerank`` (k-reciprocal)."""
    return numbers(read_json(run.results)["results"][kind])


def numbers(scored: dict[str, Any]) -> dict[str, float]:
    """The numeric metrics of one scoring in an evaluation's results."""
    return {k: float(v) for k, v in scored.items() if isinstance(v, int | float)}


def rerank_notes() -> list[str]:
    """What the re-ranked table is, and how to read it against the plain one."""
    d = EVAL_DEFAULTS
    return [
        f"The same runs' features with k-reciprocal re-ranking (Zhong et al. 2017; k1 "
        f"{d['k1']}, k2 {d['k2']}, lambda {d['lambda_value']}), each cell tested against its "
        "reference cell re-ranked the same way; the papers' numbers above are without it.",
        "On single-shot galleries (VIPeR, PRID2011: one true match per query) re-ranking with "
        "k1 = 20 lowers rank-1 for every method (docs/RESULTS.md); read the differences "
        "between rows, not the values.",
    ]


def tune(
    spec: TableSpec, cfg: ReproduceConfig, ctx: Context, choices: dict[str, Any],
    execute: Callable[[dict[str, Job]], None],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Choose every tunable value (not fixed by --set) on held-out training identities: the
    candidate whose tuning cell has the highest mean metric wins."""
    records = {}
    tctx = replace(ctx, validation=cfg.tune_fraction, rerank=False)  # chosen on plain metrics
    for name, choice in spec.choices.items():
        if choice.tune is None or name in cfg.choices:
            continue
        plan, runs = tuning_plan(spec, tctx, choices, name)
        execute(plan.jobs)
        scores = {
            str(v): statistics.fmean(run_metrics(r)[choice.metric] for r in rs)
            for v, rs in runs.items()
        }
        # the best mean; on a tie the paper's value, then the earlier candidate
        best = max(choice.candidates, key=lambda v: (scores[str(v)], v == choice.value))
        choices[name] = best
        n = len(ctx.replicates)
        records[name] = {
            "value": best, "key": choice.key, "candidates": scores, "metric": choice.metric,
            "source": f"chosen on validation identities ({cfg.tune_fraction:g} of each split's "
            f"training identities held out; the test identities never loaded): the highest mean "
            f"{choice.metric} of cell {' / '.join(choice.tune)} over {n} run(s) among "
            f"{choice.candidates}",
        }  # fmt: skip
    return records


def choice_records(
    spec: TableSpec, cfg: ReproduceConfig, tuned: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Every choice: the value used and where it came from."""
    out = {}
    for name, c in spec.choices.items():
        if name in cfg.choices:
            out[name] = {"value": cfg.choices[name], "key": c.key, "source": "--set"}
        elif name in tuned:
            out[name] = tuned[name]
        else:
            out[name] = {"value": c.value, "key": c.key, "source": c.source}
    return out


def layout(spec: TableSpec, cfg: ReproduceConfig, choices: dict[str, Any]) -> TableLayout:
    """Rows, columns, reference cells and the paper's numbers of a table as run."""
    block = spec.paper_for(cfg.dataset)
    cells = spec.cells()
    return TableLayout(
        title=f"{spec.title} ({cfg.scale} scale, {cfg.dataset})",
        rows=[(r.name, substitute(r.label, choices, r.name)) for r in spec.rows],
        columns=[(c.name, c.label) for c in spec.columns],
        metrics=spec.metrics,
        corner=spec.corner,
        reference={cell: ref for cell in cells if (ref := spec.reference(*cell))},
        paper=dict(block.values) if block else {},
        paper_label="paper",
        paper_source="" if block is None else f"{block.source} [{block.dataset}]",
    )


def shown_path(path: str) -> str:
    """A dataset's path as written in a results block: relative to the working directory (the
    command's own ``--root``), never one machine's absolute path, unless no relative path exists."""
    try:
        return os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive (Windows)
        return path


def notes(
    spec: TableSpec, cfg: ReproduceConfig, ctx: Context, records: dict[str, dict[str, Any]]
) -> list[str]:
    """What a reader needs beside the numbers: data, scale, paper source, choices, caveats."""
    reps = ctx.replicates
    splits = sorted({r.split for r in reps if r.split is not None})
    where = f"{cfg.seeds} seed(s)"
    if splits:
        where = f"splits {splits[0]}-{splits[-1]} x {where}"
    held = (
        f"validation identities ({cfg.validation:g} of each split's training identities held out; "
        "the test identities were never loaded)"
        if cfg.validation
        else "the test identities"
    )
    data = f"{cfg.dataset} at {shown_path(cfg.root)}"
    out = [f"Data: {data}, {where} ({len(reps)} runs per cell), on {held}."]
    recipes = sorted({r[cfg.scale].config for r in spec.recipes.values()})
    if cfg.scale == "tiny":
        out.append(
            f"Tiny scale ({', '.join(recipes)}): small networks on CPU, far below the paper's "
            "ImageNet ResNet-50 numbers; compare differences between cells, not values."
        )
    else:
        out.append(f"Paper scale: {', '.join(recipes)} (the papers' recipes).")
    for what, items in (("re-ID run", cfg.overrides), ("GAN", cfg.gan_overrides),
                        ("DG-Net run", cfg.dgnet_overrides)):  # fmt: skip
        if items:
            out.append(f"Overrides of every {what}: {' '.join(items)}.")
    block = spec.paper_for(cfg.dataset)
    if block is None:
        out.append("The paper gives no numbers for this table.")
    else:
        out.append(f"Paper: {spec.paper}; numbers from {block.source}.")
        if block.dataset != cfg.dataset:
            out.append(
                f"**The paper's numbers are for {block.dataset}, these runs are on "
                f"{cfg.dataset}**: compare trends, not values."
            )
    images = sorted({int(a.generated["images"]) for a in spec.rows + spec.columns
                     if a.generated.get("images")})  # fmt: skip
    if images:
        real = ctx.real_images(Planner(spec, ctx, {}).options(reps[0]))
        used = ", ".join(
            f"{n:,} -> {max(1, round(n * real / spec.paper_train_images)):,}" for n in images
        )
        out.append(
            f"Generated images scale with the real training set ({real:,} here, "
            f"{spec.paper_train_images:,} in the paper's): paper count -> used: {used}."
        )
    if cfg.rows:
        out.append(
            f"Rows run so far: {', '.join(cfg.rows)} and their references (--rows); the others "
            "show – until the table is run without --rows."
        )
    for name, rec in records.items():
        key = f" ({rec['key']})" if rec.get("key") else ""
        out.append(f"Choice {name}{key} = {rec['value']}: {rec['source']}.")
    choices = {n: r["value"] for n, r in records.items()}
    return out + shared_notes(spec, choices) + spec.notes


def shared_notes(spec: TableSpec, choices: dict[str, Any]) -> list[str]:
    """Which rows test other settings of a run they share with rows of the same recipe."""
    rows = [r for r in spec.rows if r.eval_overrides]
    if not rows:
        return []
    said = "; ".join(
        f"{r.name}: {substitute(' '.join(r.eval_overrides), choices, r.name)}" for r in rows
    )
    return [
        "Rows evaluated with other test settings of the run they share with the rows of the "
        f"same training (one training, an evaluation each, in RUN/eval_VALUES): {said}."
    ]


def write_outputs(
    spec: TableSpec, cfg: ReproduceConfig, ctx: Context, plan: Plan,
    records: dict[str, dict[str, Any]], out: Path, finished_only: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """cells.jsonl, table.md, table.csv (with ``cfg.rerank`` also table_rerank.csv) and
    summary.json from the finished runs (with ``finished_only``, the runs not evaluated yet,
    or not re-ranked when asked, are left out and the notes say how many)."""
    choices = {n: r["value"] for n, r in records.items()}
    kinds = ("plain", "rerank") if cfg.rerank else ("plain",)
    per: dict[str, dict[tuple[str, str], dict[str, dict[str, float]]]] = {k: {} for k in kinds}
    lines = []
    missing = 0
    for run in plan.runs:
        saved = run.results
        scored = {} if finished_only and not saved.is_file() else read_json(saved)["results"]
        if finished_only and not all(k in scored for k in kinds):  # not (re-ranked) yet
            missing += 1
            continue
        metrics = {k: numbers(scored[k]) for k in kinds}  # one read per run
        for k in kinds:
            per[k].setdefault((run.row, run.column), {})[run.replicate] = metrics[k]
        lines.append(json.dumps({
            "table": spec.name, "row": run.row, "column": run.column,
            "replicate": run.replicate, "split": run.split, "seed": run.seed,
            "run": str(Path(run.run).relative_to(out)), "config": run.config,
            "overrides": run.overrides, "eval": str(saved.parent.relative_to(out)),
            "eval_overrides": run.eval_overrides, "metrics": metrics["plain"],
            **({"rerank_metrics": metrics["rerank"]} if cfg.rerank else {}),
        }))  # fmt: skip
    atomic_write_text(out / "cells.jsonl", "\n".join(lines) + "\n")
    lay = layout(spec, cfg, choices)
    summary = summarize(lay, per["plain"])
    said = notes(spec, cfg, ctx, records)
    if missing:
        total = len(plan.runs)
        said.insert(0, (
            f"Partial: {total - missing} of {total} runs finished (a report made while the "
            "sweep runs; the same command without --report continues it)."
        ))  # fmt: skip
    text = markdown(lay, summary, said)
    atomic_write_text(out / "table.csv", csv_text(lay, summary))
    result = {
        "table": spec.name, "title": spec.title, "scale": cfg.scale, "dataset": cfg.dataset,
        "replicates": [r.name for r in ctx.replicates], "validation": cfg.validation,
        "choices": records, "cells": as_dict(summary),
        "runs": len(plan.runs), "runs_finished": len(plan.runs) - missing,
    }  # fmt: skip
    if cfg.rerank:
        rr_lay = replace(lay, title=f"{lay.title}, re-ranked", paper={}, paper_source="")
        rr_summary = summarize(rr_lay, per["rerank"])
        text += "\n" + markdown(rr_lay, rr_summary, rerank_notes(), "table_rerank.csv")
        atomic_write_text(out / "table_rerank.csv", csv_text(rr_lay, rr_summary))
        result["rerank_cells"] = as_dict(rr_summary)
    atomic_write_text(out / "table.md", text)
    result["markdown"] = text
    write_json_atomic(result, out / "summary.json")
    return result


def run_reproduce(
    cfg: ReproduceConfig,
    out: str | Path,
    console: Console | None = None,
    after_job: Callable[[Job], None] | None = None,
    plan_only: bool = False,
    report_only: bool = False,
) -> dict[str, Any]:
    """Reproduce a table into ``out`` (running it again continues it); returns the summary.
    ``plan_only`` returns the plan's jobs by kind without running or writing anything;
    ``report_only`` runs nothing and writes the table of the runs finished so far."""
    console = console or Console(stderr=True)
    out = Path(out).expanduser().resolve()
    cfg, spec = resolve(cfg)
    ctx = context(cfg, spec, out)
    choices = {n: c.value for n, c in spec.choices.items()} | dict(cfg.choices)
    if plan_only:
        plan = plan_table(spec, ctx, choices, cfg.rows)
        kinds: dict[str, int] = {}
        for job in plan.jobs.values():
            kinds[job.kind] = kinds.get(job.kind, 0) + 1
        cells = {(r.row, r.column) for r in plan.runs}
        res = {"jobs": kinds, "runs": len({r.run for r in plan.runs}), "cells": len(cells)}
        if cfg.scale == "paper":
            res["gpu"] = estimate_gpu_hours(plan.jobs, ctx.real_images)
        return res
    if report_only:
        return report(spec, cfg, ctx, out)
    plan_table(spec, ctx, choices, cfg.rows)  # fails before any record if it cannot be planned
    record_pipeline(cfg, out, MAY_CHANGE, f"a reproduction of {spec.name}",
                    {"replicates": [r.name for r in ctx.replicates]})  # fmt: skip

    def execute(jobs: dict[str, Job]) -> None:
        check_jobs(jobs)
        run_jobs(jobs, cfg.jobs, ctx.threads or 1, out / "logs", console, after_job,
                 cfg.executor, cfg.address)  # fmt: skip

    tuned = tune(spec, cfg, ctx, choices, execute) if cfg.tune else {}
    records = choice_records(spec, cfg, tuned)
    write_json_atomic(records, out / "choices.json")
    plan = plan_table(spec, ctx, {n: r["value"] for n, r in records.items()}, cfg.rows)
    execute(plan.jobs)
    result = write_outputs(spec, cfg, ctx, plan, records, out)
    console.print(result["markdown"], markup=False, highlight=False, soft_wrap=True)
    return result


def report(spec: TableSpec, cfg: ReproduceConfig, ctx: Context, out: Path) -> dict[str, Any]:
    """The table of the runs a sweep in ``out`` has finished, with the choices it recorded."""
    what = f"a reproduction of {spec.name}"
    if not check_pipeline(cfg, out, MAY_CHANGE, what) or not (out / "choices.json").is_file():
        raise ConfigError(
            f"--report: {out} holds no started reproduction of {spec.name} yet; run the same "
            "command without --report first"
        )
    records = read_json(out / "choices.json")
    plan = plan_table(spec, ctx, {n: r["value"] for n, r in records.items()}, cfg.rows)
    return write_outputs(spec, cfg, ctx, plan, records, out, finished_only=True)


def results_key(result: dict[str, Any]) -> str:
    """The marker of a table's block in a results page: table, dataset, scale (validation)."""
    key = f"genreid reproduce {result['table']} {result['dataset']} {result['scale']}"
    return key + (f" validation {result['validation']}" if result.get("validation") else "")


def write_results_block(path: str | Path, result: dict[str, Any], argv: list[str]) -> str:
    """(Re)write a finished table into its marked block of a markdown page such as
    docs/RESULTS.md, with the command that made it, the machine and the date; the rest of the
    page is kept. Returns "replaced", "appended" or "created". The command shown is the one
    that completes the table: a ``--report`` of a partial table is shown without the flag."""
    command = " ".join(["genreid", *(shlex.quote(a) for a in argv[1:] if a != "--report")])
    machine = f"{platform.machine()}, {cores()} cores, torch {torch.__version__}"
    body = (
        f"{result['markdown'].strip()}\n\nRegenerate (rewrites this block): `{command}`; "
        f"{machine}; {datetime.now(UTC).strftime('%Y-%m-%d')}."
    )
    return update_marked_block(path, results_key(result), body)


class ReproducePipeline:
    """The ``reproduce`` pipeline as a registry entry (``task: reproduce`` in a config)."""

    name = "reproduce"
    config_class = ReproduceConfig
    run = staticmethod(run_reproduce)
