"""What ``genreid report`` reads from run folders: configs, env, curves, results, CMC, images
and the hardest queries, gathered as plain data for :mod:`genreid.viz.report_page`.

Every run kind (reid, gan, dgnet, pipelines such as pretrain or slsr) has a config.yaml; what
else a folder holds differs, so each section a run cannot fill is left empty with a note. A
training run's config of an older version is shown as its task reads it today (migrated), so
runs of old and new versions compare like keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from genreid.core.config import CONFIG_VERSION, from_dict, migrate, to_dict
from genreid.core.errors import GenreidError, RunFolderError
from genreid.core.runs import read_results, require_run
from genreid.data.generated import MANIFEST, read_generated
from genreid.engine.tasks import TASKS
from genreid.eval.ranking.distance import compute_distance
from genreid.eval.ranking.features import load_features
from genreid.eval.ranking.metrics import evaluate_rank
from genreid.models.loading import run_kind
from genreid.viz.plots import ranked_gallery
from genreid.viz.report_page import HardQuery, ReportRun, Thumb, write_report_page

EVAL_CURVES = ("rank1", "mAP", "mINP")
ENV_KEYS = ("seed", "stage", "started", "host")
SETTING_NAMES = {"plain": "plain", "rerank": "re-ranked"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
FIGURES_SHOWN = 3
TOPK = 10
_READ_ERRORS = (OSError, ValueError, KeyError, GenreidError)


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as ``{"a.b.c": text}``; other values (lists, numbers, null, empty
    mappings and strings) are one JSON value, non-empty strings as they are."""
    if isinstance(tree, dict) and tree:
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    text = tree if isinstance(tree, str) and tree else json.dumps(tree)  # "" shows as ""
    return {prefix.rstrip("."): text}


def current_config(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A run's saved config as its task reads it today, and a note when that is not as saved.

    A training run's config of an older ``version`` is migrated (:func:`migrate`, as loading
    the run does) and typed, so keys new since then hold their defaults; a current one, a
    pipeline's or one that no longer loads is shown as saved."""
    kind = config.get("task", "reid")
    found = config.get("version", 1)
    if kind not in TASKS or found == CONFIG_VERSION:
        return config, ""
    cls = TASKS.get(str(kind)).config_class
    try:
        current = to_dict(from_dict(cls, migrate(cls, config)))
    except (GenreidError, TypeError, ValueError) as exc:  # an odd config: shown, not fatal
        return config, f"config.yaml of version {found} shown as saved: it does not load ({exc})"
    return current, f"config.yaml of version {found}, shown migrated to version {CONFIG_VERSION}"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _status(run: Path) -> str:
    res = read_results(run)
    if res is None:
        return "no results.json"
    status = res.get("status", "done")
    if "epochs" in res:
        return f"{status}, {res.get('epochs_completed', '?')}/{res['epochs']} epochs"
    return str(status)


def _env(run: Path) -> dict[str, str]:
    env = _read_json(run / "env.json") or {}
    out = {k: str(env[k]) for k in ENV_KEYS if k in env}
    out.update({f"versions.{k}": str(v) for k, v in (env.get("versions") or {}).items()})
    return out


