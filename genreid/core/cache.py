"""Where genreid keeps what it derives from a dataset (splits, extracted images).

Never beside the data: dataset folders are often shared and read-only (and a root user's
write check says nothing about whether writing there is welcome). ``$GENREID_CACHE``
overrides the default ``~/.cache/genreid``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """The user cache folder for derived data."""
    return Path(os.environ.get("GENREID_CACHE", Path.home() / ".cache" / "genreid")).expanduser()


def dataset_cache(dataset: str, root: Path) -> Path:
    """A cache folder specific to one dataset root (keyed by its resolved path)."""
    digest = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:10]
    return cache_root() / f"{dataset}_{digest}"
