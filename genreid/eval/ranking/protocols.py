"""Evaluation protocols: features from an extractor, distances, CMC / mAP / mINP tables.

An *extractor* is any callable ``extract(records: list[ImageRecord]) -> array (n, d)``
(NumPy or torch). Within one driver call every unique image path is extracted once and
cached. Result rows hold fractions in [0, 1]: ``rank1, rank5, rank10, rank20, mAP, mINP``.

- :func:`evaluate_query_gallery`: Market-1501, DukeMTMC-reID, MSMT17, CUHK03 (new protocol),
  with optional k-reciprocal re-ranking and multi-query pooling;
- :func:`evaluate_cuhk03_classic`: CUHK03 old protocol, 20 splits, single-shot gallery
  sampling (the ``cuhk03_classic`` protocol of ``evaluate_rank``), averaged;
- :func:`evaluate_splits`: VIPeR and PRID2011, 10 random splits averaged, with per-split
  rows and the sample standard deviation over splits.

Split-based drivers take either one extractor, shared by all splits (its cache then spans
the splits), or, with ``per_split=True``, a factory ``extract_for_split(i) -> extract``
for models trained separately on each split (one cache per split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genreid.data.datasets import load_dataset
from genreid.data.records import ImageRecord, ReIDDataset
from genreid.eval.ranking.distance import compute_distance
from genreid.eval.ranking.features import FeaturesError
from genreid.eval.ranking.metrics import evaluate_rank
from genreid.eval.ranking.multiquery import pool_multiquery
from genreid.eval.ranking.rerank import re_ranking_features

Extractor = Callable[[list[ImageRecord]], Any]
SplitFactory = Callable[[int], Extractor]

RANKS: tuple[int, ...] = (1, 5, 10, 20)
METRIC_KEYS: tuple[str, ...] = tuple(f"rank{k}" for k in RANKS) + ("mAP", "mINP")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


class CachedExtractor:
    """Wraps an extractor so that each image path is extracted once; checks its output."""

    def __init__(self, extract: Extractor) -> None:
        self.extract = extract
        self._cache: dict[str, np.ndarray] = {}
        self.calls = 0

    def __len__(self) -> int:
        return len(self._cache)

    def __call__(self, records: Sequence[ImageRecord]) -> np.ndarray:
        todo = list({r.path: r for r in records if r.path not in self._cache}.values())
        if todo:
            feats = _to_numpy(self.extract(todo))
            self.calls += 1
            if feats.ndim != 2 or feats.shape[0] != len(todo):
                raise FeaturesError(
                    f"the extractor returned shape {feats.shape} for {len(todo)} images; "
                    "expected (images, dimensions)."
                )
            bad = ~np.isfinite(feats).all(axis=1)
            if bad.any():
                raise FeaturesError(
                    f"the extractor returned NaN or inf features for {int(bad.sum())} "
                    f"image(s), first {todo[int(np.flatnonzero(bad)[0])].path}; check the "
                    "model and re-extract."
                )
            for r, f in zip(todo, feats, strict=True):
                self._cache[r.path] = f
        if not records:
            raise FeaturesError("no images to extract features from (empty split).")
        return np.stack([self._cache[r.path] for r in records])


def summarize(cmc: Sequence[float], mAP: float, mINP: float) -> dict[str, float]:
    """Rank-1/5/10/20, mAP and mINP as a row of floats (ranks past the CMC end use its last)."""
    cmc = np.asarray(cmc, dtype=np.float64)
    row = {f"rank{k}": float(cmc[min(k, len(cmc)) - 1]) for k in RANKS}
    row["mAP"] = float(mAP)
    row["mINP"] = float(mINP)
    return row


def _pair_codes(pids: np.ndarray, camids: np.ndarray) -> np.ndarray:
    return np.stack([pids, camids], axis=1)


def _counts_of(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """How many rows of ``table`` equal each row of ``keys`` (rows of int64 pairs/singles)."""
    uniq, counts = np.unique(table, axis=0, return_counts=True)
    if len(uniq) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    # Map rows to scalars via their index in the sorted union for a vectorised lookup.
    both, inverse = np.unique(np.concatenate([uniq, keys]), axis=0, return_inverse=True)
    lookup = np.zeros(len(both), dtype=np.int64)
    lookup[inverse.reshape(-1)[: len(uniq)]] = counts
    return lookup[inverse.reshape(-1)[len(uniq) :]]


def has_valid_match(q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any) -> np.ndarray:
    """Per query: does the gallery hold its identity seen from another camera (not junk)?"""
    q_pids, g_pids = np.asarray(q_pids, np.int64), np.asarray(g_pids, np.int64)
    q_camids, g_camids = np.asarray(q_camids, np.int64), np.asarray(g_camids, np.int64)
    same_pid = _counts_of(q_pids[:, None], g_pids[:, None])
    same_pid_cam = _counts_of(_pair_codes(q_pids, q_camids), _pair_codes(g_pids, g_camids))
    return (same_pid - same_pid_cam > 0) & (q_pids != -1)


@dataclass
class Evaluation:
    """Scores of one query/gallery set, plain and optionally re-ranked, with distances."""

    metric: str
    protocol: str
    num_query: int
    num_gallery: int
    num_valid_query: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    cmc: dict[str, np.ndarray] = field(default_factory=dict)
    distmat: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # name -> "ap" and "first_rank" (0-based) of each valid query, in query order; "valid" mask
    per_query: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no distance matrices)."""
        return {
            "metric": self.metric,
            "protocol": self.protocol,
            "num_query": self.num_query,
            "num_gallery": self.num_gallery,
            "num_valid_query": self.num_valid_query,
            **self.params,
            "results": self.results,
            "cmc": {k: [float(v) for v in c] for k, c in self.cmc.items()},
        }


