"""Generated-image quality a user can read offline: the Frechet distance, KID and k-NN
precision and recall of generated against real images, in one fixed feature space.

* The space is genreid's shipped synthetic-pedestrian backbone (ResNet-18 at width 16, no
  download): eval-mode pooled features of the image and its mirror, summed and L2-normalised,
  the re-ID test feature of the tiny recipe. The file's sha256 is pinned
  (:data:`SPACE_SHA256`) and recorded with every result, so numbers compare across runs and
  datasets; a new shipped backbone must keep this file for the measures or say that the
  space changed.
* Precision and recall follow Kynkäänniemi et al. 2019: each set's manifold is the union of
  balls around its features with radius the distance to the k-th nearest other feature;
  precision is the share of generated images inside the real manifold, recall the share of
  real images inside the generated one (k = 3).
* KID (Binkowski et al. 2018) is the unbiased MMD^2 with the cubic polynomial kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (clean-fid's and torch-fidelity's choices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genreid.core.errors import ConfigError
from genreid.eval.generation.extractors import FeatureExtractor, GenMetricsError, image_features
from genreid.eval.generation.gen_metrics import feature_stats, frechet_distance
from genreid.eval.ranking.extract import reid_forward
from genreid.models.pretrained import file_sha256, shipped_path
from genreid.models.reid import ModelConfig, build_model

K_NEAREST = 3  # Kynkäänniemi et al.'s k
SPACE_BACKBONE, SPACE_WIDTH = "resnet18", 16
SPACE_SIZE = (128, 64)
# the shipped backbone the measures are computed with (genreid 0.1.0, pretrain_tiny)
SPACE_SHA256 = "5954d624f5833280fe1482864485dfe740024e662b892b3826c9a32c2d943db1"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
CHUNK = 2048  # rows of a distance matrix computed at once (memory, not results)


@dataclass
class MeasureConfig:
    """The ``measure`` section of a generator run: its images scored against real ones at
    the end (and every ``train.eval_every`` epochs when that is set)."""

    enabled: bool = True
    # share of the real training images kept out of the generator's training as the
    # reference; 0: the training images themselves (a memorising generator then scores well)
    holdout: float = 0.0
    images: int = 0  # generated images scored; 0: as many as the reference images
    seed: int = 0  # noise of the scored images and KID's subsets

    def check(self) -> None:
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"measure.holdout: expected a share in [0, 1), got {self.holdout}")
        if self.images < 0:
            raise ConfigError(f"measure.images: expected >= 0, got {self.images}")


def holdout_split(items: Sequence[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(kept for training, held out): a seeded random ``share`` of ``items`` held out, at
    least k + 1 of them when any are, both in their original order."""
    n = len(items)
    if share <= 0:
        return list(items), []
    held = max(K_NEAREST + 1, round(share * n))
    if held >= n:
        raise GenMetricsError(
            f"measure.holdout={share}: {n} images are too few to hold out {held} (at least "
            f"{K_NEAREST + 1}) and train on the rest; lower it or set measure.holdout=0"
        )
    out = set(np.random.default_rng(seed).choice(n, held, replace=False).tolist())
    return [x for i, x in enumerate(items) if i not in out], [items[i] for i in sorted(out)]


# --- the feature space -----------------------------------------------------------------------
def synthetic_space(device: str | torch.device = "cpu") -> FeatureExtractor:
    """The fixed feature space of the measures: the shipped synthetic backbone, its sha256
    checked against the pinned one (a replaced file would silently change every number)."""
    path = shipped_path(SPACE_BACKBONE, SPACE_WIDTH)
    digest = file_sha256(path)
    if digest != SPACE_SHA256:
        raise GenMetricsError(
            f"{path} is not the backbone genreid's generated-image measures are defined in "
            f"(sha256 {digest[:12]}..., expected {SPACE_SHA256[:12]}...); restore that file "
            "(git checkout) so the measures stay comparable"
        )
    cfg = ModelConfig(arch="ide_tiny", pretrained="synthetic")
    model = build_model(cfg, num_outputs=1).to(device).eval()
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    forward = reid_forward(model, flip=True)

    @torch.no_grad()
    def features(x: torch.Tensor) -> torch.Tensor:
        return forward((x - mean) / std)

    name = f"genreid synthetic backbone ({SPACE_BACKBONE}, width {SPACE_WIDTH}, sha256 "
    name += f"{SPACE_SHA256[:12]})"
    return FeatureExtractor(name, features, SPACE_SIZE, pil_bicubic=True)


