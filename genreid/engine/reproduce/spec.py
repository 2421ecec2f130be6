"""Table specs of ``genreid reproduce``: one YAML file per paper table, read into typed specs.

A spec names the table's rows and columns (each with ``key=value`` overrides of the re-ID
recipe, a recipe name, a generated-image source and, for a row that tests another setting of
a shared run, its evaluation overrides), the recipes and GANs of each scale, the
values that had to be chosen (with where they come from), the reference cells of the paired
test and the paper's own numbers with the table and dataset they come from. The files live in
``genreid/configs/reproduce/`` and are data, not run configs; recipes and choices several
tables share live once in ``reproduce/shared/`` and are named by a table's ``include:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genreid.core.config import SHIPPED, read_yaml
from genreid.core.errors import ConfigError, RegistryError
from genreid.eval.ranking.protocols import METRIC_KEYS

TABLES_DIR = SHIPPED / "reproduce"
SHARED_DIR = TABLES_DIR / "shared"  # fragments tables include (recipes, choices), not tables
SHARED_KEYS = ("recipes", "choices")
SCALES = ("tiny", "paper")
DEFAULT_METRICS = ("rank1", "mAP")  # the columns of a table whose file has no metrics:
ROMAN = {"i": 1, "v": 5, "x": 10}
EVAL_SECTIONS = ("model", "eval", "data")  # what an evaluation of a trained run may change


@dataclass
class Recipe:
    """A shipped config (or file) and ``key=value`` overrides on top of it."""

    config: str
    overrides: list[str] = field(default_factory=list)


@dataclass
class Source:
    """Where a cell's unlabeled images come from: a GAN (one per cluster with ``clusters``)
    trained on the split's training images, or real images of another dataset."""

    name: str
    gan: dict[str, Recipe] = field(default_factory=dict)  # scale -> GAN recipe
    clusters: str | None = None  # k of the clusters (may name a choice: "{k}")
    real: str | None = None  # a dataset name: its training images, unlabeled

    @property
    def kind(self) -> str:
        return "real" if self.real else "gan"


@dataclass
class Axis:
    """A row or a column: its overrides, recipe and generated images, merged into each cell."""

    name: str
    label: str
    overrides: list[str] = field(default_factory=list)
    recipe: str | None = None
    generated: dict[str, Any] = field(default_factory=dict)  # source, images
    alone: bool = False  # a row whose cells ignore their column (one run for the whole row)
    reference: str | None = None  # a row tested against this row instead of the table's
    # key=value changes of the trained model at evaluation (model.feature=prim): rows whose
    # training settings are equal share one run, each evaluated into its own RUN/eval_VALUES
    eval_overrides: list[str] = field(default_factory=list)
    # a row without generated images trained for as many steps as one with this many (at the
    # paper's scale, scaled like generated images): the step-matched baseline
    steps_of_generated: int = 0


@dataclass
class Choice:
    """A value a cell needs that the table does not sweep, with where it comes from; with
    ``candidates`` and ``tune`` it can be chosen on validation identities (``--tune``)."""

    name: str
    value: Any
    source: str
    key: str = ""
    candidates: list[Any] = field(default_factory=list)
    tune: tuple[str, str] | None = None  # the (row, column) cell compared for each candidate
    metric: str = "mAP"


@dataclass
class PaperResults:
    """The paper's numbers (percent) for one dataset: (row, column) -> {metric: value}."""

    dataset: str
    source: str
    values: dict[tuple[str, str], dict[str, float | None]]


