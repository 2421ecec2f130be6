"""Search indexes: a gallery folder's features with the model that made them, and the search of
query images against them (``genreid index``, ``genreid search``).

An index is one ``.npz`` file (``np.load(path, allow_pickle=False)``):

=========== ========= ==================================================================
key         shape     meaning
=========== ========= ==================================================================
header      ()        JSON: ``format`` (``genreid-index``), ``version`` (:data:`VERSION`),
                      ``model`` (:meth:`Encoder.identity`: run folder or ONNX file, weights
                      sha256, flip, dimension), ``preprocessing``, ``naming``, ``root``,
                      ``count``, ``dim``, ``genreid_version``, ``created``
features    (N, D)    float32 L2-normalised features (``genreid extract``'s)
paths       (N,)      unicode absolute image paths, sorted
pids        (N,)      int64 identities, only when every file name follows one naming
camids      (N,)      int64 cameras, likewise (``genreid.data.naming``)
=========== ========= ==================================================================

Distances are cosine distances, 1 - q.g, computed by
``genreid.eval.ranking.distance.compute_distance`` (or faiss's ``IndexFlatIP`` when importable,
which gives the same lists up to ties); ties rank by gallery position, as ``genreid evaluate``
ranks them.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from genreid import __version__
from genreid.core.text import listing
from genreid.data.datasets.base import is_image, list_images
from genreid.data.io import find_corrupt_images
from genreid.data.naming import NAMINGS, Identity, parse_identities
from genreid.eval.deploy.encoder import DeployError, Encoder, same_model
from genreid.eval.ranking.distance import compute_distance
from genreid.eval.ranking.rerank import re_ranking_features

FORMAT, VERSION = "genreid-index", 1
PROTOCOLS = ("market", "none")
BACKENDS = ("auto", "faiss", "exact")


class SearchIndexError(DeployError):
    """An index file, image folder or query that cannot be used; the message says why."""


@dataclass
class SearchIndex:
    """Gallery features, their images and identities, and the model that encoded them."""

    features: np.ndarray
    paths: list[str]
    header: dict[str, Any]
    pids: np.ndarray | None = None
    camids: np.ndarray | None = None

    @property
    def model(self) -> dict[str, Any]:
        return self.header["model"]

    @property
    def naming(self) -> str | None:
        return self.header.get("naming")

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Hit:
    """One ranked gallery image."""

    rank: int  # 1-based
    index: int  # row in the index
    path: str
    distance: float
    pid: int | None = None
    camid: int | None = None
    match: bool | None = None  # same identity, when both identities are known
    same_camera: bool = False  # a true match from the query's own camera (protocol none)


@dataclass
class QueryResult:
    """A query image and its ranked list."""

    path: str
    hits: list[Hit]
    pid: int | None = None
    camid: int | None = None
    excluded: int = 0  # gallery images the protocol removed from this query's list
    has_match: bool | None = None  # a true match is in the (remaining) gallery
    first_match: int | None = field(default=None)  # 1-based rank of the first true match


def image_folder(folder: str | Path, what: str = "--images") -> tuple[list[Path], list[Path]]:
    """(images under ``folder``, recursively and sorted, other files skipped); every image
    must decode: unreadable ones are an error listing them all."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SearchIndexError(
            f"{what} {root} is not a folder"
            + (" (it does not exist)" if not root.exists() else "")
            + "; pass a folder of images (jpg, png, bmp), searched recursively"
        )
    images = list_images(root, recursive=True)
    others = sorted(p for p in root.rglob("*") if p.is_file() and not is_image(p))
    if not images:
        found = f"only {listing([p.name for p in others], 3)}" if others else "nothing"
        raise SearchIndexError(
            f"{what} {root} holds no images (jpg, png, bmp, ...), found {found}; point it at "
            "the folder with the gallery images"
        )
    require_readable(images, what)
    return images, others