def _rerank_distance(
    qf: np.ndarray, gf: np.ndarray, metric: str, k1: int, k2: int, lambda_value: float
) -> np.ndarray:
    if metric == "cosine":  # k-reciprocal neighbours of L2-normalised features
        qf = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
        gf = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
    return np.asarray(
        re_ranking_features(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value), dtype=np.float32
    )


def evaluate_arrays(
    qf: np.ndarray,
    gf: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    metric: str = "cosine",
    protocol: str = "market",
    rerank: bool = False,
    max_rank: int = 50,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    seed: int = 0,
    repeats: int = 10,
    ap: str = "standard",
) -> Evaluation:
    """Distances, CMC, mAP and mINP of query vs gallery features (and re-ranked if asked).

    ``ap="trapezoid"`` scores AP as the original Market-1501 MATLAB script does.
    """
    qf, gf = _to_numpy(qf), _to_numpy(gf)
    q_pids, g_pids = np.asarray(q_pids, np.int64), np.asarray(g_pids, np.int64)
    q_camids, g_camids = np.asarray(q_camids, np.int64), np.asarray(g_camids, np.int64)
    if not has_valid_match(q_pids, g_pids, q_camids, g_camids).any():
        raise FeaturesError(
            "no query has a gallery image of its identity from another camera, so nothing "
            "can be matched; check that q_pids and g_pids number identities the same way."
        )
    dists = {"plain": np.asarray(compute_distance(qf, gf, metric=metric), dtype=np.float32)}
    params: dict[str, Any] = {"max_rank": max_rank, "ap": ap}
    if protocol == "cuhk03_classic":
        params.update(seed=seed, repeats=repeats)
    if rerank:
        dists["rerank"] = _rerank_distance(qf, gf, metric, k1, k2, lambda_value)
        params["rerank"] = {"k1": k1, "k2": k2, "lambda": lambda_value}
    ev = Evaluation(metric, protocol, len(qf), len(gf), 0, distmat=dists, params=params)
    for name, dist in dists.items():
        cmc, mAP, per_query = evaluate_rank(
            dist,
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            max_rank=min(max_rank, len(gf)),  # the CMC cannot change past the gallery size
            protocol=protocol,
            return_per_query=True,
            seed=seed,
            repeats=repeats,
            ap=ap,
        )
        ev.num_valid_query = int(np.asarray(per_query["valid"]).sum())
        ev.results[name] = summarize(cmc, mAP, per_query["mINP"])
        ev.cmc[name] = np.asarray(cmc, dtype=np.float64)
        ev.per_query[name] = {
            "ap": np.asarray(per_query["ap"], dtype=np.float64),
            "first_rank": np.asarray(per_query["first_rank"], dtype=np.int64),
            "valid": np.asarray(per_query["valid"], dtype=bool),
        }
    return ev


def _evaluate_records(
    extract: CachedExtractor,
    query: Sequence[ImageRecord],
    gallery: Sequence[ImageRecord],
    **kwargs: Any,
) -> Evaluation:
    qf, gf = extract(query), extract(gallery)
    return evaluate_arrays(
        qf,
        gf,
        [r.pid for r in query],
        [r.pid for r in gallery],
        [r.camid for r in query],
        [r.camid for r in gallery],
        **kwargs,
    )


