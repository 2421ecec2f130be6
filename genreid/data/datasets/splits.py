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

from genreid.data.cache import dataset_cache
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


def load_or_create_splits(
    dataset: str,
    root: Path,
    pids: list[int],
    num_train: int,
    num_splits: int,
    seed: int,
    splits_file: str | Path | None = None,
) -> tuple[list[dict], Path]:
    """Read the splits file, or create it; a file that no longer fits the data is an error."""
    path = Path(splits_file) if splits_file else default_splits_file(dataset, root)
    expected = sorted(pids)
    if path.is_file():
        data = json.loads(path.read_text())
        splits = data.get("splits", [])
        for i, s in enumerate(splits):
            if sorted(s["train"] + s["test"]) != expected or len(s["train"]) != num_train:
                raise DatasetError(
                    f"{dataset}: split {i} in {path} does not match the identities under "
                    f"{root} ({len(expected)} identities, {num_train} for training). Delete "
                    f"{path} to recreate the splits, or pass the right splits file."
                )
        if data.get("seed") == seed and len(splits) == num_splits:
            return splits, path
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
