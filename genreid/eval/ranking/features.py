"""Features file: query and gallery embeddings with their identities, cameras and image paths.

Format (what ``genreid evaluate --features`` reads and the training engine writes): one NumPy
``.npz`` archive, readable with ``np.load(path, allow_pickle=False)``, holding these keys:

========== ============ ==========================================================
key        shape        dtype and meaning
========== ============ ==========================================================
qf         (nq, d)      float (16/32/64 bit) query features, one row per image
gf         (ng, d)      float gallery features, same dimension ``d`` as ``qf``
q_pids     (nq,)        integer identity of each query (-1 junk, 0 distractor)
g_pids     (ng,)        integer identity of each gallery image
q_camids   (nq,)        integer camera of each query image
g_camids   (ng,)        integer camera of each gallery image
q_paths    (nq,)        unicode (``<U``) image path of each query, for figures
g_paths    (ng,)        unicode image path of each gallery image
========== ============ ==========================================================

Features are stored as extracted (not necessarily L2-normalised); the evaluator normalises
them for the cosine metric. Further keys may be stored (``save_features(..., **extra)``),
as plain numeric or unicode arrays, never object arrays; they are loaded into
``FeatureSet.extra``. Loading checks every array and raises :class:`FeaturesError` (a
``ValueError``) with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genreid.core.errors import GenreidError

FEATURE_KEYS: tuple[str, ...] = (
    "qf",
    "gf",
    "q_pids",
    "g_pids",
    "q_camids",
    "g_camids",
    "q_paths",
    "g_paths",
)


class FeaturesError(GenreidError, ValueError):
    """A features file or feature array that cannot be evaluated; the message says why."""


@dataclass
class FeatureSet:
    """Query and gallery features with identities, cameras and image paths."""

    qf: np.ndarray
    gf: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: np.ndarray
    g_paths: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_query(self) -> int:
        return int(self.qf.shape[0])

    @property
    def num_gallery(self) -> int:
        return int(self.gf.shape[0])

    @property
    def dim(self) -> int:
        return int(self.qf.shape[1])

    def validate(self, source: str = "features") -> FeatureSet:
        """Check shapes, lengths, dtypes and finiteness; return self or raise FeaturesError."""
        validate_arrays(self.arrays(), source)
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """The eight standard arrays by key."""
        return {k: getattr(self, k) for k in FEATURE_KEYS}


def _count_nonfinite(name: str, x: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise FeaturesError(
            f"{source}: {name} has {int(bad.sum())} non-finite value(s) (NaN or inf) in "
            f"{len(rows)} row(s), first at row {int(rows[0])}; re-extract the features "
            "(a diverged model or a corrupt image gives NaN)."
        )


def validate_arrays(arrays: dict[str, np.ndarray], source: str = "features") -> None:
    """Raise FeaturesError unless ``arrays`` is a consistent, finite query/gallery set."""
    missing = [k for k in FEATURE_KEYS if k not in arrays]
    if missing:
        raise FeaturesError(
            f"{source}: missing key(s) {', '.join(repr(k) for k in missing)}; a features "
            f"file must hold {', '.join(FEATURE_KEYS)}."
        )
    for side, name in (("query", "qf"), ("gallery", "gf")):
        x = arrays[name]
        if x.ndim != 2:
            raise FeaturesError(
                f"{source}: {name} must be 2-D (images x dimensions), found shape {x.shape}."
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise FeaturesError(f"{source}: {name} must be a float array, found {x.dtype}.")
        if x.shape[0] == 0:
            raise FeaturesError(f"{source}: the {side} set is empty ({name} has 0 rows).")
    for p in ("q", "g"):
        for k in (f"{p}_pids", f"{p}_camids"):
            if arrays[k].ndim != 1 or not np.issubdtype(arrays[k].dtype, np.integer):
                raise FeaturesError(
                    f"{source}: {k} must be a 1-D integer array, found {arrays[k].dtype} "
                    f"with shape {arrays[k].shape}."
                )
        if arrays[f"{p}_paths"].ndim != 1 or arrays[f"{p}_paths"].dtype.kind != "U":
            raise FeaturesError(
                f"{source}: {p}_paths must be a 1-D unicode string array, found "
                f"{arrays[f'{p}_paths'].dtype} with shape {arrays[f'{p}_paths'].shape}."
            )
        keys = (f"{p}f", f"{p}_pids", f"{p}_camids", f"{p}_paths")
        lengths = {k: len(arrays[k]) for k in keys}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise FeaturesError(f"{source}: mismatched lengths: {shown}.")
    if arrays["qf"].shape[1] != arrays["gf"].shape[1]:
        raise FeaturesError(
            f"{source}: feature dimensions differ: qf has {arrays['qf'].shape[1]}, gf has "
            f"{arrays['gf'].shape[1]}; extract query and gallery with the same model."
        )
    for name in ("qf", "gf"):
        _count_nonfinite(name, arrays[name], source)


def _as_arrays(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_paths: Any,
    g_paths: Any,
) -> dict[str, np.ndarray]:
    def feats(x: Any) -> np.ndarray:
        if hasattr(x, "detach"):  # torch tensor
            x = x.detach().cpu().numpy()
        return np.asarray(x)

    return {
        "qf": feats(qf),
        "gf": feats(gf),
        "q_pids": np.asarray(q_pids, dtype=np.int64),
        "g_pids": np.asarray(g_pids, dtype=np.int64),
        "q_camids": np.asarray(q_camids, dtype=np.int64),
        "g_camids": np.asarray(g_camids, dtype=np.int64),
        "q_paths": np.asarray([str(p) for p in q_paths], dtype=np.str_),
        "g_paths": np.asarray([str(p) for p in g_paths], dtype=np.str_),
    }


def save_features(
    path: str | Path,
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_paths: Any,
    g_paths: Any,
    **extra: Any,
) -> Path:
    """Validate and write a features ``.npz`` (atomically); returns the path written."""
    arrays = _as_arrays(qf, gf, q_pids, g_pids, q_camids, g_camids, q_paths, g_paths)
    validate_arrays(arrays, str(path))
    for key, value in extra.items():
        if key in FEATURE_KEYS:
            raise FeaturesError(f"extra key {key!r} clashes with a standard features key.")
        arr = np.asarray(value)
        if arr.dtype == object:
            raise FeaturesError(f"extra key {key!r} is an object array; store numbers or str.")
        arrays[key] = arr
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def load_features(path: str | Path) -> FeatureSet:
    """Read and validate a features ``.npz``; raises FeaturesError on any problem."""
    src = str(path)
    if not Path(path).is_file():
        raise FeaturesError(f"features file {src} does not exist.")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise FeaturesError(
                f"{src}: expected an .npz archive of named arrays, found a single array."
            )
        with data:
            arrays = {k: data[k] for k in data.files}
    except FeaturesError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FeaturesError(
            f"cannot read features file {src}: {exc}. Expected a .npz written by "
            "genreid.eval.ranking.features.save_features (no pickled objects)."
        ) from exc
    validate_arrays(arrays, src)
    std = {k: arrays.pop(k) for k in FEATURE_KEYS}
    for k in ("qf", "gf"):
        std[k] = std[k].astype(np.float32, copy=False)
    for k in ("q_pids", "g_pids", "q_camids", "g_camids"):
        std[k] = std[k].astype(np.int64, copy=False)
    return FeatureSet(**std, extra=arrays)