def require_readable(paths: list[Path], what: str) -> None:
    """Raise a SearchIndexError listing every image that does not decode."""
    bad = [f"{p} ({why})" for p, why in find_corrupt_images(paths) if why]
    if bad:
        raise SearchIndexError(
            f"{len(bad)} unreadable image(s) in {what}: {listing(bad, 5)}; delete, replace or "
            "move them out (no image is skipped silently)"
        )


def query_images(items: list[str | Path]) -> list[Path]:
    """Query files (a folder stands for its images), each an image that decodes."""
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            out += image_folder(p, "--query")[0]
        elif not p.is_file():
            raise SearchIndexError(f"--query {p} does not exist; pass image files or a folder")
        elif not is_image(p):
            raise SearchIndexError(
                f"--query {p} is not an image (expected .jpg, .png, .bmp, ...); pass images"
            )
        else:
            out.append(p)
    if not out:
        raise SearchIndexError("no query images: pass --query IMG [IMG ...]")
    require_readable(out, "--query")
    return out


def build_index(encoder: Encoder, folder: str | Path, naming: str | None = "auto") -> SearchIndex:
    """Encode every image under ``folder``; identities from the file names when they all
    follow one convention (``naming`` ``auto``), the one named, or none (``none``)."""
    if naming not in (None, "auto", "none", *NAMINGS):
        raise SearchIndexError(
            f"--naming {naming!r}: expected auto, none or one of {', '.join(NAMINGS)}"
        )
    images, others = image_folder(folder)
    paths = [str(p.resolve()) for p in images]
    found, ids = None, None
    if naming not in (None, "none"):
        found, ids = parse_identities(paths, None if naming == "auto" else naming)
    if naming not in (None, "auto", "none") and found is None:
        raise SearchIndexError(
            f"--naming {naming}: not every file name under {folder} follows that convention; "
            "use --naming auto or none"
        )
    features = encoder.encode(paths)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "genreid_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": encoder.identity(),
        "preprocessing": encoder.preprocessing,
        "root": str(Path(folder).expanduser().resolve()),
        "naming": found,
        "count": len(paths),
        "skipped_files": len(others),  # files under the folder that are not images
        "dim": int(features.shape[1]),
        "distance": "cosine: 1 - q.g of L2-normalised features",
    }
    pids = camids = None
    if ids is not None:
        pids = np.asarray([i[0] for i in ids], np.int64)
        camids = np.asarray([i[1] for i in ids], np.int64)
    return SearchIndex(features, paths, header, pids, camids)


def save_index(index: SearchIndex, path: str | Path) -> Path:
    """Write the index (atomically) as one ``.npz``; returns the path."""
    out = Path(path).expanduser()
    arrays: dict[str, np.ndarray] = {
        "header": np.asarray(json.dumps(index.header, sort_keys=True)),
        "features": np.ascontiguousarray(index.features, np.float32),
        "paths": np.asarray(index.paths, dtype=np.str_),
    }
    if index.pids is not None and index.camids is not None:
        arrays["pids"], arrays["camids"] = index.pids, index.camids
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _bad(path: Path, what: str) -> SearchIndexError:
    return SearchIndexError(
        f"{path} is not a genreid search index ({what}); build one with `genreid index`"
    )


