"""Evaluation reports: ``results.json``, a rich table for the terminal, query sampling."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from genreid.eval.protocols import METRIC_KEYS

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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = out / f".results.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    os.replace(tmp, path)
    return path


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