@dataclass
class TableSpec:
    """One paper table as ``genreid reproduce`` runs it."""

    name: str
    path: Path
    title: str
    paper: str
    sweeps: str
    rows: list[Axis]
    columns: list[Axis]
    recipes: dict[str, dict[str, Recipe]]
    recipe: str
    dataset: str = "market1501"
    scale: str = "tiny"
    corner: str = ""
    paper_train_images: int = 12936
    sources: dict[str, Source] = field(default_factory=dict)
    clusters: dict[str, Any] = field(default_factory=dict)  # cell (row), k, pick
    choices: dict[str, Choice] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    reference_row: str | None = None
    reference_columns: dict[str, str] = field(default_factory=dict)
    paper_results: list[PaperResults] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def row(self, name: str) -> Axis:
        return _named(self.rows, name, f"{self.name}: row")

    def column(self, name: str) -> Axis:
        return _named(self.columns, name, f"{self.name}: column")

    def cells(self) -> list[tuple[str, str]]:
        """Every (row, column), row by row."""
        return [(r.name, c.name) for r in self.rows for c in self.columns]

    def reference(self, row: str, column: str) -> tuple[str, str] | None:
        """The cell a cell is tested against: the row's own reference row, else the table's
        reference row in the same column, else the mapped column in the same row."""
        ref_row = self.row(row).reference or self.reference_row
        if ref_row and ref_row != row:
            return (ref_row, column)
        ref_col = self.reference_columns.get(column)
        if ref_col and ref_col != column:
            return (row, ref_col)
        return None

    def paper_for(self, dataset: str) -> PaperResults | None:
        """The paper's numbers for ``dataset``, else the first dataset the paper reports."""
        for block in self.paper_results:
            if block.dataset == dataset:
                return block
        return self.paper_results[0] if self.paper_results else None


def _named(items: list[Axis], name: str, what: str) -> Axis:
    for item in items:
        if item.name == name:
            return item
    raise ConfigError(f"{what} {name!r} does not exist; known: {', '.join(i.name for i in items)}")


def normal_name(name: str) -> str:
    """A table's name as typed (``FAPL-III``, ``fapl_3``, ``lsro table 2``) -> ``fapl3``."""
    s = re.sub(r"[^a-z0-9]", "", str(name).lower().replace("table", ""))
    m = re.fullmatch(r"(lsro|slsr|fapl|dgnet)([ivx]+)", s)
    if m:
        vals = [ROMAN[ch] for ch in m.group(2)]
        number = sum(-v if i + 1 < len(vals) and v < vals[i + 1] else v for i, v in enumerate(vals))
        s = f"{m.group(1)}{number}"
    return s


def table_names() -> list[str]:
    """Names of the shipped table specs, in paper order."""
    order = ("lsro", "slsr", "fapl", "dgnet")

    def key(name: str) -> tuple[int, int, str]:  # genreid's own tables last, by name
        m = re.fullmatch(r"([a-z]+)(\d+)", name)
        paper, number = (m.group(1), int(m.group(2))) if m else (name, 0)
        return (order.index(paper) if paper in order else len(order), number, name)

    return sorted((p.stem for p in TABLES_DIR.glob("*.yaml")), key=key)


def find_table(name: str | Path) -> Path:
    """A table spec file: an existing path, or a shipped table's name in any spelling."""
    p = Path(name).expanduser()
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    names = table_names()
    key = normal_name(str(name))
    if key in names:
        return TABLES_DIR / f"{key}.yaml"
    raise RegistryError(
        f"unknown table {str(name)!r}; expected one of {', '.join(names)} (`genreid reproduce "
        "--list`) or a table spec file (.yaml)"
    )


def _recipe(value: Any, where: str) -> Recipe:
    if isinstance(value, str):
        return Recipe(value)
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        return Recipe(value["config"], [str(o) for o in value.get("overrides") or []])
    raise ConfigError(f"{where}: expected a config name or {{config: NAME, overrides: [...]}}")


def _scales(value: Any, where: str) -> dict[str, Recipe]:
    if not isinstance(value, dict) or set(value) != set(SCALES):
        raise ConfigError(f"{where}: expected a recipe for each scale ({', '.join(SCALES)})")
    return {s: _recipe(value[s], f"{where}.{s}") for s in SCALES}


def _axis(data: Any, where: str) -> Axis:
    if not isinstance(data, dict) or "name" not in data:
        raise ConfigError(f"{where}: expected a mapping with at least a name")
    known = {"name", "label", "overrides", "recipe", "generated", "alone", "reference",
             "eval_overrides", "steps_of_generated"}  # fmt: skip
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    name = str(data["name"])
    return Axis(
        name=name,
        label=str(data.get("label", name)),
        overrides=[str(o) for o in data.get("overrides") or []],
        recipe=data.get("recipe"),
        generated=dict(data.get("generated") or {}),
        alone=bool(data.get("alone", False)),
        reference=None if data.get("reference") is None else str(data["reference"]),
        eval_overrides=_eval_overrides(data.get("eval_overrides"), f"{where}.eval_overrides"),
        steps_of_generated=int(data.get("steps_of_generated") or 0),
    )


