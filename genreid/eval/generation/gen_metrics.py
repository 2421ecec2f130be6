"""Generation quality: FID (Inception-v3 pool features or another feature space) and SSIM.

* FID uses the TensorFlow FID Inception weights ported to PyTorch (pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth``), read from a local file, or fetched once into torch
  hub's cache (hash-checked) when none is there and a network is reachable.
* The Frechet distance is computed in float64 through two symmetric eigendecompositions,
  ``tr((S1^1/2 S2 S1^1/2)^1/2)`` in place of scipy's non-symmetric ``sqrtm(S1 S2)``.
* ``reid:MODEL`` (a ``genreid train`` run folder, a ``.pt2``/TorchScript file, or any name
  registered in :mod:`genreid.eval.generation.extractors`) computes the same distance in another
  network's feature space; such numbers are not comparable with published FIDs.
* SSIM follows Wang et al. 2004 (gaussian window 11, sigma 1.5) and is vectorised in torch;
  diversity is the mean SSIM over pairs of the same identity, or random pairs when there are no
  identities (DG-Net Table 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from genreid.data.datasets import DATASETS, load_dataset
from genreid.data.generated import MANIFEST, read_generated
from genreid.eval.generation.extractors import (
    GenMetricsError,
    get_feature_extractor,
    image_features,
    load_images,
)
from genreid.eval.generation.inception import inception_extractor

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


# --- Frechet distance -------------------------------------------------------------------------
def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of N x D features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise GenMetricsError(
            f"expected at least 2 feature vectors (N x D), got shape {x.shape}; use more images"
        )
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrt_factor(s: np.ndarray, method: str) -> np.ndarray:
    """A factor R with R R^T = S: Cholesky when S is positive definite, else eigh (clipped)."""
    if method == "auto":
        try:
            return linalg.cholesky(s, lower=True, check_finite=False)
        except linalg.LinAlgError:
            pass  # singular (fewer images than dimensions): fall back to eigh
    w, v = linalg.eigh(s, driver="evd", check_finite=False)
    return v * np.sqrt(np.clip(w, 0, None))


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    method: str = "auto",
) -> float:
    """||mu1-mu2||^2 + tr S1 + tr S2 - 2 tr((S1^1/2 S2 S1^1/2)^1/2), symmetric and in float64.

    With any factor S1 = R R^T, the symmetric positive semi-definite matrix R^T S2 R has the
    eigenvalues of S1^1/2 S2 S1^1/2 (and of S1 S2), so the trace square root needs only
    ``eigvalsh``; tiny negative eigenvalues from rounding are clipped to 0. ``method="eigh"``
    always factors S1 by eigh (R = V diag(sqrt(w))); ``"auto"`` uses Cholesky when S1 is
    positive definite (faster) and eigh otherwise. Both agree with scipy's ``sqrtm`` formula.
    """
    if method not in ("auto", "eigh"):
        raise GenMetricsError(f"method: expected 'auto' or 'eigh', got {method!r}")
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1 = np.asarray(sigma1, np.float64)
    s2 = np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise GenMetricsError(
            f"feature statistics do not match: mean {mu1.shape} vs {mu2.shape}, covariance "
            f"{s1.shape} vs {s2.shape}"
        )
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    r = _sqrt_factor(s1, method)
    m = r.T @ s2 @ r
    ev = linalg.eigh((m + m.T) / 2, eigvals_only=True, driver="evd", check_finite=False)
    tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def frechet_distance_sqrtm(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """The pytorch-fid formula with scipy's ``sqrtm(S1 S2)`` (reference for tests/benchmarks)."""
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = linalg.sqrtm(s1.dot(s2))
    if isinstance(covmean, tuple):  # older scipy with disp=False
        covmean = covmean[0]
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# --- SSIM -------------------------------------------------------------------------------------
def _gaussian_window(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM of each image pair (B x C x H x W -> B), Wang et al. 2004.

    Gaussian-weighted local statistics with population covariance over the valid region
    (borders of (win_size-1)/2 dropped) and the mean over channels: the same number as
    scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1)``.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise GenMetricsError(f"ssim expects two B x C x H x W tensors, got {x.shape}, {y.shape}")
    if min(x.shape[-2:]) < win_size:
        raise GenMetricsError(f"images of {tuple(x.shape[-2:])} are smaller than the SSIM window")
    dtype = torch.float64
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    g = _gaussian_window(win_size, sigma, dtype).to(x.device)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # B x 5C x H x W
    stack = F.conv2d(stack, g.view(1, 1, -1, 1).expand(5 * c, 1, -1, 1), groups=5 * c)
    stack = F.conv2d(stack, g.view(1, 1, 1, -1).expand(5 * c, 1, 1, -1), groups=5 * c)
    ux, uy, uxx, uyy, uxy = stack.split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


def sample_pairs(
    n: int, num_pairs: int, seed: int, groups: Sequence[int] | None = None
) -> np.ndarray:
    """``num_pairs`` (i, j), i != j, seeded; with ``groups`` both images share a group."""
    rng = np.random.default_rng(seed)
    if groups is None:
        if n < 2:
            raise GenMetricsError(f"SSIM needs at least 2 images, found {n}")
        i = rng.integers(0, n, num_pairs)
        j = (i + rng.integers(1, n, num_pairs)) % n
        return np.stack([i, j], axis=1)
    groups = np.asarray(groups)
    members: dict[int, np.ndarray] = {}
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if len(idx) >= 2:
            members[int(g)] = idx
    if not members:
        raise GenMetricsError("SSIM by identity needs an identity with at least 2 images")
    eligible = np.concatenate(list(members.values()))
    i = rng.choice(eligible, num_pairs)
    out = np.empty((num_pairs, 2), dtype=np.int64)
    for k, a in enumerate(i):
        idx = members[int(groups[a])]
        pos = int(np.flatnonzero(idx == a)[0])
        out[k] = a, idx[(pos + rng.integers(1, len(idx))) % len(idx)]
    return out


