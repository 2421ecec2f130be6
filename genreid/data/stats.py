"""Dataset statistics (``genreid data info``): images, identities, cameras, images per identity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from rich.table import Table

from genreid.data.records import DISTRACTOR_PID, JUNK_PID, ImageRecord, ReIDDataset


def split_stats(records: Sequence[ImageRecord]) -> dict[str, object]:
    """Images, identities, cameras and images-per-identity summary of one list of records."""
    real = [r for r in records if not r.generated]
    per_id = Counter(r.pid for r in real if r.pid != JUNK_PID)
    counts = np.array(sorted(per_id.values()), dtype=np.int64)
    stats: dict[str, object] = {
        "images": len(records),
        "identities": len(per_id),
        "cameras": len({r.camid for r in real}),
    }
    if len(counts):
        stats["images_per_identity"] = {
            "min": int(counts.min()),
            "median": float(np.median(counts)),
            "max": int(counts.max()),
            "mean": float(counts.mean()),
        }
    junk = sum(r.is_junk for r in real)
    distractors = sum(r.pid == DISTRACTOR_PID for r in real)
    if junk:
        stats["junk_images"] = junk
    if distractors:
        stats["distractor_images"] = distractors
    generated = len(records) - len(real)
    if generated:
        stats["generated_images"] = generated
    return stats


def dataset_stats(ds: ReIDDataset) -> dict[str, object]:
    """Totals over all splits plus per-split statistics (the ``data info --json`` object)."""
    splits = ds.splits()
    all_records = [r for recs in splits.values() for r in recs]
    # An image path shared by several roles (e.g. a query that is also a gallery image in
    # some protocols) is counted once in the totals.
    unique = list({r.path: r for r in all_records}.values())
    total = split_stats(unique)
    out: dict[str, object] = {"dataset": ds.name, "root": ds.root}
    out.update(total)
    if ds.num_splits > 1:
        out["split"] = ds.split
        out["num_splits"] = ds.num_splits
    out["splits"] = {name: split_stats(recs) for name, recs in splits.items()}
    return out


def images_per_identity(records: Iterable[ImageRecord]) -> np.ndarray:
    """Number of images of each real, non-junk identity (for the LSRO Fig. 2 histogram)."""
    per_id = Counter(r.pid for r in records if not r.generated and r.pid != JUNK_PID)
    return np.array(sorted(per_id.values()), dtype=np.int64)


def stats_table(stats: dict) -> Table:
    """A rich table of :func:`dataset_stats`: one row per split and the totals."""
    title = f"{stats['dataset']} at {stats['root']}"
    if "num_splits" in stats:
        title += f" (split {stats['split']} of {stats['num_splits']})"
    table = Table(title=title)
    for col in ("split", "images", "identities", "cameras", "img/id min", "median", "max"):
        table.add_column(col, justify="right" if col != "split" else "left")

    def row(name: str, s: dict) -> list[str]:
        ipi = s.get("images_per_identity", {})
        return [
            name,
            f"{s['images']:,}",
            f"{s['identities']:,}",
            str(s["cameras"]),
            str(ipi.get("min", "-")),
            f"{ipi.get('median', '-')}",
            str(ipi.get("max", "-")),
        ]

    for name, s in stats["splits"].items():
        table.add_row(*row(name, s))
    table.add_row(*row("total", stats), style="bold")
    return table
