"""Encoders of images into the re-ID test feature: a training run (PyTorch) or an ONNX file
written by ``genreid export``, each with the identity of the features it gives.

Both read an image like ``genreid extract`` does (PIL bicubic resize to the run's
``data.height`` x ``data.width``, RGB scaled to [0, 1], ImageNet mean/std) and return its
flip-averaged (``eval.flip``), L2-normalised feature, so indexes and queries encoded by either
compare. The identity (a sha256 of the network's weights, flip averaging and preprocessing)
says whether two feature sets come from the same model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genreid import __version__
from genreid.core.config import read_yaml
from genreid.core.errors import GenreidError
from genreid.core.runs import require_run
from genreid.core.text import first_line
from genreid.data.dataset import ImageDataset
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, test_transform
from genreid.eval.ranking.extract import extract_features, load_trained_model, reid_forward
from genreid.models.dgnet.network import DGNetReID

METADATA_KEY = "genreid"  # the ONNX metadata_props entry holding the JSON description
INPUT_NAME, OUTPUT_NAME = "images", "features"
DEPLOY_INSTALL = "pip install 'genreid[deploy]' (onnx, onnxruntime, onnxscript)"


class DeployError(GenreidError, ValueError):
    """A model file, export or index that cannot be used; the message says what to do."""


def preprocessing(size: Sequence[int]) -> dict[str, Any]:
    """What an image goes through before the network (``test_transform``), as plain data."""
    return {
        "height": int(size[0]),
        "width": int(size[1]),
        "resize": "bicubic (PIL), to height x width, aspect ratio not kept",
        "channel_order": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "formula": "x = (rgb / 255 - mean) / std, per channel",
    }


class FeatureGraph(nn.Module):
    """What ``genreid extract`` computes from a normalised batch: the eval-mode output (+ that
    of the mirrored batch when ``flip``), L2-normalised (``reid_forward``)."""

    def __init__(self, model: nn.Module, flip: bool) -> None:
        super().__init__()
        self.model = model.eval()
        self.flip = flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return reid_forward(self.model, self.flip)(images)


def weights_sha256(model: nn.Module, extra: dict[str, Any]) -> str:
    """sha256 of a network's parameters and buffers (names, shapes, bytes) and ``extra``."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Encoder:
    """Images -> N x D float32 L2-normalised features, and the model they come from."""

    kind: str  # run or onnx
    source: str  # the run folder or the .onnx file (resolved)
    forward: Callable[[torch.Tensor], torch.Tensor]  # normalised batch -> features
    preprocessing: dict[str, Any]
    feature_dim: int
    flip: bool
    weights_sha256: str
    architecture: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64
    onnx_sha256: str | None = None
    graph: FeatureGraph | None = None  # the PyTorch module (runs only)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.preprocessing["height"]), int(self.preprocessing["width"])

    def identity(self) -> dict[str, Any]:
        """What an index records about the model; :func:`same_model` compares two of them."""
        out = {
            "kind": self.kind,
            "source": self.source,
            "weights_sha256": self.weights_sha256,
            "flip": self.flip,
            "feature_dim": self.feature_dim,
            "architecture": self.architecture,
        }
        if self.onnx_sha256:
            out["onnx_sha256"] = self.onnx_sha256
        return out

    def encode(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Features of the images at ``paths``, in order (N x D float32, rows of norm 1)."""
        records = [ImageRecord(str(p), -1, -1, Role.GALLERY) for p in paths]
        if not records:
            return np.zeros((0, self.feature_dim), np.float32)
        dataset = ImageDataset(records, test_transform(self.size))
        feats = extract_features(self.forward, dataset, self.batch_size, self.device)
        return feats.numpy().astype(np.float32, copy=False)


def same_model(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two identities (:meth:`Encoder.identity`) give the same features."""
    keys = ("weights_sha256", "flip", "feature_dim")
    return all(a.get(k) == b.get(k) for k in keys)


def describe_model(run: Path, model: nn.Module) -> str:
    """``ide_tiny (ide head on resnet18, width 8)`` or the DG-Net test model's description."""
    if isinstance(model, DGNetReID):
        spec = model.encoder.spec
        return (
            f"dgnet appearance encoder ({spec.backbone}, width {spec.width}), feature "
            f"{model.feature}, beta {model.beta}"
        )
    spec = model.spec  # type: ignore[attr-defined]
    arch = (read_yaml(run / "config.yaml").get("model") or {}).get("arch", spec.arch)
    return f"{arch} ({spec.arch} head on {spec.backbone}, width {spec.width})"


def load_run_encoder(
    run: str | Path,
    checkpoint: str = "last.pt",
    device: str | None = None,
    batch_size: int | None = None,
) -> Encoder:
    """The test feature of a training run (re-ID or DG-Net) as ``genreid extract`` computes it;
    ``device`` None keeps the run's ``train.device``."""
    run = require_run(run, "training run").resolve()
    overrides = [f"train.device={device}"] if device else []
    model, data, ev, dev = load_trained_model(run, checkpoint, overrides)
    flip = bool(ev.flip)
    graph = FeatureGraph(model, flip)
    size = data.size
    description = describe_model(run, model)
    sha = weights_sha256(model, {"flip": flip, "architecture": description, "size": list(size)})
    return Encoder(
        kind="run",
        source=str(run),
        forward=graph,
        preprocessing=preprocessing(size),
        feature_dim=int(model.feat_dim),
        flip=flip,
        weights_sha256=sha,
        architecture=description,
        device=dev,
        batch_size=batch_size or int(ev.batch_size),
        graph=graph,
    )


def onnxruntime_module() -> Any:
    """The ``onnxruntime`` module, or a DeployError saying how to install it."""
    try:
        import onnxruntime  # lazy: an optional dependency (genreid[deploy])
    except ImportError:
        raise DeployError(f"onnxruntime is not installed; {DEPLOY_INSTALL}") from None
    return onnxruntime


def ort_session(model: str | Path | bytes, threads: int | None = None) -> Any:
    """A CPU onnxruntime session on ``threads`` threads (default: torch's thread count)."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3  # errors only
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def ort_forward(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """A normalised batch -> features through an onnxruntime session."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        feed = {INPUT_NAME: x.detach().cpu().numpy().astype(np.float32, copy=False)}
        return torch.from_numpy(session.run([OUTPUT_NAME], feed)[0])

    return forward


def load_onnx_encoder(path: str | Path, batch_size: int = 64) -> Encoder:
    """An encoder from an ONNX file of ``genreid export`` (its metadata holds the preprocessing
    and the identity)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DeployError(f"ONNX file {p} does not exist; write one with `genreid export`")
    try:
        session = ort_session(p)
    except DeployError:
        raise
    except Exception as exc:  # a foreign or truncated file
        raise DeployError(
            f"{p} cannot be loaded by onnxruntime ({first_line(exc, 200)}); "
            "export it again with `genreid export`"
        ) from None
    meta_map = session.get_modelmeta().custom_metadata_map
    try:
        meta = json.loads(meta_map[METADATA_KEY])
        pre, sha, dim = meta["preprocessing"], meta["weights_sha256"], int(meta["feature_dim"])
    except (KeyError, ValueError, TypeError):
        raise DeployError(
            f"{p} has no genreid metadata (metadata_props[{METADATA_KEY!r}] with the "
            "preprocessing and weights_sha256); export the run with `genreid export`"
        ) from None
    names = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise DeployError(
            f"{p} has inputs {names[0]} and outputs {names[1]}, expected [{INPUT_NAME!r}] and "
            f"[{OUTPUT_NAME!r}]; export it again with `genreid export`"
        )
    return Encoder(
        kind="onnx",
        source=str(p.resolve()),
        forward=ort_forward(session),
        preprocessing=pre,
        feature_dim=dim,
        flip=bool(meta.get("flip", True)),
        weights_sha256=str(sha),
        architecture=str(meta.get("architecture", "")),
        batch_size=batch_size,
        onnx_sha256=file_sha256(p),
    )


def metadata(encoder: Encoder, exporter: str, opset: int) -> dict[str, Any]:
    """The description ``genreid export`` stores in the ONNX file and in its JSON sidecar."""
    return {
        "format": "genreid-onnx",
        "genreid_version": __version__,
        "run": encoder.source,
        "architecture": encoder.architecture,
        "feature_dim": encoder.feature_dim,
        "flip": encoder.flip,
        "l2_normalized": True,
        "weights_sha256": encoder.weights_sha256,
        "input": {"name": INPUT_NAME, "shape": ["batch", 3, *encoder.size]},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", encoder.feature_dim]},
        "preprocessing": encoder.preprocessing,
        "exporter": exporter,
        "opset": opset,
    }