# --- images ----------------------------------------------------------------------------------
@dataclass
class ImageSet:
    """Images to score: paths, identities when known, and where they came from."""

    paths: list[str]
    source: str
    pids: list[int] | None = None


def image_set(spec: str) -> ImageSet:
    """A folder of images (with or without manifest.csv), a .txt file listing image paths (a
    GAN run's ``train_images.txt`` or ``measure_images.txt``), or ``DATASET:ROOT`` (its train
    split)."""
    p = Path(spec).expanduser()
    if p.suffix == ".txt" and p.is_file():
        paths = p.read_text().split("\n")
        paths = [line.strip() for line in paths if line.strip()]
        missing = [q for q in paths if not Path(q).is_file()]
        if missing or not paths:
            raise GenMetricsError(
                f"{p}: expected one existing image path per line; "
                + (f"{len(missing)} missing, e.g. {missing[0]}" if missing else "it lists none")
            )
        return ImageSet(paths, f"{p} ({len(paths)} listed images)")
    if not p.exists() and ":" in spec:
        name, root = spec.split(":", 1)
        if name in DATASETS:
            ds = load_dataset(name, root)
            recs = [r for r in ds.train if not r.generated]
            return ImageSet([r.path for r in recs], f"{ds.name} train split", [r.pid for r in recs])
    if not p.is_dir():
        raise GenMetricsError(
            f"expected a folder of images or DATASET:ROOT (e.g. market1501:/data/Market), "
            f"found nothing usable at {spec}"
        )
    if (p / MANIFEST).is_file():
        return ImageSet([r.path for r in read_generated(p)], f"{p} ({MANIFEST})")
    paths = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise GenMetricsError(
            f"expected images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {p}, found none"
        )
    return ImageSet(paths, str(p))


def ssim_diversity(
    images: ImageSet,
    num_pairs: int = 1000,
    seed: int = 0,
    size: tuple[int, int] = (128, 64),
    batch_size: int = 64,
) -> dict[str, Any]:
    """Mean SSIM over same-identity pairs (identities known) or random pairs (generated)."""
    by_id = images.pids is not None
    pairs = sample_pairs(len(images.paths), num_pairs, seed, images.pids if by_id else None)
    values = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        a = load_images([images.paths[i] for i in chunk[:, 0]], size)
        b = load_images([images.paths[j] for j in chunk[:, 1]], size)
        values.append(ssim(a, b, data_range=1.0))
    v = torch.cat(values).numpy()
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "pairs": int(len(v)),
        "pairing": "same identity" if by_id else "random pairs (no identities)",
        "size": list(size),
        "seed": seed,
    }


def compute_metrics(
    real: str,
    fake: str,
    inception_weights: str | None = None,
    feature_extractor: str | None = None,
    ssim_only: bool = False,
    ssim_pairs: int = 1000,
    ssim_size: tuple[int, int] = (128, 64),
    seed: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    download: bool = True,
    fid: bool = True,
) -> dict[str, Any]:
    """FID (or a re-ID-space Frechet distance) and SSIM diversity of ``fake`` against ``real``;
    ``download=False`` never fetches missing Inception weights, ``fid=False`` (with no
    ``feature_extractor``) computes no distance at all."""
    real_set, fake_set = image_set(real), image_set(fake)
    out: dict[str, Any] = {
        "real": {"source": real_set.source, "images": len(real_set.paths)},
        "fake": {"source": fake_set.source, "images": len(fake_set.paths)},
        "notes": [],
    }
    if not ssim_only and (fid or feature_extractor):
        if feature_extractor:
            ext = get_feature_extractor(feature_extractor, device)
        else:
            ext = inception_extractor(inception_weights, device, download)
        fr = image_features(ext, real_set.paths, batch_size, device)
        ff = image_features(ext, fake_set.paths, batch_size, device)
        dist = frechet_distance(*feature_stats(fr), *feature_stats(ff))
        out["fid" if ext.comparable else "frechet_distance"] = dist
        out["feature_space"] = ext.name
        out["feature_dim"] = int(fr.shape[1])
        out["comparable_with_published_fid"] = ext.comparable
        out["notes"] += ext.notes
        smallest = min(len(fr), len(ff))
        if smallest < fr.shape[1]:
            out["notes"].append(
                f"only {smallest} images for {fr.shape[1]}-d features: the covariance is "
                "rank-deficient and the estimate biased upwards; published FIDs use 10k-50k images"
            )
    out["ssim"] = {
        "real": ssim_diversity(real_set, ssim_pairs, seed, ssim_size),
        "fake": ssim_diversity(fake_set, ssim_pairs, seed, ssim_size),
    }
    out["notes"].append(
        "ssim: mean SSIM (gaussian 11, sigma 1.5) over image pairs at "
        f"{ssim_size[0]}x{ssim_size[1]}; same-identity pairs where identities are known "
        "(DG-Net Table 2), random pairs otherwise"
    )
    if not math.isfinite(out.get("fid", out.get("frechet_distance", 0.0))):
        out["notes"].append("the distance is not finite: check the images and the extractor")
    return out