def _curves(run: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Per-epoch losses, what the generated images were taught (``gen/*``) and evaluation
    metrics (epoch-end records of metrics.jsonl)."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if not record.get("epoch_end") or "epoch" not in record:
            continue
        for key, value in record.items():
            wanted = key.startswith(("loss", "gen/")) or key in EVAL_CURVES
            if wanted and isinstance(value, int | float) and math.isfinite(value):
                x, y = curves.setdefault(key, ([], []))
                x.append(float(record["epoch"]))
                y.append(100.0 * value if key in EVAL_CURVES else float(value))
    return curves


def _results(run: Path, evaluation: dict[str, Any] | None) -> list[tuple[str, dict[str, float]]]:
    if evaluation and evaluation.get("results"):
        return [
            (f"eval/results.json, {SETTING_NAMES.get(k, k)}", dict(v))
            for k, v in evaluation["results"].items()
        ]
    final = (read_results(run) or {}).get("final")
    # re-ID metrics only: a generator's measures (gen/*, swap/*) are curves, not ranking rows
    metrics = {
        k: float(v)
        for k, v in (final or {}).items()
        if k != "epoch" and not k.startswith(("gen/", "swap/"))
    }
    if metrics:
        return [(f"results.json final (epoch {final.get('epoch', '?')})", metrics)]
    return []


def _image_files(folder: Path) -> list[tuple[Path, int | None]]:
    if (folder / MANIFEST).is_file():
        return [(Path(r.path), r.cluster) for r in read_generated(folder)]
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    return [(f, None) for f in files]


def _generated(config: dict[str, Any], count: int) -> tuple[list[Thumb], str, str]:
    """Thumbnails of an even spread of ``data.generated``; (thumbs, source, note)."""
    folder = (config.get("data") or {}).get("generated")
    if not folder:
        return [], "", "no generated images (data.generated is not set)"
    path = Path(folder).expanduser()
    if not path.is_dir():
        return [], "", f"data.generated points at {path}, which is not a folder (moved?)"
    files = _image_files(path)
    if not files or count <= 0:
        return [], "", f"no images in {path}"
    picks = sorted({round(i) for i in np.linspace(0, len(files) - 1, min(count, len(files)))})
    thumbs = []
    for i in picks:
        f, cluster = files[i]
        caption = f.name if cluster is None else f"{f.name} c{cluster}"
        thumbs.append(Thumb(str(f), caption))
    return thumbs, f"{len(files)} images in {path}", ""


def _figures(run: Path) -> list[Thumb]:
    """The last figures a run drew (GAN samples per epoch, DG-Net swaps), per cluster too."""
    folders = [run / "figures"] + sorted(run.glob("cluster_*/figures"))
    out = []
    for folder in folders:
        pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
        label = "" if folder.parent == run else f"{folder.parent.name}/"
        out += [Thumb(str(p), f"{label}{p.name}") for p in pngs[-FIGURES_SHOWN:]]
    return out


def _features_file(run: Path, evaluation: dict[str, Any] | None) -> Path | None:
    named = Path(str((evaluation or {}).get("features", ""))).expanduser()
    for candidate in (named, run / "features.npz"):
        if candidate.suffix == ".npz" and candidate.is_file():
            return candidate
    return None


def hardest_queries(
    features: str | Path, metric: str = "cosine", count: int = 6, topk: int = TOPK
) -> list[HardQuery]:
    """The ``count`` queries whose first true match ranks lowest (then lowest AP), each with
    its top-k gallery images framed as matches or misses (market protocol, no re-ranking)."""
    fs = load_features(features)
    dist = compute_distance(fs.qf, fs.gf, metric=metric)
    _, _, per_query = evaluate_rank(
        dist, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids, max_rank=1,
        return_per_query=True,
    )  # fmt: skip
    valid = np.flatnonzero(per_query["valid"])
    first, ap = np.asarray(per_query["first_rank"]), np.asarray(per_query["ap"])
    order = np.lexsort((ap, -first))[:count]
    out = []
    for k in order:
        q = int(valid[k])
        top = ranked_gallery(dist[q], int(fs.q_pids[q]), int(fs.q_camids[q]), fs.g_pids,
                             fs.g_camids, topk)  # fmt: skip
        matches = [
            Thumb(
                str(fs.g_paths[g]),
                f"{r + 1}: id {fs.g_pids[g]}",
                "match" if fs.g_pids[g] == fs.q_pids[q] else "miss",
            )
            for r, g in enumerate(top)
        ]
        query = Thumb(str(fs.q_paths[q]), f"query {q}: id {fs.q_pids[q]}", "query")
        out.append(HardQuery(query, matches, int(first[k]) + 1, float(ap[k])))
    return out


def gather_run(
    run: str | Path, name: str | None = None, samples: int = 16, hardest: int = 6
) -> ReportRun:
    """Everything the report shows of one run folder (RunFolderError if it is not one)."""
    run = require_run(run)
    config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if not isinstance(config, dict):
        raise RunFolderError(f"{run / 'config.yaml'} is not a mapping of config keys")
    kind = str(config.get("task", "reid"))
    traits = run_kind(kind)  # None for a pipeline's folder
    config, migrated = current_config(config)
    r = ReportRun(name or run.name, str(run), kind, config=flatten(config))
    if migrated:
        r.notes["config"] = migrated
    subruns = sorted(p.parent.name for p in run.glob("*/config.yaml"))
    where = f"; it holds the runs {', '.join(subruns)}: pass those to compare them"

    def note(section: str, why: str) -> None:
        r.notes.setdefault(section, f"{why}{where if subruns else ''}")

    def attempt(section: str, what: str, fn: Any, default: Any) -> Any:
        try:
            return fn()
        except _READ_ERRORS as exc:  # one odd file leaves out its section, not the report
            note(section, f"{what} unreadable ({exc})")
            return default

    r.status = attempt("results", "results.json", lambda: _status(run), "results.json unreadable")
    r.env = attempt("config", "env.json", lambda: _env(run), {})
    has_metrics = (run / "metrics.jsonl").is_file()
    r.curves = attempt("curves", "metrics.jsonl", lambda: _curves(run) if has_metrics else {}, {})
    if not r.curves:
        note("curves", f"no per-epoch records in metrics.jsonl ({kind} run)")
    evaluation = attempt(
        "cmc", "eval/results.json", lambda: _read_json(run / "eval/results.json"), None
    )
    r.results = attempt("results", "results.json", lambda: _results(run, evaluation), [])
    r.cmc = {k: list(v) for k, v in ((evaluation or {}).get("cmc") or {}).items()}
    if traits and traits.test_model is None:
        for section in ("results", "cmc", "hardest"):
            r.notes.setdefault(section, f"a {traits.title} run: no re-ID evaluation")
    if not r.results:
        note("results", "no eval/results.json and no final metrics in results.json")
    if not r.cmc:
        note("cmc", "no eval/results.json with a CMC (`genreid evaluate --out RUN/eval`)")
    r.generated, r.generated_source, why = attempt(
        "generated", "data.generated", lambda: _generated(config, samples), ([], "", "")
    )
    if why and traits and traits.uses_generated:
        r.notes.setdefault("generated", why)
    r.figures = _figures(run)
    if not r.figures and traits and traits.draws_figures:
        r.notes.setdefault("generated", f"no figures in {run / 'figures'}")
    features = _features_file(run, evaluation)
    if features is None:
        note("hardest", "no features file (eval/results.json's features, or RUN/features.npz)")
    elif hardest > 0:
        metric = str((evaluation or {}).get("metric", "cosine"))
        r.hardest = attempt(
            "hardest", str(features), lambda: hardest_queries(features, metric, hardest), []
        )
        r.hardest_source = f"from {features} ({metric} distance, no re-ranking)"
    return r


def _run_folder(run: str | Path) -> Path:
    """``run`` if it holds config.yaml; else an error that names the runs it holds, if any."""
    folder = Path(run).expanduser()
    inside = sorted(p.parent.name for p in folder.glob("*/config.yaml")) if folder.is_dir() else []
    if inside and not (folder / "config.yaml").is_file():
        raise RunFolderError(
            f"expected a run folder with config.yaml at {folder}, found a folder of runs "
            f"({', '.join(inside)}); pass those, e.g. {folder / inside[0]}"
        )
    return require_run(folder)


def _names(runs: Sequence[Path]) -> list[str]:
    """Folder names, with their parent's where two runs share one."""
    names = [p.name for p in runs]
    out = [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in runs]
    return [n if out.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(out)]


def write_report(
    runs: Sequence[str | Path],
    out: str | Path,
    title: str | None = None,
    only_diff: bool = False,
    samples: int = 16,
    hardest: int = 6,
) -> Path:
    """Compare ``runs`` in one self-contained HTML page at ``out``; a folder, or a name that
    does not end in .html, gets ``out/report.html``."""
    if not runs:
        raise RunFolderError("expected at least one run folder to report on")
    paths = [_run_folder(r) for r in runs]
    out = Path(out).expanduser()
    if out.is_dir() or out.suffix.lower() not in (".html", ".htm"):
        out = out / "report.html"
    gathered = [
        gather_run(p, n, samples, hardest) for p, n in zip(paths, _names(paths), strict=True)
    ]
    title = title or f"genreid report: {', '.join(r.name for r in gathered)}"
    try:
        return write_report_page(out, gathered, title, only_diff)
    except OSError as exc:
        raise RunFolderError(
            f"cannot write {out}: {exc.strerror or exc}; pass another --out"
        ) from None
