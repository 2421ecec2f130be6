"""Random identity splits for small datasets, fixed by a seed and stored in a JSON file.

VIPeR and PRID2011 are evaluated over 10 random train/test splits. The splits depend only
on the sorted identity list and the seed; they are written to a JSON file so that every run
(and other tools) use exactly the same ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from genreid.core.cache import dataset_cache
from genreid.data.errors import DatasetError


def make_splits(pids: list[int], num_train: int, num_splits: int, seed: int) -> list[dict]:
    """``num_splits`` random partitions of ``pids`` into ``num_train`` train and the rest test."""
    rng = np.random.default_rng(seed)
    ordered = np.array(sorted(pids))
    splits = []
    for _ in range(num_splits):
        perm = rng.permutation(len(ordered))
        train = sorted(int(p) for p in ordered[perm[:num_train]])
        test = sorted(int(p) for p in ordered[perm[num_train:]])
        splits.append({"train": train, "test": test})
    return splits


def default_splits_file(dataset: str, root: Path) -> Path:
    """Splits live in the user cache, keyed by the dataset root (never written into it)."""
    return dataset_cache(dataset, root) / "splits.json"


def _read_splits(path: Path, dataset: str) -> dict:
    """A splits JSON file, or a DatasetError that names the file and what is wrong."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{dataset}: cannot read splits file {path} ({exc}); expected JSON like "
            '{"seed": 0, "splits": [{"train": [...], "test": [...]}, ...]}.'
        ) from None
    splits = data.get("splits") if isinstance(data, dict) else None
    if (
        not isinstance(splits, list)
        or not splits
        or not all(isinstance(sp, dict) and {"train", "test"} <= set(sp) for sp in splits)
    ):
        raise DatasetError(
            f"{dataset}: splits file {path} must hold a non-empty list 'splits' of objects "
            "with 'train' and 'test' identity lists."
        )
    return data


def _check_splits(splits: list[dict], pids: list[int], path: Path, root: Path, dataset: str):
    expected = sorted(pids)
    for i, sp in enumerate(splits):
        if sorted(sp["train"] + sp["test"]) != expected:
            raise DatasetError(
                f"{dataset}: split {i} in {path} does not partition the {len(expected)} "
                f"identities found under {root}. Pass a splits file made for this data, or "
                "leave splits_file out to use genreid's fixed random splits."
            )


def load_or_create_splits(
    dataset: str,
    root: Path,
    pids: list[int],
    num_train: int,
    num_splits: int,
    seed: int,
    splits_file: str | Path | None = None,
) -> tuple[list[dict], Path]:
    """The splits to use and the file they live in.

    A ``splits_file`` the user names is used as it is (created from ``seed`` only when it does
    not exist yet); a splits file that does not fit the identities is an error. Without one,
    the splits live in the user cache and are re-drawn there when the seed or the data change.
    """
    if splits_file is not None:
        path = Path(splits_file).expanduser()
        if path.is_file():
            splits = _read_splits(path, dataset)["splits"]
            _check_splits(splits, pids, path, root, dataset)
            return splits, path
    else:
        path = default_splits_file(dataset, root)
        if path.is_file():
            try:
                data = _read_splits(path, dataset)
                _check_splits(data["splits"], pids, path, root, dataset)
            except DatasetError:
                data = {}  # a stale or damaged cache entry is simply drawn again
            fits = data.get("seed") == seed and len(data.get("splits", [])) == num_splits
            if fits and all(len(sp["train"]) == num_train for sp in data["splits"]):
                return data["splits"], path
    splits = make_splits(pids, num_train, num_splits, seed)
    payload = {"dataset": dataset, "seed": seed, "num_train": num_train, "splits": splits}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)
    return splits, path


def check_split_index(dataset: str, split: int, num_splits: int) -> None:
    if not 0 <= split < num_splits:
        raise DatasetError(
            f"{dataset}: split {split} does not exist; expected 0..{num_splits - 1}."
        )
