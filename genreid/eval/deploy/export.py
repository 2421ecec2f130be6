"""``genreid export``: a run's test feature as an ONNX graph, checked against PyTorch.

The graph is :class:`~genreid.eval.deploy.encoder.FeatureGraph`: input ``images`` (B x 3 x H x W
float32, RGB resized bicubically to the run's size, scaled to [0, 1] and normalised with the
ImageNet mean/std, i.e. what ``test_transform`` gives), output ``features`` (B x D, the
eval-mode output plus that of the mirrored image when the run's ``eval.flip``, L2-normalised:
exactly the feature ``genreid extract`` stores; for DG-Net runs [f_prim, beta * f_fine]).
The batch axis is dynamic. Preprocessing and identity go into the model's ``metadata_props``
and into a JSON sidecar. The export uses torch's ``torch.export``-based exporter
(``dynamo=True``, the default since torch 2.9), falling back to the TorchScript one.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genreid.core.config import read_yaml
from genreid.core.files import write_json_atomic
from genreid.core.text import first_line, listing
from genreid.data.dataset import ImageDataset
from genreid.data.datasets.base import list_images
from genreid.data.io import find_corrupt_images
from genreid.data.records import ImageRecord, Role
from genreid.data.transforms import test_transform
from genreid.eval.deploy.encoder import (
    DEPLOY_INSTALL,
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAME,
    DeployError,
    Encoder,
    file_sha256,
    load_run_encoder,
    metadata,
    ort_forward,
    ort_session,
)

OPSET = 18
TOLERANCE = 1e-4  # largest absolute feature difference accepted between ONNX and PyTorch


class ExportError(DeployError):
    """An export that failed or does not reproduce the PyTorch feature."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    sidecar: Path
    exporter: str
    opset: int
    feature_dim: int
    images: str  # where the verification batch came from
    random_batch: bool
    batch: int
    max_abs_diff: float
    torch_images_per_s: float
    onnx_images_per_s: float
    threads: int


def sidecar_path(onnx_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.json`` (the JSON description beside the ONNX file)."""
    return Path(onnx_path).with_suffix(".json")


def _onnx_module() -> Any:
    try:
        import onnx  # lazy: an optional dependency (genreid[deploy])
    except ImportError:
        raise ExportError(f"onnx is not installed; {DEPLOY_INSTALL}") from None
    return onnx


def to_onnx(graph: torch.nn.Module, example: torch.Tensor, opset: int = OPSET) -> tuple[Any, str]:
    """(ModelProto with a dynamic batch axis, exporter name): torch.export first, then the
    TorchScript exporter if that fails."""
    onnx = _onnx_module()
    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            program = torch.onnx.export(
                graph, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamo=True, external_data=False, verbose=False,
                dynamic_shapes={"images": {0: batch}},
            )  # fmt: skip
            return program.model_proto, "torch.export (dynamo)"
        except Exception as exc:  # any failure of the new exporter: try the old one
            errors.append(f"torch.export: {first_line(exc)}")
        try:
            buf = io.BytesIO()
            torch.onnx.export(
                graph, (example,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                opset_version=opset, dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )  # fmt: skip
            return onnx.load_from_string(buf.getvalue()), "torchscript"
        except Exception as exc:
            errors.append(f"TorchScript: {first_line(exc)}")
    raise ExportError(
        "torch could not export the network to ONNX (" + "; ".join(errors) + "); report it "
        "with the run's config.yaml"
    )


def with_metadata(proto: Any, meta: dict[str, Any]) -> Any:
    """``proto`` with the description as metadata_props: ``genreid`` (all of it, JSON) and one
    entry per preprocessing key (``input_height``, ``input_width``, ``mean``, ``std``, ...),
    for tools that read plain strings."""
    flat = {METADATA_KEY: json.dumps(meta, sort_keys=True)}
    for key, value in meta["preprocessing"].items():
        key = f"input_{key}" if key in ("height", "width") else key
        flat[key] = value if isinstance(value, str) else json.dumps(value)
    for key in ("feature_dim", "flip", "l2_normalized", "architecture", "run", "weights_sha256"):
        flat[key] = str(meta[key])
    flat["genreid_version"] = meta["genreid_version"]
    del proto.metadata_props[:]
    for key, value in flat.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "genreid"
    proto.producer_version = meta["genreid_version"]
    return proto


def verification_images(
    images: str | Path | None, data_root: str | None, batch: int
) -> tuple[list[str], str]:
    """(up to ``batch`` image paths spread over a folder, what they are): from ``images``, else
    from the run's ``data.root``; ([], why) when that has none."""
    if images is not None:
        folder, label = Path(images).expanduser(), "--images"
        if not folder.is_dir():
            raise ExportError(
                f"--images {folder} is not a folder; pass a folder of images or a dataset root"
            )
    elif not data_root:
        return [], "the run records no data.root"
    else:
        folder, label = Path(data_root).expanduser(), "the run's data.root"
        if not folder.is_dir():
            return [], f"the run's data.root {folder} is not a folder here"
    found = list_images(folder, recursive=True)
    if not found and images is not None:
        raise ExportError(
            f"--images {folder} holds no images (jpg, png, bmp, ...); pass a folder of images "
            "or a dataset root"
        )
    if not found:
        return [], f"the run's data.root {folder} holds no images"
    picks = np.unique(np.linspace(0, len(found) - 1, min(batch, len(found))).round().astype(int))
    chosen = [str(found[i]) for i in picks]
    bad = [f"{p} ({why})" for p, why in find_corrupt_images(chosen) if why]
    if bad:
        raise ExportError(
            f"{len(bad)} unreadable image(s) in {folder}: {listing(bad, 3)}; delete or replace them"
        )
    return chosen, f"{len(chosen)} images from {label} {folder}"


def verification_batch(
    encoder: Encoder, images: str | Path | None, batch: int
) -> tuple[torch.Tensor, str, bool]:
    """(normalised batch, what it is, whether it is random) to check the export on."""
    data_root = (read_yaml(Path(encoder.source) / "config.yaml").get("data") or {}).get("root")
    paths, source = verification_images(images, data_root, batch)
    if not paths:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, *encoder.size, generator=g)
        return x, f"a random batch of {batch} ({source}; pass --images DIR for real ones)", True
    records = [ImageRecord(p, -1, -1, Role.GALLERY) for p in paths]
    ds = ImageDataset(records, test_transform(encoder.size))
    return torch.stack([ds[i]["image"] for i in range(len(ds))]), source, False


