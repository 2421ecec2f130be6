"""Market-1501 and DukeMTMC-reID in their original layouts.

Market names: ``0002_c1s1_000451_03.jpg`` (identity, camera, sequence, frame, box);
identity ``-1`` is junk and ``0000`` a distractor. Duke names: ``0001_c2_f0046182.jpg``.
"""

from __future__ import annotations

import re
from pathlib import Path

from genreid.data.datasets.base import list_images, parse_names, require_dir, require_root
from genreid.data.records import JUNK_PID, ImageRecord, ReIDDataset, Role

MARKET_PATTERN = re.compile(r"(-1|\d{4})_c(\d)s\d_\d{6}_\d{2}\.jpg", re.IGNORECASE)
MARKET_EXAMPLE = "0002_c1s1_000451_03.jpg"
DUKE_PATTERN = re.compile(r"(-1|\d{4})_c(\d+)_f\d+\.jpg", re.IGNORECASE)
DUKE_EXAMPLE = "0001_c2_f0046182.jpg"


def _read_folder(
    root: Path, name: str, role: Role, dataset: str, pattern: re.Pattern[str], example: str
) -> list[ImageRecord]:
    folder = require_dir(root, name, dataset, example)
    records = []
    for path, m in parse_names(list_images(folder), pattern, dataset, folder, example):
        pid, cam = int(m.group(1)), int(m.group(2))
        if role is Role.TRAIN and pid in (JUNK_PID, 0):
            continue  # junk and distractors never train
        records.append(ImageRecord(str(path), pid, cam, role))
    return records


def _parse(root: str | Path, dataset: str, pattern: re.Pattern[str], example: str) -> ReIDDataset:
    base = require_root(root, dataset)
    train = _read_folder(base, "bounding_box_train", Role.TRAIN, dataset, pattern, example)
    query = _read_folder(base, "query", Role.QUERY, dataset, pattern, example)
    gallery = _read_folder(base, "bounding_box_test", Role.GALLERY, dataset, pattern, example)
    mquery: list[ImageRecord] = []
    if (base / "gt_bbox").is_dir():
        mquery = _read_folder(base, "gt_bbox", Role.MQUERY, dataset, pattern, example)
        query_pids = {r.pid for r in query}
        mquery = [r for r in mquery if r.pid in query_pids]
    return ReIDDataset(dataset, str(base), train, query, gallery, mquery)


def parse_market1501(root: str | Path) -> ReIDDataset:
    """Market-1501: train, test and query folders, optional ``gt_bbox`` (multi-query)."""
    return _parse(root, "market1501", MARKET_PATTERN, MARKET_EXAMPLE)


def parse_dukemtmcreid(root: str | Path) -> ReIDDataset:
    """DukeMTMC-reID: the Market layout with Duke's file names."""
    return _parse(root, "dukemtmcreid", DUKE_PATTERN, DUKE_EXAMPLE)