def _eval_overrides(value: Any, where: str) -> list[str]:
    """``key=value`` items a trained run's evaluation may change (data, model, eval keys, as
    ``load_trained_model`` takes them)."""
    items = [str(o) for o in value or []]
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or key.split(".", 1)[0] not in EVAL_SECTIONS:
            raise ConfigError(
                f"{where}: {item!r}: expected key=value of a {'/'.join(EVAL_SECTIONS)}.* key "
                "(e.g. model.feature=prim)"
            )
    return items


def _paper(data: Any, where: str) -> PaperResults:
    if not isinstance(data, dict) or not {"dataset", "source", "values"} <= set(data):
        raise ConfigError(f"{where}: expected dataset, source and values (row: column: [..])")
    values: dict[tuple[str, str], dict[str, float | None]] = {}
    for row, cols in (data["values"] or {}).items():
        for col, nums in (cols or {}).items():
            nums = nums if isinstance(nums, list) else [nums]
            values[(str(row), str(col))] = dict(zip(("rank1", "mAP"), nums, strict=False))
    return PaperResults(str(data["dataset"]), str(data["source"]), values)


def _choice(name: str, data: Any, where: str) -> Choice:
    if not isinstance(data, dict) or "value" not in data or "source" not in data:
        raise ConfigError(f"{where}: expected value and source (where the value comes from)")
    tune = data.get("tune")
    if tune is not None and (not isinstance(tune, list) or len(tune) != 2):
        raise ConfigError(f"{where}.tune: expected [row, column] of the cell to compare on")
    return Choice(
        name=name,
        value=data["value"],
        source=str(data["source"]),
        key=str(data.get("key", "")),
        candidates=list(data.get("candidates") or []),
        tune=None if tune is None else (str(tune[0]), str(tune[1])),
        metric=str(data.get("metric", "mAP")),
    )


def shared_names() -> list[str]:
    """Names of the shared fragments a table may include."""
    return sorted(p.stem for p in SHARED_DIR.glob("*.yaml"))


def _with_includes(d: dict[str, Any], where: str) -> dict[str, Any]:
    """``d`` with the recipes and choices of its ``include:`` fragments merged in, in order;
    the table's own entries win over a fragment's of the same name."""
    names = d.pop("include", None) or []
    names = [names] if isinstance(names, str) else names
    merged: dict[str, dict[str, Any]] = {key: {} for key in SHARED_KEYS}
    for name in names:
        path = SHARED_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"{where}: include: no shared fragment {name!r}; known: "
                f"{', '.join(shared_names()) or 'none'} (genreid/configs/reproduce/shared/)"
            )
        part = read_yaml(path) or {}
        unknown = set(part) - set(SHARED_KEYS)
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {sorted(unknown)}; a shared fragment holds only "
                f"{' and '.join(SHARED_KEYS)}"
            )
        for key in SHARED_KEYS:
            merged[key].update(part.get(key) or {})
    for key in SHARED_KEYS:
        if merged[key]:
            d[key] = {**merged[key], **(d.get(key) or {})}
    return d