def images_per_s(fn: Any, x: torch.Tensor, repeats: int = 3) -> float:
    """Images per second of ``fn`` on batch ``x`` (median of ``repeats`` after a warm-up)."""
    with torch.no_grad():
        fn(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return len(x) / max(float(np.median(times)), 1e-9)


def export_onnx(
    run: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    batch: int = 16,
    checkpoint: str = "last.pt",
    opset: int = OPSET,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Export a run's test feature to ``out`` (ONNX) and ``out`` with ``.json``, after checking
    onnxruntime against PyTorch on ``batch`` real images (or a random batch when none are
    reachable); raises ExportError above ``tolerance``."""
    if batch < 1:
        raise ExportError(f"--batch must be at least 1, got {batch}")
    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use 17 or newer")
    out = Path(out).expanduser()
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--out {out}: expected a file name ending in .onnx (e.g. model.onnx)")
    encoder = load_run_encoder(run, checkpoint, device="cpu")
    graph = encoder.graph
    assert graph is not None
    x, source, random_batch = verification_batch(encoder, images, batch)
    example = x[:2] if len(x) >= 2 else x.repeat(2, 1, 1, 1)
    proto, exporter = to_onnx(graph, example, opset)
    meta = metadata(encoder, exporter, opset)
    proto = with_metadata(proto, meta)
    blob = proto.SerializeToString()
    session = ort_session(blob)
    forward = ort_forward(session)
    with torch.no_grad():
        ref = graph(x)
        got = forward(x)
        one = forward(x[:1])
    diff = max(float((got - ref).abs().max()), float((one - ref[:1]).abs().max()))
    if not np.isfinite(diff) or diff > tolerance:
        raise ExportError(
            f"onnxruntime's features differ from PyTorch's by up to {diff:.3g} (> {tolerance:g}) "
            f"on {source}; nothing was written. Report it with the run's config.yaml"
        )
    torch_ips = images_per_s(graph, x)
    onnx_ips = images_per_s(forward, x)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    sidecar = sidecar_path(out)
    write_json_atomic({**meta, "onnx": out.name, "onnx_sha256": file_sha256(out)}, sidecar)
    return ExportReport(
        path=out, sidecar=sidecar, exporter=exporter, opset=opset,
        feature_dim=encoder.feature_dim, images=source, random_batch=random_batch, batch=len(x),
        max_abs_diff=diff, torch_images_per_s=torch_ips, onnx_images_per_s=onnx_ips,
        threads=torch.get_num_threads(),
    )  # fmt: skip
