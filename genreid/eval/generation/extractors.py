"""Feature spaces for the Frechet distance: a loader per ``--feature-extractor NAME:ARG``.

``reid:RUN`` is a ``genreid train`` run folder's test feature (or an exported model file),
``model:FILE`` a ``.pt2``/TorchScript feature extractor; :func:`register_feature_extractor`
adds others. Distances in these spaces are not comparable with published FIDs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genreid.core.errors import GenreidError
from genreid.core.registry import Registry
from genreid.core.text import first_line
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from genreid.eval.ranking.extract import extract_features, load_trained_model, reid_forward

NOT_COMPARABLE = (
    "distance computed in a re-ID network's feature space, not Inception-v3: this number is "
    "NOT comparable with published FIDs; compare it only between generators scored with the "
    "same network"
)


class GenMetricsError(GenreidError, ValueError):
    """Missing weights, empty folders or a bad feature-extractor spec."""


@dataclass
class FeatureExtractor:
    """Maps B x 3 x H x W images in [0, 1] at ``size`` to B x D features."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    size: tuple[int, int]
    comparable: bool = False  # True only for the FID Inception network
    notes: list[str] = field(default_factory=list)
    pil_bicubic: bool = False  # resize like genreid's test_transform instead of bilinear


class UnitImage:
    """PIL image -> 3 x H x W in [0, 1] at ``size``: bilinear on the tensor, or PIL bicubic
    first (exactly what genreid's ``test_transform`` does before normalising)."""

    def __init__(self, size: Sequence[int], pil_bicubic: bool = False) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.pil_bicubic = pil_bicubic

    def __call__(self, img: Image.Image) -> torch.Tensor:
        h, w = self.size
        if self.pil_bicubic:
            img = img.resize((w, h), Image.Resampling.BICUBIC)
        x = to_tensor(img)[None]
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x[0]


def path_dataset(paths: Sequence[str], transform: Callable) -> ImageDataset:
    """An ImageDataset over bare image paths (no identities)."""
    return ImageDataset([ImageRecord(str(p), -1, -1, Role.TRAIN) for p in paths], transform)


def load_images(
    paths: Sequence[str], size: tuple[int, int], pil_bicubic: bool = False
) -> torch.Tensor:
    """Images as B x 3 x H x W in [0, 1] resized to ``size`` (bilinear, or PIL bicubic)."""
    tf = UnitImage(size, pil_bicubic)
    dataset = path_dataset(paths, tf)
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def image_features(
    extractor: FeatureExtractor,
    paths: Sequence[str],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """N x D float64 features of the images at ``paths``."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        f = extractor.fn(x)
        if isinstance(f, tuple | list):
            f = f[0]
        return f.reshape(f.shape[0], -1).double()

    dataset = path_dataset(paths, UnitImage(extractor.size, extractor.pil_bicubic))
    feats = extract_features(forward, dataset, batch_size, device)
    return feats.numpy() if len(paths) else np.empty((0, 0))


def exported_model(arg: str, device: torch.device) -> FeatureExtractor:
    """``model:FILE``: a TorchScript file (torch.jit.save) or a torch.export program (``.pt2``)."""
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
                "genreid.eval.generation.extractors.register_feature_extractor('reid', fn)."
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
            f"{p} cannot be loaded as a feature extractor ({first_line(exc, None)}); save one "
            "with torch.export.save "
            "(.pt2) or torch.jit.save"
        ) from None
    return FeatureExtractor(f"model:{p}", model, (256, 128))


def reid_run(arg: str, device: torch.device) -> FeatureExtractor:
    """``reid:RUN``: a ``genreid train`` run folder's test feature; other paths go to
    :func:`exported_model`."""
    run = Path(arg).expanduser()
    exported = [run / n for n in ("feature_extractor.pt2", "feature_extractor.pt")]
    if not (run / "config.yaml").is_file() or any(p.is_file() for p in exported):
        return exported_model(arg, device)
    if not (run / "checkpoints" / "last.pt").is_file():
        raise GenMetricsError(
            f"{run} is a training run without checkpoints/last.pt (no epoch finished yet); "
            "train it for at least one epoch, or resume it with `genreid train --resume`"
        )
    try:
        model, data, ev, _ = load_trained_model(run, overrides=[f"train.device={device}"])
    except GenreidError as exc:
        raise GenMetricsError(
            f"{run} cannot be loaded as a re-ID run ({first_line(exc, None)})"
        ) from None
    # Inputs arrive in [0, 1], resized to data.height x data.width with PIL bicubic
    # (pil_bicubic below): with the ImageNet mean/std this is exactly test_transform. The
    # feature is reid_forward's: eval-mode output (+ flipped image when eval.flip), L2-normed.
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    flip = bool(ev.flip)
    forward = reid_forward(model, flip)

    def features(x: torch.Tensor) -> torch.Tensor:
        return forward((x - mean) / std)

    size = data.size
    note = f"re-ID run {run} (checkpoints/last.pt, {model.spec.arch}, {size[0]}x{size[1]}"
    note += ", flip-averaged)" if flip else ")"
    return FeatureExtractor(f"reid:{run}", features, size, notes=[note], pil_bicubic=True)


LoaderFn = Callable[[str, torch.device], FeatureExtractor | Callable[[torch.Tensor], torch.Tensor]]
exported_model.name = "model"  # type: ignore[attr-defined]
reid_run.name = "reid"  # type: ignore[attr-defined]
FEATURE_EXTRACTORS: Registry[LoaderFn] = Registry(
    "feature extractor", {"reid": reid_run, "model": exported_model}
)


def register_feature_extractor(name: str, fn: LoaderFn) -> None:
    """Make ``--feature-extractor NAME:ARG`` call ``fn(ARG, device)``.

    ``fn`` returns a :class:`FeatureExtractor` or a callable mapping B x 3 x 256 x 128 images in
    [0, 1] to B x D features. Registering ``reid`` replaces the built-in loader (``genreid
    train`` run folders, ``.pt2`` or TorchScript files).
    """
    FEATURE_EXTRACTORS.register(name, fn)


def get_feature_extractor(spec: str, device: str | torch.device = "cpu") -> FeatureExtractor:
    """``NAME:ARG`` -> FeatureExtractor, e.g. ``reid:runs/ide/feature_extractor.pt``."""
    name, _, arg = spec.partition(":")
    if name not in FEATURE_EXTRACTORS or not arg:
        raise GenMetricsError(
            f"--feature-extractor {spec!r}: expected NAME:ARG with NAME one of "
            f"{', '.join(sorted(FEATURE_EXTRACTORS))} (e.g. reid:model.pt)"
        )
    out = FEATURE_EXTRACTORS.get(name)(arg, torch.device(device))
    if not isinstance(out, FeatureExtractor):
        out = FeatureExtractor(spec, out, (256, 128))
    if name == "reid":
        out.name = spec
    out.comparable = False
    out.notes.append(NOT_COMPARABLE)
    return out