def evaluate_query_gallery(
    extract: Extractor,
    dataset: ReIDDataset | str,
    metric: str = "cosine",
    rerank: bool = False,
    multi_query: str | None = None,
    *,
    root: str | Path | None = None,
    max_rank: int = 50,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    ap: str = "standard",
    **options: Any,
) -> dict[str, Any]:
    """Single-query (or multi-query: ``"mean"``/``"max"``) Market-style evaluation of a split.

    ``dataset`` is a parsed split, or a dataset name with ``root`` and parser ``options``.
    Multi-query pools the dataset's ``mquery`` (``gt_bbox``) images, or, when it has none,
    the query images themselves, of each query's identity and camera.
    """
    if isinstance(dataset, str):
        if root is None:
            raise ValueError("evaluate_query_gallery: pass root= with a dataset name")
        dataset = load_dataset(dataset, root, **options)
    cached = CachedExtractor(extract)
    qf, gf = cached(dataset.query), cached(dataset.gallery)
    info: dict[str, Any] = {"dataset": dataset.name, "split": dataset.split}
    if multi_query:
        source = dataset.mquery or dataset.query
        mqf = cached(source)
        qf = pool_multiquery(
            qf,
            [r.pid for r in dataset.query],
            [r.camid for r in dataset.query],
            mqf,
            [r.pid for r in source],
            [r.camid for r in source],
            method=multi_query,
            normalize=metric == "cosine",
        )
        info["multi_query"] = {
            "method": multi_query,
            "source": "mquery" if dataset.mquery else "query",
        }
    ev = evaluate_arrays(
        qf,
        gf,
        [r.pid for r in dataset.query],
        [r.pid for r in dataset.gallery],
        [r.camid for r in dataset.query],
        [r.camid for r in dataset.gallery],
        metric=metric,
        rerank=rerank,
        max_rank=max_rank,
        k1=k1,
        k2=k2,
        lambda_value=lambda_value,
        ap=ap,
    )
    return {**info, **ev.to_dict()}


def _over_splits(
    extract: Extractor | SplitFactory,
    per_split: bool,
    load_split: Callable[[int], ReIDDataset],
    num_splits: int | None,
    **kwargs: Any,
) -> dict[str, Any]:
    first = load_split(0)
    n = first.num_splits if num_splits is None else num_splits
    if not 1 <= n <= first.num_splits:
        raise ValueError(f"{first.name}: num_splits must be in 1..{first.num_splits}, got {n}")
    shared = None if per_split else CachedExtractor(extract)  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    cmcs: list[np.ndarray] = []
    ev: Evaluation | None = None
    for i in range(n):
        ds = first if i == 0 else load_split(i)
        cached = shared if shared is not None else CachedExtractor(extract(i))  # type: ignore[arg-type]
        ev = _evaluate_records(cached, ds.query, ds.gallery, **kwargs)
        rows.append(
            {
                "split": i,
                "num_query": ev.num_query,
                "num_gallery": ev.num_gallery,
                "num_valid_query": ev.num_valid_query,
                **ev.results["plain"],
            }
        )
        cmcs.append(ev.cmc["plain"])
    assert ev is not None
    table = np.array([[row[k] for k in METRIC_KEYS] for row in rows], dtype=np.float64)
    ddof = 1 if n > 1 else 0
    length = min(len(c) for c in cmcs)
    return {
        "dataset": first.name,
        "metric": ev.metric,
        "protocol": ev.protocol,
        "num_splits": n,
        **ev.params,
        "results": {"plain": dict(zip(METRIC_KEYS, table.mean(0).tolist(), strict=True))},
        "std": {"plain": dict(zip(METRIC_KEYS, table.std(0, ddof=ddof).tolist(), strict=True))},
        "splits": rows,
        "cmc": {"plain": np.mean([c[:length] for c in cmcs], axis=0).tolist()},
    }


def evaluate_splits(
    extract: Extractor | SplitFactory,
    name: str,
    root: str | Path,
    metric: str = "cosine",
    num_splits: int | None = None,
    *,
    per_split: bool = False,
    max_rank: int = 50,
    ap: str = "standard",
    **options: Any,
) -> dict[str, Any]:
    """VIPeR / PRID2011: mean (and std) of rank-k, mAP, mINP over the random splits.

    ``extract`` is one extractor, or with ``per_split=True`` a factory
    ``extract_for_split(split_index) -> extractor``. ``num_splits=None`` uses all the
    dataset's splits; ``options`` go to the parser (e.g. ``seed``, ``splits_file``).
    """

    def load(i: int) -> ReIDDataset:
        return load_dataset(name, root, split=i, **options)

    return _over_splits(
        extract, per_split, load, num_splits, metric=metric, max_rank=max_rank, ap=ap
    )


def evaluate_cuhk03_classic(
    extract: Extractor | SplitFactory,
    root: str | Path,
    variant: str = "detected",
    metric: str = "cosine",
    *,
    per_split: bool = False,
    num_splits: int | None = None,
    max_rank: int = 50,
    seed: int = 0,
    repeats: int = 10,
    ap: str = "standard",
) -> dict[str, Any]:
    """CUHK03 old protocol: 20 splits of 100 test identities, single-shot CMC averaged."""

    def load(i: int) -> ReIDDataset:
        return load_dataset("cuhk03", root, protocol="classic", variant=variant, split=i)

    out = _over_splits(
        extract,
        per_split,
        load,
        num_splits,
        metric=metric,
        protocol="cuhk03_classic",
        max_rank=max_rank,
        seed=seed,
        repeats=repeats,
        ap=ap,
    )
    out["variant"] = variant
    return out