def load_index(path: str | Path) -> SearchIndex:
    """Read and check an index file; a foreign, corrupt or other-version file is an error."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise SearchIndexError(f"index {p} does not exist; build it with `genreid index`")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
        raise _bad(p, f"{type(exc).__name__}: {str(exc)[:120]}") from None
    except Exception as exc:  # e.g. a truncated archive member
        raise _bad(p, f"{type(exc).__name__}") from None
    if "header" not in arrays:
        raise _bad(p, "no header")
    try:
        header = json.loads(str(arrays["header"]))
    except ValueError:
        raise _bad(p, "its header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(p, f"format {header.get('format') if isinstance(header, dict) else None!r}")
    if header.get("version") != VERSION:
        raise SearchIndexError(
            f"{p} is a version {header.get('version')} index; this genreid "
            f"({__version__}) reads version {VERSION}: rebuild it with `genreid index`"
        )
    feats, paths = arrays.get("features"), arrays.get("paths")
    if feats is None or paths is None or feats.ndim != 2 or paths.ndim != 1:
        raise _bad(p, "features or paths missing or misshapen")
    if len(feats) != len(paths) or feats.dtype != np.float32 or len(feats) == 0:
        raise _bad(p, f"{len(feats)} features of {feats.dtype} for {len(paths)} paths")
    if not np.isfinite(feats).all() or "model" not in header:
        raise _bad(p, "non-finite features or no model")
    pids, camids = arrays.get("pids"), arrays.get("camids")
    if (pids is None) != (camids is None) or (
        pids is not None and (len(pids) != len(paths) or len(camids) != len(paths))
    ):
        raise _bad(p, "identities and cameras do not match the paths")
    return SearchIndex(feats, [str(x) for x in paths], header, pids, camids)


def check_encoder(index: SearchIndex, encoder: Encoder, source: str) -> None:
    """Raise unless ``encoder`` gives the features the index was built with."""
    if same_model(index.model, encoder.identity()):
        return
    built = index.model
    raise SearchIndexError(
        f"{source} was built with another model ({built.get('kind')} {built.get('source')}, "
        f"weights {str(built.get('weights_sha256'))[:12]}, flip {built.get('flip')}) than the "
        f"query encoder ({encoder.kind} {encoder.source}, weights "
        f"{encoder.weights_sha256[:12]}, flip {encoder.flip}); search with the index's own "
        "model, or rebuild the index with `genreid index` and this one"
    )


def faiss_module() -> Any | None:
    """faiss when importable, else None."""
    try:
        import faiss  # lazy: an optional dependency
    except ImportError:
        return None
    return faiss


def _exclusions(index: SearchIndex, q_ids: list[Identity | None], protocol: str) -> np.ndarray:
    """n_q x n_g mask of the gallery images removed from each query's list: under ``market``,
    junk (identity -1) and the query's identity seen by its own camera."""
    n_q, n_g = len(q_ids), len(index)
    mask = np.zeros((n_q, n_g), dtype=bool)
    if protocol == "none" or index.pids is None or index.camids is None:
        return mask
    mask |= (index.pids == -1)[None, :]
    for i, q in enumerate(q_ids):
        if q is not None:
            mask[i] |= (index.pids == q[0]) & (index.camids == q[1])
    return mask


def _ranked_exact(dist: np.ndarray, excluded: np.ndarray, top: int) -> list[np.ndarray]:
    out = []
    for row, ex in zip(dist, excluded, strict=True):
        order = np.argsort(row, kind="stable")
        out.append(order[~ex[order]][:top])
    return out


