"""Generation quality: FID (Inception-v3 pool features or another feature space) and SSIM.

* FID uses the TensorFlow FID Inception weights ported to PyTorch (pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth``), read from a local file; nothing is downloaded.
* The Frechet distance is computed in float64 through two symmetric eigendecompositions,
  ``tr((S1^1/2 S2 S1^1/2)^1/2)`` in place of scipy's non-symmetric ``sqrtm(S1 S2)``.
* ``reid:MODEL`` (a ``genreid train`` run folder, a ``.pt2``/TorchScript file, or any name
  registered with :func:`register_feature_extractor`) computes the same distance in another
  network's feature space; such numbers are not comparable with published FIDs.
* SSIM follows Wang et al. 2004 (gaussian window 11, sigma 1.5) and is vectorised in torch;
  diversity is the mean SSIM over pairs of the same identity, or random pairs when there are no
  identities (DG-Net Table 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
NOT_COMPARABLE = (
    "distance computed in a re-ID network's feature space, not Inception-v3: this number is "
    "NOT comparable with published FIDs; compare it only between generators scored with the "
    "same network"
)


class GenMetricsError(ValueError):
    """Missing weights, empty folders or a bad feature-extractor spec."""


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
    from scipy import linalg

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
    from scipy import linalg

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
    from scipy import linalg

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
    """A folder of images (with or without manifest.csv), or ``DATASET:ROOT`` (its train split)."""
    from genreid.data.generated import MANIFEST, read_generated

    p = Path(spec).expanduser()
    if not p.exists() and ":" in spec:
        from genreid.data.datasets import DATASET_NAMES, load_dataset

        name, root = spec.split(":", 1)
        if name.lower().replace("-", "").replace("_", "") in DATASET_NAMES:
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


def load_images(
    paths: Sequence[str], size: tuple[int, int], pil_bicubic: bool = False
) -> torch.Tensor:
    """Images as B x 3 x H x W in [0, 1] resized to ``size`` (bilinear, or PIL bicubic)."""
    from PIL import Image

    from genreid.data.image_dataset import to_tensor
    from genreid.data.io import read_image

    out = []
    for p in paths:
        img = read_image(p)
        if pil_bicubic:  # exactly what genreid's test_transform does before ToTensor
            img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        x = to_tensor(img)[None]
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        out.append(x)
    return torch.cat(out)


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


# --- feature extractors ----------------------------------------------------------------------
@dataclass
class FeatureExtractor:
    """Maps B x 3 x H x W images in [0, 1] at ``size`` to B x D features."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    size: tuple[int, int]
    comparable: bool = False  # True only for the FID Inception network
    notes: list[str] = field(default_factory=list)
    pil_bicubic: bool = False  # resize like genreid's test_transform instead of bilinear


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The FID Inception weights: ``path``, $GENREID_INCEPTION_WEIGHTS or torch hub's cache."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise GenMetricsError(
                f"Inception weights not found at {p}. Pass the pytorch-fid file "
                f"{FID_WEIGHTS_NAME} (pytorch-fid users have it under "
                "~/.cache/torch/hub/checkpoints/), or use --feature-extractor reid:MODEL."
            )
        return p
    candidates = []
    if os.environ.get("GENREID_INCEPTION_WEIGHTS"):
        candidates.append(Path(os.environ["GENREID_INCEPTION_WEIGHTS"]).expanduser())
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME)
    for c in candidates:
        if c.is_file():
            return c
    raise GenMetricsError(
        f"no Inception weights: looked for {FID_WEIGHTS_NAME} at "
        f"{', '.join(str(c) for c in candidates)}. genreid never downloads them; pass "
        "--inception-weights PATH (the file pytorch-fid uses), set GENREID_INCEPTION_WEIGHTS, "
        "use --feature-extractor reid:MODEL for a non-comparable distance, or --ssim-only."
    )


