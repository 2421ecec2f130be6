"""Writing a synthetic dataset in the Market-1501 layout, in parallel and deterministically."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from genreid import __version__
from genreid.core.files import make_output_dir
from genreid.core.progress import Progress
from genreid.data.errors import DatasetError
from genreid.data.synthetic.plan import (
    GALLERY_DIR,
    QUERY_DIR,
    SPLIT_DIRS,
    TRAIN_DIR,
    ImageTask,
    Plan,
    check_arguments,
    make_plan,
)
from genreid.data.synthetic.render import render_image
from genreid.data.synthetic.scene import make_camera
from genreid.data.synthetic.seeding import DISTRACTOR, JUNK
from genreid.data.synthetic.style import RenderStyle

MANIFEST = "dataset.json"
IMAGES_PER_ID = 17.0  # the default mean images of an identity (Market-1501: about 17)
GENERATOR = "genreid.data.synthetic"
RENDERER_VERSION = 1  # bump whenever the same arguments would give different pixels


def _render_chunk(
    args: tuple[str, int, tuple[int, int], RenderStyle, list[ImageTask]],
) -> int:
    """Worker: render and write a chunk of tasks; returns how many were written."""
    root, seed, size, style, tasks = args
    for t in tasks:
        data = render_image(seed, t.kind, t.pid, t.cam, t.index, t.ident, size, style)
        with open(os.path.join(root, t.relpath), "wb") as f:
            f.write(data)
    return len(tasks)


def default_workers() -> int:
    """CPUs this process may use (affinity-aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> mp.context.BaseContext:
    """Fork on Linux (instant start, no re-import of the caller's torch); spawn elsewhere."""
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _prepare(out: Path) -> None:
    """Create ``out``; clear a previous synthetic render there, refuse to touch anything else."""
    make_output_dir(out, DatasetError)
    manifest = out / MANIFEST
    ours = False
    if manifest.is_file():
        try:
            ours = json.loads(manifest.read_text()).get("generator") == GENERATOR
        except (json.JSONDecodeError, AttributeError):
            ours = False
    present = [d for d in SPLIT_DIRS if (out / d).exists()]
    if present and not ours:
        raise DatasetError(
            f"{out} already holds {', '.join(present)}/ not written by `genreid data synth`; "
            "choose an empty --out folder or delete them."
        )
    for d in present:
        shutil.rmtree(out / d)
    for d in SPLIT_DIRS:
        (out / d).mkdir()


def _manifest(plan: Plan, arguments: dict, counts: dict, complete: bool) -> dict:
    """The self-description written next to the images (no timings: it must be reproducible)."""
    seed, cams = arguments["seed"], arguments["cams"]
    return {
        "generator": GENERATOR,
        "version": __version__,
        "renderer_version": RENDERER_VERSION,
        "format": "market1501",
        "complete": complete,
        "arguments": arguments,
        "counts": counts,
        "train_pids": plan.train_pids,
        "test_pids": plan.test_pids,
        "cameras_of": {str(k): v for k, v in plan.cameras_of.items()},
        "camera_profiles": {str(c): asdict(make_camera(seed, c)) for c in range(1, cams + 1)},
    }


def _counts(plan: Plan, cams: int) -> dict:
    folders = Counter(t.relpath.split("/", 1)[0] for t in plan.tasks)
    kinds = Counter(t.kind for t in plan.tasks)
    id_images = sum(1 for t in plan.tasks if t.pid > 0)
    return {
        "images": len(plan.tasks),
        "splits": {
            "train": folders[TRAIN_DIR],
            "query": folders[QUERY_DIR],
            "gallery": folders[GALLERY_DIR],
        },
        "identities": len(plan.train_pids) + len(plan.test_pids),
        "train_identities": len(plan.train_pids),
        "test_identities": len(plan.test_pids),
        "cameras": cams,
        "distractors": kinds[DISTRACTOR],
        "junk": kinds[JUNK],
        "images_per_identity": round(id_images / max(1, len(plan.cameras_of)), 2),
    }


def _chunks(tasks: list[ImageTask], size: int) -> list[list[ImageTask]]:
    return [tasks[i : i + size] for i in range(0, len(tasks), size)]


def render_dataset(
    out: str | Path,
    ids: int,
    cams: int,
    seed: int,
    size: tuple[int, int] = (128, 64),
    workers: int = 0,
    progress: bool = True,
    *,
    images_per_id: float = IMAGES_PER_ID,
    distractor_ratio: float = 0.2,
    junk_ratio: float = 0.3,
    style: RenderStyle | None = None,
) -> dict:
    """Render a Market-1501-layout dataset of ``ids`` identities seen by ``cams`` cameras.

    ``size`` is (height, width). Files depend only on the arguments (not on ``workers``;
    0 means all CPUs). Writes ``bounding_box_train/``, ``bounding_box_test/``, ``query/`` and
    ``dataset.json``; a previous synthetic render in ``out`` is replaced, other data is not.
    Returns ``root``, ``images`` (total), ``splits`` {train, query, gallery: images},
    ``identities``, ``train_identities``, ``test_identities``, ``cameras``, ``distractors``,
    ``junk`` (gallery images), ``images_per_identity``, ``seconds``, ``images_per_second``
    and ``workers``.
    """
    size = (int(size[0]), int(size[1]))
    check_arguments(ids, cams, seed, size)
    style = style or RenderStyle()
    style.check()
    start = time.perf_counter()
    root = Path(out).expanduser()
    plan = make_plan(ids, cams, seed, images_per_id, distractor_ratio, junk_ratio)
    if len({t.relpath for t in plan.tasks}) != len(plan.tasks):  # pragma: no cover - a bug
        raise RuntimeError("synthetic plan produced duplicate file names")
    arguments = {
        "ids": ids,
        "cams": cams,
        "seed": seed,
        "size": list(size),
        "images_per_id": images_per_id,
        "distractor_ratio": distractor_ratio,
        "junk_ratio": junk_ratio,
    }
    if style.changes():  # the default style is not written: older manifests stay valid
        arguments["style"] = style.changes()
    counts = _counts(plan, cams)
    _prepare(root)
    manifest = root / MANIFEST
    manifest.write_text(json.dumps(_manifest(plan, arguments, counts, False), indent=1) + "\n")

    n_workers = default_workers() if workers <= 0 else workers
    chunk = max(4, min(64, len(plan.tasks) // (n_workers * 8) or 1))
    jobs = [(str(root), seed, size, style, c) for c in _chunks(plan.tasks, chunk)]
    n_workers = min(n_workers, len(jobs))
    pool = _context().Pool(n_workers) if n_workers > 1 else None  # before any bar thread
    try:
        with Progress(len(plan.tasks), desc="synth", unit="img", enabled=progress) as bar:
            results = pool.imap_unordered(_render_chunk, jobs) if pool else map(_render_chunk, jobs)
            for done in results:
                bar.update(done)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    manifest.write_text(json.dumps(_manifest(plan, arguments, counts, True), indent=1) + "\n")
    seconds = time.perf_counter() - start
    stats = {"root": str(root), **counts}
    stats["seconds"] = round(seconds, 3)
    stats["images_per_second"] = round(len(plan.tasks) / max(seconds, 1e-9), 1)
    stats["workers"] = max(1, n_workers)
    return stats