def _ranked_faiss(
    faiss: Any, index: SearchIndex, qf: np.ndarray, excluded: np.ndarray, top: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Top lists from faiss's exact inner-product index, re-sorted by (distance, position)."""
    flat = faiss.IndexFlatIP(index.features.shape[1])
    flat.add(np.ascontiguousarray(index.features, np.float32))
    k = min(len(index), top + int(excluded.sum(1).max(initial=0)))
    sims, idx = flat.search(np.ascontiguousarray(qf, np.float32), k)
    dist = np.full((len(qf), len(index)), np.inf, np.float32)
    lists = []
    for i in range(len(qf)):
        d = (1.0 - sims[i]).astype(np.float32)
        keep = (idx[i] >= 0) & ~excluded[i, np.maximum(idx[i], 0)]
        cand, d = idx[i][keep], d[keep]
        order = np.lexsort((cand, d))
        lists.append(cand[order][:top])
        dist[i, cand] = d
    return lists, dist


def search(
    index: SearchIndex,
    paths: list[str],
    qf: np.ndarray,
    top: int = 20,
    protocol: str = "market",
    rerank: dict[str, float] | None = None,
    backend: str = "auto",
) -> tuple[list[QueryResult], str]:
    """(each query's ranked list, the backend used). ``rerank`` (k1, k2, lambda_value) ranks
    by k-reciprocal re-ranked distances over the queries and the gallery, as ``genreid
    evaluate --rerank`` does; ``protocol`` ``market`` leaves out junk and same-camera
    images of the query's identity, as the evaluation does."""
    if protocol not in PROTOCOLS:
        raise SearchIndexError(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if backend not in BACKENDS:
        raise SearchIndexError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if top < 1:
        raise SearchIndexError(f"--top must be at least 1, got {top}")
    if qf.ndim != 2 or qf.shape[1] != index.features.shape[1]:
        raise SearchIndexError(
            f"query features have shape {qf.shape}, the index {index.features.shape[1]}-d ones"
        )
    q_ids = [query_identity(index, p) for p in paths]
    excluded = _exclusions(index, q_ids, protocol)
    if backend == "faiss" and rerank is not None:
        raise SearchIndexError(
            "--backend faiss cannot re-rank (k-reciprocal re-ranking needs every distance); "
            "use --backend exact or auto with --rerank"
        )
    faiss = faiss_module() if backend != "exact" and rerank is None else None
    if backend == "faiss" and faiss is None:
        raise SearchIndexError(
            "--backend faiss: faiss is not installed; pip install faiss-cpu, or use --backend "
            "auto or exact"
        )
    if faiss is not None:
        lists, dist = _ranked_faiss(faiss, index, qf, excluded, top)
        used = "faiss IndexFlatIP"
    else:
        if rerank is None:
            dist = compute_distance(qf, index.features, metric="cosine", device="cpu")
        else:
            dist = re_ranking_features(qf, index.features, device="cpu", **rerank)
        lists = _ranked_exact(dist, excluded, top)
        used = "exact (torch)" + (", k-reciprocal re-ranking" if rerank else "")
    return [
        _result(index, p, q, ids, dist[i], excluded[i])
        for i, (p, q, ids) in enumerate(zip(paths, q_ids, lists, strict=True))
    ], used


def query_identity(index: SearchIndex, path: str | Path) -> Identity | None:
    """The query's (pid, camid) by the index's naming convention, or None."""
    if index.naming is None:
        return None
    _, ids = parse_identities([path], index.naming)
    return ids[0] if ids else None


def _result(
    index: SearchIndex,
    path: str,
    q: Identity | None,
    ranked: np.ndarray,
    dist: np.ndarray,
    excluded: np.ndarray,
) -> QueryResult:
    known = q is not None and index.pids is not None and index.camids is not None
    hits = []
    for r, g in enumerate(ranked.tolist(), 1):
        hit = Hit(r, g, index.paths[g], float(dist[g]))
        if index.pids is not None and index.camids is not None:
            hit.pid, hit.camid = int(index.pids[g]), int(index.camids[g])
        if known:
            hit.match = hit.pid == q[0] and q[0] != -1  # type: ignore[index]
            hit.same_camera = bool(hit.match and hit.camid == q[1])  # type: ignore[index]
        hits.append(hit)
    res = QueryResult(str(path), hits, excluded=int(excluded.sum()))
    if known:
        res.pid, res.camid = q  # type: ignore[misc]
        res.has_match = bool(((index.pids == q[0]) & ~excluded).any()) and q[0] != -1  # type: ignore[index]
        res.first_match = next((h.rank for h in hits if h.match), None)
    return res


def summary(results: list[QueryResult]) -> dict[str, Any]:
    """Rank-1 over the queries with a known identity and a true match in the gallery."""
    valid = [r for r in results if r.has_match]
    out: dict[str, Any] = {"queries": len(results), "queries_with_true_match": len(valid)}
    if valid:
        out["rank1"] = sum(r.first_match == 1 for r in valid) / len(valid)
    return out
