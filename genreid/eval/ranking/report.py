"""Evaluation reports: what ``genreid evaluate`` writes (``results.json``, CMC and ranked-list
figures), a rich table for the terminal, and query sampling for the figures."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from genreid.core.errors import RunFolderError
from genreid.core.files import make_output_dir, write_json_atomic
from genreid.eval.ranking.features import FeatureSet, load_features
from genreid.eval.ranking.protocols import METRIC_KEYS, evaluate_arrays, has_valid_match
from genreid.viz.plots import plot_cmc, plot_ranklist

EVAL_DEFAULTS: dict[str, Any] = {
    "metric": "cosine", "protocol": "market", "rerank": False, "max_rank": 50, "k1": 20,
    "k2": 6, "lambda_value": 0.3, "seed": 0, "repeats": 10, "ap": "standard",
}  # fmt: skip

_HEADERS = {
    "rank1": "R-1",
    "rank5": "R-5",
    "rank10": "R-10",
    "rank20": "R-20",
    "mAP": "mAP",
    "mINP": "mINP",
}
_SETTING_NAMES = {"plain": "plain", "rerank": "re-ranked"}


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return x


def write_results(result: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/results.json`` (atomically) and return its path."""
    return write_json_atomic(_jsonable(result), Path(out_dir) / "results.json")


def results_table(result: Mapping[str, Any], title: str | None = None) -> Table:
    """A rich table of a result dict: one row per setting (plain / re-ranked), in percent."""
    table = Table(title=title, title_justify="left")
    table.add_column("setting")
    for key in METRIC_KEYS:
        table.add_column(_HEADERS[key], justify="right")
    std = result.get("std", {})
    for setting, row in result["results"].items():
        cells = []
        for key in METRIC_KEYS:
            cell = f"{100 * row[key]:.1f}"
            if setting in std:
                cell += f" ±{100 * std[setting][key]:.1f}"
            cells.append(cell)
        table.add_row(_SETTING_NAMES.get(setting, setting), *cells)
    return table


def choose_queries(
    num: int, num_query: int, seed: int, candidates: np.ndarray | None = None
) -> list[int]:
    """``num`` sorted query indices (from ``candidates``) drawn without replacement by seed."""
    pool = np.arange(num_query) if candidates is None else np.asarray(candidates)
    if num <= 0 or len(pool) == 0:
        return []
    rng = np.random.default_rng(seed)
    chosen = rng.choice(pool, size=min(num, len(pool)), replace=False)
    return sorted(int(i) for i in chosen)


PER_QUERY = "per_query.npz"


def write_per_query(per_query: Mapping[str, Mapping[str, np.ndarray]], path: Path) -> Path:
    """Each query's AP and first-match rank per distance (``plain_ap``, ``rerank_first_rank``,
    ...) and the ``valid`` mask over all queries: what paired per-query tests compare."""
    arrays: dict[str, np.ndarray] = {}
    for name, pq in per_query.items():
        arrays[f"{name}_ap"], arrays[f"{name}_first_rank"] = pq["ap"], pq["first_rank"]
        arrays["valid"] = pq["valid"]
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def read_per_query(path: str | Path) -> dict[str, np.ndarray]:
    """What :func:`write_per_query` wrote (``RUN/eval/per_query.npz``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise RunFolderError(
            f"cannot read per-query scores {path}: {exc}; run `genreid evaluate` again"
        ) from None


def run_evaluation(
    features: str | Path | FeatureSet,
    out: str | Path,
    ranklist: int = 0,
    source: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """What ``genreid evaluate`` does: metrics (and re-ranked ones), results.json, cmc.png and,
    with ``ranklist`` > 0, ranklist.png of that many queries. Warnings about the figures are
    returned under ``warnings``."""
    unknown = set(options) - set(EVAL_DEFAULTS)
    if unknown:
        raise TypeError(f"run_evaluation: unknown option(s) {sorted(unknown)}")
    options = {**EVAL_DEFAULTS, **options}
    fs = features if isinstance(features, FeatureSet) else load_features(features)
    out = Path(out)
    ev = evaluate_arrays(fs.qf, fs.gf, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids, **options)
    source = source or (str(features) if not isinstance(features, FeatureSet) else "features")
    result: dict[str, Any] = {"features": source, **ev.to_dict(), "seed": options["seed"]}
    make_output_dir(out)
    result["files"] = {"cmc": "cmc.png", "per_query": PER_QUERY}
    write_per_query(ev.per_query, out / PER_QUERY)
    plot_cmc(ev.cmc, out / "cmc.png", title=f"CMC ({ev.metric}, {ev.protocol})")
    caught: list[str] = []
    if ranklist > 0:
        final = ev.distmat["rerank" if "rerank" in ev.distmat else "plain"]
        caught = _ranklist(fs, final, ranklist, options["seed"], out / "ranklist.png")
        result["files"]["ranklist"] = "ranklist.png"
    write_results(result, out)
    if caught:
        result["warnings"] = caught
    return result


def _ranklist(fs: FeatureSet, distmat: np.ndarray, num: int, seed: int, path: Path) -> list[str]:
    """Draw ``num`` queries that have a true match; returns the figure's warnings."""
    valid = has_valid_match(fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids)
    candidates = np.flatnonzero(valid) if valid.any() else None
    chosen = choose_queries(num, fs.num_query, seed, candidates)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_ranklist(
            distmat, chosen, fs.q_paths, fs.g_paths, fs.q_pids, fs.g_pids, fs.q_camids,
            fs.g_camids, path,
        )  # fmt: skip
    return [str(w.message) for w in caught]