# --- the measures ----------------------------------------------------------------------------
def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def knn_radii(x: np.ndarray, k: int = K_NEAREST) -> np.ndarray:
    """Distance of each row of ``x`` to its k-th nearest other row."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    out = []
    for start in range(0, len(t), CHUNK):
        d = _distances(t[start : start + CHUNK], t)
        # the row itself is at distance 0: the k-th other neighbour is the (k + 1)-th value
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out).numpy()


def coverage(ref: np.ndarray, radii: np.ndarray, query: np.ndarray) -> float:
    """Share of ``query`` rows inside at least one ball (centre a ``ref`` row, its radius)."""
    r = torch.as_tensor(np.asarray(ref, dtype=np.float64))
    rad = torch.as_tensor(np.asarray(radii, dtype=np.float64))
    q = torch.as_tensor(np.asarray(query, dtype=np.float64))
    inside = [(_distances(q[s : s + CHUNK], r) <= rad).any(dim=1) for s in range(0, len(q), CHUNK)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K_NEAREST) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real`` (Kynkäänniemi et al. 2019)."""
    check_counts(len(real), len(fake), k)
    return (
        coverage(real, knn_radii(real, k), fake),
        coverage(fake, knn_radii(fake, k), real),
    )


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def kid(
    real: np.ndarray,
    fake: np.ndarray,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of each set, of
    ``min(subset_size, len(real), len(fake))`` images each."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise GenMetricsError(f"KID needs at least 2 images per set, got {len(real)}/{len(fake)}")
    rng = np.random.default_rng(seed)
    values = [
        _mmd2_unbiased(
            real[rng.choice(len(real), m, replace=False)],
            fake[rng.choice(len(fake), m, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def check_counts(real: int, fake: int, k: int = K_NEAREST) -> None:
    """One-line error when a set is too small for k-NN precision and recall."""
    need = k + 1
    if min(real, fake) < need:
        raise GenMetricsError(
            f"generated-image measures need at least {need} images per set (k = {k} nearest "
            f"neighbours + the image itself), got {real} real and {fake} generated"
        )


@dataclass(frozen=True)
class Quality:
    """The four measures of one generated set against one real set."""

    frechet: float
    kid: float
    kid_std: float
    precision: float
    recall: float
    real_images: int
    fake_images: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "frechet": self.frechet, "kid": self.kid, "kid_std": self.kid_std,
            "precision": self.precision, "recall": self.recall,
            "real_images": self.real_images, "fake_images": self.fake_images,
        }  # fmt: skip

    def line(self) -> str:
        return (
            f"Frechet {self.frechet:.3f}  KID {self.kid:.4f}  precision {self.precision:.3f}"
            f"  recall {self.recall:.3f}  ({self.fake_images} generated vs {self.real_images}"
            " real)"
        )


def quality(real: np.ndarray, fake: np.ndarray, seed: int = 0) -> Quality:
    """Every measure of ``fake`` against ``real`` features (N x D, already in the space)."""
    check_counts(len(real), len(fake))
    precision, recall = precision_recall(real, fake)
    kid_mean, kid_std = kid(real, fake, seed=seed)
    dist = frechet_distance(*feature_stats(real), *feature_stats(fake))
    return Quality(dist, kid_mean, kid_std, precision, recall, len(real), len(fake))


def real_halves(real: np.ndarray, seed: int = 0) -> Quality:
    """The measures of one random half of the real images against the other: what a
    generator indistinguishable from the real set would score at this set size."""
    idx = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return quality(real[idx[:half]], real[idx[half : 2 * half]], seed)


def tensor_features(
    space: FeatureExtractor, images: torch.Tensor, batch_size: int = 64
) -> np.ndarray:
    """N x D features of images in [0, 1] (N x 3 x H x W), rounded to 8 bits as a saved
    image would be and resized bilinearly to the space's size when they differ."""
    out = []
    for start in range(0, len(images), batch_size):
        x = (images[start : start + batch_size].clamp(0, 1) * 255).round() / 255
        if tuple(x.shape[-2:]) != space.size:
            x = F.interpolate(x, size=space.size, mode="bilinear", align_corners=False)
        with torch.no_grad():
            out.append(space.fn(x).double().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def generator_features(
    G: torch.nn.Module, space: FeatureExtractor, num: int, seed: int, device: Any = "cpu"
) -> np.ndarray:
    """Features of ``num`` images of a generator (``G.sample_z``, outputs in [-1, 1]) from
    noise seeded with ``seed``, in batches of 64: the images every GAN measure scores."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, num, 64):
        z = G.sample_z(min(64, num - start), g).to(device)
        parts.append(tensor_features(space, (G(z) + 1) / 2))
    return np.concatenate(parts)


def measure_images(
    real_paths: Sequence[str],
    fake_paths: Sequence[str],
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    reference: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """The measures of generated against real image files in the synthetic space, with the
    real-halves reference when ``reference`` (and the real set is large enough)."""
    check_counts(len(real_paths), len(fake_paths))
    space = synthetic_space(device)
    fr = image_features(space, list(real_paths), batch_size, device)
    ff = image_features(space, list(fake_paths), batch_size, device)
    out = {**quality(fr, ff, seed).as_dict(), "k": K_NEAREST, "space": space.name}
    if reference and len(fr) >= 2 * (K_NEAREST + 1):
        out["real_halves"] = real_halves(fr, seed).as_dict()
    return out


# --- DG-Net: whose identity a swapped image carries ------------------------------------------
def cross_identity_pairs(pids: Sequence[int], num: int, seed: int) -> list[tuple[int, int]]:
    """``num`` (appearance, structure) index pairs of images of different identities, drawn
    with ``seed``."""
    if len(set(pids)) < 2:
        raise GenMetricsError("swaps across identities need images of 2 or more identities")
    rng = np.random.default_rng(seed)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < num:
        i, j = (int(v) for v in rng.integers(len(pids), size=2))
        if pids[i] != pids[j]:
            pairs.append((i, j))
    return pairs


def identity_centroids(features: np.ndarray, pids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised mean feature of each identity, the identities in that order)."""
    ids = np.array(sorted(set(pids)))
    pids_arr = np.asarray(pids)
    means = np.stack([features[pids_arr == p].mean(axis=0) for p in ids])
    return means / np.linalg.norm(means, axis=1, keepdims=True), ids


def transfer_rates(
    swaps: np.ndarray,
    centroids: np.ndarray,
    ids: np.ndarray,
    appearance: Sequence[int],
    structure: Sequence[int],
) -> dict[str, float]:
    """Shares of swapped images (L2-normalised features) whose nearest identity centroid
    (cosine) is the appearance donor's and the structure donor's identity."""
    nearest = ids[np.argmax(swaps @ centroids.T, axis=1)]
    return {
        "appearance": float(np.mean(nearest == np.asarray(appearance))),
        "structure": float(np.mean(nearest == np.asarray(structure))),
        "swaps": len(swaps),
    }