def load_table(name: str | Path) -> TableSpec:
    """A table spec by name or path (its ``include:`` fragments merged in); a malformed file
    is a ConfigError naming the key."""
    path = find_table(name)
    where = str(path)
    d = _with_includes(read_yaml(path), where)
    for key in ("title", "paper", "sweeps", "rows", "columns", "recipes", "recipe"):
        if key not in d:
            raise ConfigError(f"{where}: missing {key!r} (see genreid/configs/reproduce/*.yaml)")
    ref = d.get("reference") or {}
    sources = {}
    for sname, s in (d.get("sources") or {}).items():
        if not isinstance(s, dict) or ("gan" in s) == ("real" in s):
            raise ConfigError(f"{where}: sources.{sname}: expected either gan: or real:")
        gan = _scales(s["gan"], f"{where}: sources.{sname}.gan") if "gan" in s else {}
        clusters = None if s.get("clusters") is None else str(s["clusters"])
        sources[sname] = Source(str(sname), gan, clusters, s.get("real"))
    defaults = d.get("defaults") or {}
    spec = TableSpec(
        name=path.stem,
        path=path,
        title=str(d["title"]),
        paper=str(d["paper"]),
        sweeps=str(d["sweeps"]),
        rows=[_axis(r, f"{where}: rows[{i}]") for i, r in enumerate(d["rows"])],
        columns=[_axis(c, f"{where}: columns[{i}]") for i, c in enumerate(d["columns"])],
        recipes={n: _scales(r, f"{where}: recipes.{n}") for n, r in d["recipes"].items()},
        recipe=str(d["recipe"]),
        dataset=str(defaults.get("dataset", "market1501")),
        scale=str(defaults.get("scale", "tiny")),
        corner=str(d.get("corner", "")),
        paper_train_images=int(d.get("paper_train_images", 12936)),
        sources=sources,
        clusters=dict(d.get("clusters") or {}),
        choices={
            str(n): _choice(str(n), c, f"{where}: choices.{n}")
            for n, c in (d.get("choices") or {}).items()
        },
        overrides=[str(o) for o in d.get("overrides") or []],
        reference_row=None if ref.get("row") is None else str(ref["row"]),
        reference_columns={str(k): str(v) for k, v in (ref.get("columns") or {}).items()},
        paper_results=[
            _paper(p, f"{where}: paper_results[{i}]")
            for i, p in enumerate(d.get("paper_results") or [])
        ],
        notes=[str(n) for n in d.get("notes") or []],
        metrics=tuple(str(m) for m in d.get("metrics") or DEFAULT_METRICS),
    )
    check_table(spec)
    return spec


def check_table(spec: TableSpec) -> None:
    """Every name a spec uses exists: recipes, sources, reference rows and columns, choices."""
    where = str(spec.path)
    for metric in spec.metrics:  # what an evaluation writes
        if metric not in METRIC_KEYS:
            raise ConfigError(
                f"{where}: metrics: {metric!r} is not one of {', '.join(METRIC_KEYS)}"
            )
    names = [a.name for a in spec.rows], [a.name for a in spec.columns]
    for kind, items in zip(("row", "column"), names, strict=True):
        if len(set(items)) != len(items):
            raise ConfigError(f"{where}: {kind} names must be distinct, got {items}")
    if spec.scale not in SCALES:
        raise ConfigError(f"{where}: defaults.scale: expected tiny or paper, got {spec.scale!r}")
    for axis in [*spec.rows, *spec.columns]:
        recipe = axis.recipe or spec.recipe
        if recipe not in spec.recipes:
            raise ConfigError(f"{where}: {axis.name}: unknown recipe {recipe!r}")
        source = axis.generated.get("source")
        if source is not None and source not in spec.sources:
            raise ConfigError(f"{where}: {axis.name}: unknown source {source!r}")
        if axis.reference is not None:
            spec.row(axis.reference)
    if spec.recipe not in spec.recipes:
        raise ConfigError(f"{where}: recipe: {spec.recipe!r} is not among recipes")
    if spec.reference_row is not None:
        spec.row(spec.reference_row)
    for a, b in spec.reference_columns.items():
        spec.column(a), spec.column(b)
    for choice in spec.choices.values():
        if choice.tune is not None:
            spec.row(choice.tune[0]), spec.column(choice.tune[1])
            if not choice.candidates:
                raise ConfigError(f"{where}: choices.{choice.name}: tune needs candidates")
    if spec.clusters:
        if "cell" not in spec.clusters or "k" not in spec.clusters:
            raise ConfigError(f"{where}: clusters: expected cell (a row) and k (a list)")
        spec.row(str(spec.clusters["cell"]))
    for block in spec.paper_results:
        for row, col in block.values:
            spec.row(row), spec.column(col)
