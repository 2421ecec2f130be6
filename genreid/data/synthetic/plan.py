"""The dataset plan: which image of whom, from which camera, goes to which file and split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genreid.data.errors import DatasetError
from genreid.data.synthetic.identity import Identity, sample_identities
from genreid.data.synthetic.seeding import DISTRACTOR, IDENTITY, JUNK, PLAN, stream

TRAIN_DIR, GALLERY_DIR, QUERY_DIR = "bounding_box_train", "bounding_box_test", "query"
SPLIT_DIRS = (TRAIN_DIR, GALLERY_DIR, QUERY_DIR)
MAX_IDS, MAX_CAMS = 9999, 9  # Market names: four-digit identities, one-digit cameras
MAX_FRAME = 999_999


@dataclass(frozen=True, slots=True)
class ImageTask:
    """One file to render: where it goes and the key its random stream is seeded from."""

    relpath: str
    kind: int  # IDENTITY, DISTRACTOR or JUNK
    pid: int  # 1.., 0 (distractor) or -1 (junk)
    cam: int
    index: int  # image number within (identity, camera), or within kind for others
    ident: Identity | None = None


@dataclass
class Plan:
    """Everything about a dataset except the pixels."""

    tasks: list[ImageTask]
    train_pids: list[int]
    test_pids: list[int]
    cameras_of: dict[int, list[int]] = field(default_factory=dict)


def market_name(pid: int, cam: int, frame: int, box: int) -> str:
    """Market-1501 file name, e.g. ``0002_c1s1_000451_03.jpg``; junk is ``-1_c...``."""
    head = "-1" if pid < 0 else f"{pid:04d}"
    return f"{head}_c{cam}s1_{frame:06d}_{box:02d}.jpg"


def _frames(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` strictly increasing frame numbers, as a detector would see along a track."""
    start = int(rng.integers(0, MAX_FRAME - 60 * n - 1))
    return [int(f) for f in start + np.cumsum(rng.integers(3, 60, n))]


def _box(rng: np.random.Generator) -> int:
    """Detection number within a frame: mostly 01, as in Market."""
    return int(min(99, 1 + rng.poisson(0.4)))


def _per_camera_counts(
    rng: np.random.Generator, k: int, minimum: int, mean_total: float
) -> list[int]:
    """Images in each of ``k`` cameras: at least ``minimum`` each, about ``mean_total`` in all."""
    extra_mean = max(0.0, mean_total - k * minimum)
    extra = int(rng.negative_binomial(2, 2 / (2 + extra_mean))) if extra_mean > 0 else 0
    share = rng.multinomial(extra, rng.dirichlet(np.full(k, 1.5)))
    return [minimum + int(c) for c in share]


def check_arguments(ids: int, cams: int, seed: int, size: tuple[int, int]) -> None:
    """Reject arguments the Market layout or the renderer cannot represent."""
    if not 2 <= ids <= MAX_IDS:
        raise DatasetError(
            f"ids must be in 2..{MAX_IDS} (Market names have 4-digit ids), got {ids}"
        )
    if not 2 <= cams <= MAX_CAMS:
        raise DatasetError(f"cams must be in 2..{MAX_CAMS} (Market names have 1 digit), got {cams}")
    if seed < 0:
        raise DatasetError(f"seed must be >= 0, got {seed}")
    if len(size) != 2 or min(size) < 16:
        raise DatasetError(f"size must be (height, width), both >= 16, got {size}")


def make_plan(
    ids: int,
    cams: int,
    seed: int,
    images_per_id: float = 17.0,
    distractor_ratio: float = 0.2,
    junk_ratio: float = 0.3,
) -> Plan:
    """Identities split half/half into train and test; one query per test identity and camera.

    Distractors (pid 0) and junk (pid -1) are added to the gallery in proportion to its
    identity images, as in Market-1501 (about 21% and 29%).
    """
    rng = stream(seed, PLAN)
    people = sample_identities(rng, ids)
    order = rng.permutation(ids) + 1
    train = sorted(int(p) for p in order[: ids // 2])
    test = sorted(int(p) for p in order[ids // 2 :])
    test_set = set(test)
    tasks: list[ImageTask] = []
    cameras_of: dict[int, list[int]] = {}
    gallery_ids = 0
    for pid in range(1, ids + 1):
        is_test = pid in test_set
        k = int(rng.integers(2, cams + 1))
        cam_list = sorted(int(c) + 1 for c in rng.choice(cams, size=k, replace=False))
        cameras_of[pid] = cam_list
        counts = _per_camera_counts(rng, k, 2 if is_test else 1, images_per_id)
        for cam, n in zip(cam_list, counts, strict=True):
            query = int(rng.integers(n)) if is_test else -1
            for index, frame in enumerate(_frames(rng, n)):
                folder = TRAIN_DIR if not is_test else QUERY_DIR if index == query else GALLERY_DIR
                gallery_ids += folder == GALLERY_DIR
                name = market_name(pid, cam, frame, _box(rng))
                tasks.append(
                    ImageTask(f"{folder}/{name}", IDENTITY, pid, cam, index, people[pid - 1])
                )
    for kind, pid, ratio in ((DISTRACTOR, 0, distractor_ratio), (JUNK, -1, junk_ratio)):
        n = max(1, round(ratio * gallery_ids)) if ratio > 0 else 0
        cam_of = rng.integers(1, cams + 1, n)
        last = {c: int(rng.integers(0, 1000)) for c in range(1, cams + 1)}
        for index in range(n):
            cam = int(cam_of[index])
            last[cam] += int(rng.integers(1, 40))
            name = market_name(pid, cam, min(last[cam], MAX_FRAME), _box(rng))
            tasks.append(ImageTask(f"{GALLERY_DIR}/{name}", kind, pid, cam, index))
    return Plan(tasks, train, test, cameras_of)
