"""Planning a table: its cells, per split and seed, become jobs with dependencies.

Per replicate (a split and seed): a GAN per generated-image source (on that split's training
images only; one per cluster for SLSR's sources) and one sample of it with the largest count
any cell takes, shared by every cell that uses the source; k-means where a cell needs clusters;
one training run per distinct cell (cells whose runs would be identical, such as a baseline row
shown under every column, share it); an evaluation of every run, and one more for each row
that evaluates a shared run with other settings (``eval_overrides``: DG-Net's f_prim, f_fine
and both, test features of one model). Jobs are plain data, so a process pool can run them.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genreid.core.config import read_config_dict
from genreid.core.errors import ConfigError
from genreid.engine.reproduce.spec import Source, TableSpec
from genreid.engine.runspec import Change, DataSource, RunSpec, parse_changes, task_of
from genreid.engine.tasks import TASKS
from genreid.engine.tasks.reid import step_matched_epochs

CHOICE = re.compile(r"\{(\w+)\}")  # {temperature}: a choice's value
LINK = re.compile(r"\{(run|clusters):([^{}]+)\}")  # {run:ROW}, {clusters:K}
SPLITS = {"viper": 10, "prid2011": 10}  # datasets whose parser takes split=0..N-1


def split_count(dataset: str, options: dict[str, Any] | None = None) -> int:
    """How many standard splits a dataset has (CUHK03's old protocol 20; others 1)."""
    if dataset == "cuhk03" and (options or {}).get("protocol") == "old":
        return 20
    return SPLITS.get(dataset, 1)


@dataclass(frozen=True)
class Replicate:
    """One split and seed; every cell runs once per replicate, so cells pair up by it."""

    split: int | None
    index: int  # the seed's index (0, 1, ...)
    splits: int = 10  # how many splits the dataset has (seeds of different replicates differ)

    @property
    def name(self) -> str:
        return f"seed{self.index}" if self.split is None else f"split{self.split}_seed{self.index}"

    @property
    def seed(self) -> int:
        """The training seed: the split itself for the first seed (as benchmarks/recipe_splits
        does), then index x splits + split."""
        return self.index if self.split is None else self.index * self.splits + self.split


def replicates(
    dataset: str, seeds: int, splits: int | None, options: dict[str, Any] | None = None
) -> list[Replicate]:
    """The replicates of a sweep: ``splits`` first splits (all by default) x ``seeds`` seeds."""
    total = split_count(dataset, options)
    if seeds < 1:
        raise ConfigError(f"--seeds: expected 1 or more, got {seeds}")
    if total == 1:
        if splits not in (None, 1):
            raise ConfigError(
                f"--splits: {dataset} has one split; use --seeds N for repeated runs instead"
            )
        return [Replicate(None, n) for n in range(seeds)]
    count = total if splits is None else splits
    if not 1 <= count <= total:
        raise ConfigError(f"--splits: {dataset} has {total} splits; expected 1 to {total}")
    return [Replicate(s, n, total) for n in range(seeds) for s in range(count)]


@dataclass
class Job:
    """One stage of one replicate: ``kind`` says what ``params`` mean (runner.stage_of)."""

    id: str  # its output folder relative to the table's folder
    kind: str  # train, sample, real, clusters, eval; render, generated_check; export
    out: str
    params: dict[str, Any]
    deps: list[str] = field(default_factory=list)
    title: str = ""


@dataclass
class CellRun:
    """A cell's run on one replicate, and where its evaluation lands."""

    row: str
    column: str
    replicate: str
    split: int | None
    seed: int
    run: str  # the run folder
    config: str
    overrides: list[str]
    eval: str = ""  # the evaluation folder: RUN/eval, or RUN/eval_VALUES with eval_overrides
    eval_overrides: list[str] = field(default_factory=list)

    @property
    def results(self) -> Path:
        """The evaluation's results.json."""
        return Path(self.eval or Path(self.run) / "eval") / "results.json"


@dataclass
class Context:
    """What a plan depends on besides the spec: scale, data, replicates and settings."""

    scale: str
    dataset: str
    root: str
    out: Path
    replicates: list[Replicate]
    real_images: Callable[[dict[str, Any]], int]  # labeled training images, given options
    options: dict[str, Any] = field(default_factory=dict)
    validation: float = 0.0  # > 0: hold out this share of training identities, evaluate there
    threads: int | None = None
    # the user's keys of every run of a task (key=value texts are read here, once)
    reid_overrides: Sequence[str | Change] = ()
    gan_overrides: Sequence[str | Change] = ()
    dgnet_overrides: Sequence[str | Change] = ()
    unlabeled: tuple[str, str] | None = None  # (dataset, root) of a `real:` source
    rerank: bool = False  # also score k-reciprocal re-ranking in every evaluation

    def __post_init__(self) -> None:
        self.reid_overrides = parse_changes(self.reid_overrides)
        self.gan_overrides = parse_changes(self.gan_overrides)
        self.dgnet_overrides = parse_changes(self.dgnet_overrides)


@dataclass
class Plan:
    jobs: dict[str, Job] = field(default_factory=dict)  # dependencies before dependents
    runs: list[CellRun] = field(default_factory=list)
    folders: dict[str, tuple[str, str]] = field(default_factory=dict)  # folder -> first cell


def substitute(text: str, choices: dict[str, Any], where: str) -> str:
    """``{name}`` of every choice replaced by its value (links ``{run:..}`` stay)."""

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in choices:
            raise ConfigError(
                f"{where}: {m.group(0)} names no choice; known: {', '.join(choices) or 'none'}"
            )
        return str(choices[m.group(1)])

    return CHOICE.sub(value, text)


@dataclass
class CellSettings:
    """A cell's run, replicate aside: config, overrides (links unresolved), generated images."""

    config: str
    overrides: list[str]
    source: Source | None
    clusters: int | None
    images: int
    eval_overrides: list[str] = field(default_factory=list)  # not part of the training
    steps_of_generated: int = 0  # train as many steps as a run with this many generated

    def key(self) -> str:
        """The training's identity: cells with equal keys share one run (their evaluation
        settings may differ)."""
        src = None if self.source is None else (self.source.name, self.clusters)
        return repr((self.config, self.overrides, src, self.images, self.steps_of_generated))


def cell_settings(
    spec: TableSpec, row: str, column: str, choices: dict[str, Any], scale: str
) -> CellSettings:
    """Merge the table, column and row of a cell (the row last, so it wins; an ``alone`` row
    ignores its column) and put in the choices' values."""
    r, c = spec.row(row), spec.column(column)
    parts = [r] if r.alone else [c, r]
    where = f"{spec.path}: cell ({row}, {column})"
    recipe = spec.recipes[r.recipe or (None if r.alone else c.recipe) or spec.recipe][scale]
    generated: dict[str, Any] = {}
    for part in parts:
        generated.update(part.generated)
    overrides = [*recipe.overrides, *spec.overrides]
    for part in parts:
        overrides += part.overrides
    overrides = [substitute(o, choices, where) for o in overrides]
    evaluation = [substitute(o, choices, where) for p in parts for o in p.eval_overrides]
    source, clusters, images = None, None, int(generated.get("images", 0) or 0)
    if images:
        if "source" not in generated:
            raise ConfigError(f"{where}: generated images but no source (row or column source:)")
        source = spec.sources[generated["source"]]
        if source.clusters is not None:
            clusters = int(substitute(source.clusters, choices, where))
    steps = max(p.steps_of_generated for p in parts)
    if steps and images:
        raise ConfigError(f"{where}: steps_of_generated is for rows without generated images")
    return CellSettings(recipe.config, overrides, source, clusters, images, evaluation, steps)


def eval_folder(overrides: Sequence[str]) -> str:
    """A run's evaluation folder: ``eval`` with its own settings, ``eval_VALUES`` with
    ``overrides`` (``model.feature=prim`` -> ``eval_prim``)."""
    values = [re.sub(r"[^\w.-]", "", o.split("=", 1)[1]) for o in overrides]
    return "_".join(["eval", *values])


class Planner:
    """Builds a :class:`Plan` cell by cell; shared jobs (GANs, samples, clusters, runs) once."""

    def __init__(
        self, spec: TableSpec, ctx: Context, choices: dict[str, Any], base: Path | None = None
    ) -> None:
        self.spec, self.ctx, self.choices = spec, ctx, dict(choices)
        self.base = base or ctx.out  # where jobs write (the table's folder, or OUT/tune)
        self.plan = Plan()
        self.tag = ""  # names a tuning candidate's run folders (e.g. temperature=0.1)
        self._folder_of: dict[str, str] = {}  # cell key -> run folder name

    # ------------------------------------------------------------------ shared pieces
    def data(self, rep: Replicate) -> DataSource:
        """The dataset, its folder and the replicate's parser options."""
        return DataSource(self.ctx.dataset, self.ctx.root, self.options(rep))

    def options(self, rep: Replicate) -> dict[str, Any]:
        """Parser options of a replicate: the user's, its split, the validation share."""
        opts = dict(self.ctx.options)
        if rep.split is not None:
            opts["split"] = rep.split
        if self.ctx.validation:
            opts["validation"] = self.ctx.validation
        return opts

    def run(self, config: str, rep: Replicate, **keys: Any) -> RunSpec:
        """A run of ``config`` on the replicate's data and seed, without progress bars (jobs
        write logs), with the threads of each job."""
        return RunSpec(config, self.data(rep), seed=rep.seed, threads=self.ctx.threads,
                       progress=False, **keys)  # fmt: skip

    def add(self, job: Job) -> Job:
        if job.id not in self.plan.jobs:
            self.plan.jobs[job.id] = job
        return self.plan.jobs[job.id]

    def rel(self, path: Path) -> str:
        return path.relative_to(self.ctx.out).as_posix()

    def clusters_job(self, rep: Replicate) -> Job:
        cl = self.spec.clusters
        if not cl:
            raise ConfigError(f"{self.spec.path}: a cell uses clusters but the table has none")
        row = str(cl["cell"])
        run = self.cell_run(row, self.spec.columns[0].name, rep)
        out = self.base / "clusters" / rep.name
        return self.add(
            Job(
                self.rel(out), "clusters", str(out),
                {"run": run.run, **self.data(rep).params(), "ks": [int(k) for k in cl["k"]],
                 "seed": rep.seed, "pick": str(cl.get("pick", "raw"))},
                [self.rel(Path(run.run))], f"{rep.name}: k-means on {row}'s features",
            )
        )  # fmt: skip

    def source_job(self, source: Source, clusters: int | None, rep: Replicate, num: int) -> Job:
        """The folder of unlabeled images a cell reads (GAN samples or real images)."""
        chosen = clusters is not None and "{" in str(source.clusters)  # k from a choice
        name = source.name + (f"_k{clusters}" if chosen else "")
        out = self.base / "generated" / name / rep.name
        if source.kind == "real":
            if self.ctx.unlabeled is None:
                raise ConfigError(
                    f"{self.spec.name}: source {source.name!r} takes real images of another "
                    f"dataset; give --unlabeled-root PATH (and --unlabeled-dataset, default "
                    f"{source.real})"
                )
            dataset, root = self.ctx.unlabeled
            job = Job(self.rel(out), "real", str(out),
                      {"dataset": dataset, "root": root, "num": 0, "seed": rep.seed},
                      [], f"{rep.name}: unlabeled real images of {dataset}")  # fmt: skip
        else:
            gan_out = self.base / "gan" / name / rep.name
            recipe = source.gan[self.ctx.scale]
            deps: list[str] = []
            keys: list[Change] = []
            if clusters is not None:
                cjob = self.clusters_job(rep)
                deps.append(cjob.id)
                keys.append(
                    Change("data.clusters", str(Path(cjob.out) / f"clusters_k{clusters}.csv"))
                )
            run = self.run(recipe.config, rep, recipe=parse_changes(recipe.overrides),
                           last=(*keys, *self.ctx.gan_overrides))  # fmt: skip
            gan = self.add(Job(self.rel(gan_out), "train", str(gan_out), run.params(),
                               deps, f"{rep.name}: GAN {name}"))  # fmt: skip
            job = Job(self.rel(out), "sample", str(out),
                      {"run": gan.out, "num": 0, "seed": rep.seed},
                      [gan.id], f"{rep.name}: sample GAN {name}")  # fmt: skip
        job = self.add(job)
        job.params["num"] = max(job.params["num"], num)  # the largest count any cell takes
        return job

    # ------------------------------------------------------------------ cells
    def folder(self, row: str, column: str, settings: CellSettings, tag: str = "") -> str:
        """The run folder's name: the cell's (a row evaluated with other settings names it
        after its recipe, the training that rows of its kind share)."""
        key = settings.key()
        if key not in self._folder_of:
            r = self.spec.row(row)
            single = len(self.spec.columns) == 1 or r.alone
            first = (r.recipe or self.spec.recipe) if r.eval_overrides else row
            name = (first if single else f"{first}__{column}") + (f"-{tag}" if tag else "")
            if name in self.plan.folders:  # same cell name, other settings
                name += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
            self._folder_of[key] = name
            self.plan.folders[name] = (row, column)
        return self._folder_of[key]

    def link(self, kind: str, arg: str, column: str, rep: Replicate, deps: list[str]) -> str:
        if kind == "run":
            run = self.cell_run(arg, column if not self.spec.row(arg).alone else "", rep)
            deps.append(self.rel(Path(run.run)))
            return run.run
        job = self.clusters_job(rep)
        deps.append(job.id)
        return str(Path(job.out) / f"clusters_k{int(arg)}.csv")

    def cell_run(self, row: str, column: str, rep: Replicate, tag: str = "") -> CellRun:
        """Plan (once) the training run and evaluation of a cell on a replicate; ``tag``
        names the run folder of a tuning candidate (``temperature=0.1``)."""
        column = column or self.spec.columns[0].name
        s = cell_settings(self.spec, row, column, self.choices, self.ctx.scale)
        run_dir = self.base / "runs" / self.folder(row, column, s, tag) / rep.name
        title = f"{rep.name}: {row} / {column}"
        train = self.train_job(run_dir, s, column, rep, title)
        ev = self.eval_job(train, s.eval_overrides, rep, title)
        p, folder = train.params, str(run_dir / ev.params["folder"])
        return CellRun(row, column, rep.name, rep.split, rep.seed, str(run_dir), p["config"],
                       p["overrides"], folder, list(s.eval_overrides))  # fmt: skip

    def train_job(
        self, run_dir: Path, s: CellSettings, column: str, rep: Replicate, title: str
    ) -> Job:
        """The training of a cell's settings on a replicate (planned once for every cell that
        shares it), with the jobs it needs."""
        rid = self.rel(run_dir)
        if rid in self.plan.jobs:
            return self.plan.jobs[rid]
        deps: list[str] = []
        changes = parse_changes(
            LINK.sub(lambda m: self.link(m.group(1), m.group(2), column, rep, deps), o)
            for o in s.overrides
        )  # the cell's keys, read once its links name their runs
        if s.source is not None:
            real = self.ctx.real_images(self.options(rep))
            num = max(1, round(s.images * real / self.spec.paper_train_images))
            gen = self.source_job(s.source, s.clusters, rep, num)
            deps.append(gen.id)
            changes += (Change("data.generated", gen.out), Change("data.max_generated", num))
        user = getattr(self.ctx, TASKS.get(task_of(s.config)).reproduce_overrides)
        run = self.run(s.config, rep, changes=changes, last=tuple(user))
        if s.steps_of_generated:
            run = run.then(self.step_matched(s, run, rep))
        return self.add(Job(rid, "train", str(run_dir), run.params(), deps, title))

    def step_matched(self, s: CellSettings, run: RunSpec, rep: Replicate) -> Change:
        """``train.epochs`` that give as many steps as the run's epochs (its config's, or the
        last change's) over its real images plus ``steps_of_generated`` scaled ones."""
        epochs = read_config_dict(s.config).get("train", {}).get("epochs")
        for change in run.all_changes():
            if change.key == "train.epochs":
                epochs = change.value
        real = self.ctx.real_images(self.options(rep))
        num = max(1, round(s.steps_of_generated * real / self.spec.paper_train_images))
        return Change("train.epochs", step_matched_epochs(int(epochs), real, num))

    def eval_job(self, train: Job, overrides: list[str], rep: Replicate, title: str) -> Job:
        """The evaluation of a training run, with its own settings into RUN/eval or with
        ``overrides`` into RUN/eval_VALUES (a folder of other overrides gets a hash)."""
        folder = eval_folder(overrides)
        existing = self.plan.jobs.get(f"{train.id}/{folder}")
        if existing is not None and existing.params["overrides"] != overrides:
            folder += "-" + hashlib.sha1(repr(overrides).encode()).hexdigest()[:8]
        how = f" with {' '.join(overrides)}" if overrides else ""
        return self.add(Job(f"{train.id}/{folder}", "eval", train.out,
                            {**self.data(rep).params(), "rerank": self.ctx.rerank,
                             "folder": folder, "overrides": list(overrides)}, [train.id],
                            f"{title}: evaluate{how}"))  # fmt: skip

    def add_cells(self, cells: list[tuple[str, str]]) -> Plan:
        """Plan these cells on every replicate; their runs are listed in ``plan.runs``."""
        for rep in self.ctx.replicates:
            for row, column in cells:
                self.plan.runs.append(self.cell_run(row, column, rep, self.tag))
        return self.plan


def plan_table(
    spec: TableSpec, ctx: Context, choices: dict[str, Any], rows: Sequence[str] = ()
) -> Plan:
    """Every cell of the table on every replicate; with ``rows``, only those rows' cells and
    the cells they are tested against (a long table run in parts, e.g. its costly rows last)."""
    cells = spec.cells()
    if rows:
        wanted = set(rows)
        refs = {ref for cell in cells if cell[0] in wanted and (ref := spec.reference(*cell))}
        cells = [cell for cell in cells if cell[0] in wanted or cell in refs]
    return Planner(spec, ctx, choices).add_cells(cells)


def check_rows(spec: TableSpec, rows: Sequence[str]) -> None:
    """``--rows``: every name a row of the table (did-you-mean otherwise)."""
    names = [r.name for r in spec.rows]
    for row in rows:
        if row not in names:
            close = difflib.get_close_matches(row, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"--rows: {spec.name} has no row {row!r}{hint}; its rows: {', '.join(names)}"
            )


def tuning_plan(
    spec: TableSpec, ctx: Context, choices: dict[str, Any], name: str
) -> tuple[Plan, dict[Any, list[CellRun]]]:
    """(the jobs, candidate -> its runs) of choosing ``name`` on validation identities."""
    choice = spec.choices[name]
    assert choice.tune is not None
    planner = Planner(spec, ctx, choices, base=ctx.out / "tune")
    runs: dict[Any, list[CellRun]] = {}
    for value in choice.candidates:
        planner.choices, planner.tag = {**choices, name: value}, f"{name}={value}"
        start = len(planner.plan.runs)
        planner.add_cells([choice.tune])
        runs[value] = planner.plan.runs[start:]
    return planner.plan, runs