def _fid_blocks() -> tuple[type, type, type, type]:
    import torchvision.models.inception as tvi

    class FIDInceptionA(tvi.InceptionA):
        """InceptionA with TF's average pool (padding excluded from the mean)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b1 = self.branch1x1(x)
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b5, b3, bp], 1)

    class FIDInceptionC(tvi.InceptionC):
        """InceptionC with TF's average pool."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b1 = self.branch1x1(x)
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            bd = self.branch7x7dbl_1(x)
            for layer in (
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                bd = layer(bd)
            bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return torch.cat([b1, b7, bd, bp], 1)

    def _e(
        self: Any, x: torch.Tensor, pool: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([b1, b3, bd, self.branch_pool(pool(x))], 1)

    class FIDInceptionE1(tvi.InceptionE):
        """First InceptionE with TF's average pool."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _e(self, x, lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False))

    class FIDInceptionE2(tvi.InceptionE):
        """Second InceptionE: the TF graph max-pools here."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return _e(self, x, lambda t: F.max_pool2d(t, 3, 1, 1))

    return FIDInceptionA, FIDInceptionC, FIDInceptionE1, FIDInceptionE2


def fid_inception_v3(state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """torchvision's Inception-v3 (no weights) patched into the TF FID graph, as pytorch-fid."""
    import torchvision

    A, C, E1, E2 = _fid_blocks()
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
    net.Mixed_6b, net.Mixed_6c = C(768, 128), C(768, 160)
    net.Mixed_6d, net.Mixed_6e = C(768, 160), C(768, 192)
    net.Mixed_7b, net.Mixed_7c = E1(1280), E2(2048)
    if state_dict is not None:
        net.load_state_dict(state_dict)
    return net


class InceptionPool(nn.Module):
    """2048-d pool features of the FID Inception: input in [0, 1], resized to 299, to [-1, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        n = self.net
        x = F.max_pool2d(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))), 3, 2)
        x = F.max_pool2d(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), 3, 2)
        for name in (
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
        ):
            x = getattr(n, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_extractor(
    weights: str | Path | None = None, device: str | torch.device = "cpu"
) -> FeatureExtractor:
    """The FID feature extractor from a local pytorch-fid weights file."""
    from genreid.engine.checkpoint import load_checkpoint

    path = find_inception_weights(weights)
    try:
        state = load_checkpoint(path)
        net = fid_inception_v3(state)
    except (RuntimeError, KeyError) as exc:
        raise GenMetricsError(
            f"{path} is not the FID Inception state dict ({FID_WEIGHTS_NAME}): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    model = InceptionPool(net).to(device).eval()
    return FeatureExtractor(
        "inception-v3-fid",
        model,
        (299, 299),
        comparable=True,
        notes=[f"FID Inception weights: {path}"],
    )


LoaderFn = Callable[[str, torch.device], FeatureExtractor | Callable[[torch.Tensor], torch.Tensor]]
_EXTRACTORS: dict[str, LoaderFn] = {}


def register_feature_extractor(name: str, fn: LoaderFn) -> None:
    """Make ``--feature-extractor NAME:ARG`` call ``fn(ARG, device)``.

    ``fn`` returns a :class:`FeatureExtractor` or a callable mapping B x 3 x 256 x 128 images in
    [0, 1] to B x D features. Registering ``reid`` replaces the built-in loader (``genreid
    train`` run folders, ``.pt2`` or TorchScript files).
    """
    _EXTRACTORS[name] = fn


def _exported_model(arg: str, device: torch.device) -> FeatureExtractor:
    """A TorchScript file (torch.jit.save) or a torch.export program (``.pt2``)."""
    import warnings

    p = Path(arg).expanduser()
    if p.is_dir():
        found = [p / n for n in ("feature_extractor.pt2", "feature_extractor.pt")]
        found = [c for c in found if c.is_file()]
        if not found:
            raise GenMetricsError(
                f"{arg} is neither a `genreid train` run folder (config.yaml and "
                "checkpoints/last.pt) nor a folder with feature_extractor.pt(2): pass a run "
                "folder, or save the network with torch.export.save (.pt2) or torch.jit.save "
                "(input B x 3 x 256 x 128 in [0, 1], output B x D) and pass reid:FILE, or "
                "register a loader with "
                "genreid.eval.gen_metrics.register_feature_extractor('reid', fn)."
            )
        p = found[0]
    if not p.is_file():
        raise GenMetricsError(
            f"feature extractor {arg} does not exist (expected a .pt2 or TorchScript file)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in torch
            if p.suffix == ".pt2":
                model = torch.export.load(str(p)).module().to(device)
            else:
                model = torch.jit.load(str(p), map_location=device).eval()
    except Exception as exc:  # a foreign or truncated file
        raise GenMetricsError(
            f"{p} cannot be loaded as a feature extractor ({type(exc).__name__}: "
            f"{(str(exc).strip().splitlines() or [''])[0]}); save one with torch.export.save "
            "(.pt2) or torch.jit.save"
        ) from None
    return FeatureExtractor(f"model:{p}", model, (256, 128))


def _reid_run(arg: str, device: torch.device) -> FeatureExtractor:
    """A ``genreid train`` run folder's test feature; other paths go to ``_exported_model``."""
    from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from genreid.engine.extract import load_trained_model

    run = Path(arg).expanduser()
    exported = [run / n for n in ("feature_extractor.pt2", "feature_extractor.pt")]
    if not (run / "config.yaml").is_file() or any(p.is_file() for p in exported):
        return _exported_model(arg, device)
    if not (run / "checkpoints" / "last.pt").is_file():
        raise GenMetricsError(
            f"{run} is a training run without checkpoints/last.pt (no epoch finished yet); "
            "train it for at least one epoch, or resume it with `genreid train --resume`"
        )
    try:
        model, cfg, _ = load_trained_model(run, overrides=[f"train.device={device}"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise GenMetricsError(
            f"{run} cannot be loaded as a re-ID run ({type(exc).__name__}: "
            f"{(str(exc).strip().splitlines() or [''])[0]})"
        ) from None
    # Inputs arrive in [0, 1], resized to data.height x data.width with PIL bicubic
    # (pil_bicubic below): with the ImageNet mean/std this is exactly test_transform. The
    # feature is extract_features': eval-mode output (+ flipped image when eval.flip), L2-normed.
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    flip = bool(cfg.eval.flip)

    def features(x: torch.Tensor) -> torch.Tensor:
        x = (x - mean) / std
        f = model(x).float()
        if flip:
            f = f + model(x.flip(-1)).float()
        return F.normalize(f, dim=1)

    size = (int(cfg.data.height), int(cfg.data.width))
    note = f"re-ID run {run} (checkpoints/last.pt, {cfg.model.arch}, {size[0]}x{size[1]}"
    note += ", flip-averaged)" if flip else ")"
    return FeatureExtractor(f"reid:{run}", features, size, notes=[note], pil_bicubic=True)


register_feature_extractor("reid", _reid_run)
register_feature_extractor("model", _exported_model)


def get_feature_extractor(spec: str, device: str | torch.device = "cpu") -> FeatureExtractor:
    """``NAME:ARG`` -> FeatureExtractor, e.g. ``reid:runs/ide/feature_extractor.pt``."""
    name, _, arg = spec.partition(":")
    if name not in _EXTRACTORS or not arg:
        raise GenMetricsError(
            f"--feature-extractor {spec!r}: expected NAME:ARG with NAME one of "
            f"{', '.join(sorted(_EXTRACTORS))} (e.g. reid:model.pt)"
        )
    out = _EXTRACTORS[name](arg, torch.device(device))
    if not isinstance(out, FeatureExtractor):
        out = FeatureExtractor(spec, out, (256, 128))
    if name == "reid":
        out.name = spec
    out.comparable = False
    out.notes.append(NOT_COMPARABLE)
    return out


@torch.no_grad()
def extract_features(
    extractor: FeatureExtractor,
    paths: Sequence[str],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """N x D float64 features of the images at ``paths``."""
    feats = []
    for start in range(0, len(paths), batch_size):
        batch = paths[start : start + batch_size]
        x = load_images(batch, extractor.size, extractor.pil_bicubic).to(device)
        f = extractor.fn(x)
        if isinstance(f, tuple | list):
            f = f[0]
        feats.append(f.reshape(f.shape[0], -1).double().cpu().numpy())
    return np.concatenate(feats) if feats else np.empty((0, 0))


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
) -> dict[str, Any]:
    """FID (or a re-ID-space Frechet distance) and SSIM diversity of ``fake`` against ``real``."""
    real_set, fake_set = image_set(real), image_set(fake)
    out: dict[str, Any] = {
        "real": {"source": real_set.source, "images": len(real_set.paths)},
        "fake": {"source": fake_set.source, "images": len(fake_set.paths)},
        "notes": [],
    }
    if not ssim_only:
        if feature_extractor:
            ext = get_feature_extractor(feature_extractor, device)
        else:
            ext = inception_extractor(inception_weights, device)
        fr = extract_features(ext, real_set.paths, batch_size, device)
        ff = extract_features(ext, fake_set.paths, batch_size, device)
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
