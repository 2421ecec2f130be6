"""Backbone-only weight files: what ``genreid pretrain`` writes and ``model.pretrained`` reads.

A file holds ``{"format": "genreid-backbone", "version": 1, "backbone": name, "width": w,
"state_dict": {...}}`` (loadable with ``weights_only=True``). Beside it, a JSON sidecar of the
same name records how it was made (config, synthetic set, command) and the file's sha256, so
a corrupt or swapped file is caught before it initialises a model. ``model.pretrained:
synthetic`` reads the file genreid ships for the model's backbone and width.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genreid.core.checkpoint import atomic_save
from genreid.core.errors import GenreidError
from genreid.core.files import write_json_atomic

FORMAT = "genreid-backbone"
VERSION = 1
WEIGHTS_DIR = Path(__file__).parent / "weights"


class PretrainedError(GenreidError, ValueError):
    """Pretrained weights that are missing, corrupt or do not fit the backbone."""


def shipped_name(backbone: str, width: int) -> str:
    """File name of genreid's synthetic-pedestrian weights for a backbone at a width."""
    return f"synthetic_{backbone}_w{width}.pt"


def shipped_weights() -> list[str]:
    """``backbone (width w)`` of every backbone file shipped with the package (not generators)."""
    out = []
    for p in sorted(WEIGHTS_DIR.glob("synthetic_*.pt")):
        header = json.loads(p.with_suffix(".json").read_text())
        if "backbone" in header:
            out.append(f"{header['backbone']} (width {header['width']})")
    return out


def shipped_path(backbone: str, width: int) -> Path:
    """The shipped weights for ``backbone`` at ``width``; a clear error when there are none."""
    path = WEIGHTS_DIR / shipped_name(backbone, width)
    if not path.is_file():
        have = ", ".join(shipped_weights()) or "none"
        raise PretrainedError(
            f"model.pretrained: synthetic: genreid ships synthetic-pedestrian weights for "
            f"{have}, not for {backbone} at width {width}. Use a tiny arch (model.arch="
            f"ide_tiny), train your own (`genreid pretrain -c pretrain_paper --out RUN`, then "
            f"model.pretrained=RUN/backbone.pt) or model.pretrained=imagenet"
        )
    return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_backbone(
    backbone: nn.Module, name: str, width: int, path: str | Path, record: dict[str, Any]
) -> dict[str, Any]:
    """Write the backbone's weights and the sidecar (``record`` + format, shape, sha256)."""
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    obj = {"format": FORMAT, "version": VERSION, "backbone": name, "width": int(width)}
    atomic_save({**obj, "state_dict": state}, path)
    sidecar = {
        **obj,
        "file": Path(path).name,
        "sha256": file_sha256(path),
        "parameters": int(sum(v.numel() for v in state.values() if v.is_floating_point())),
        **record,
    }
    write_json_atomic(sidecar, sidecar_path(path))
    return sidecar


def is_backbone_file(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_weights(path: Path, expected: str) -> Any:
    """``torch.load`` with ``weights_only=True``; an unreadable file is a PretrainedError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PretrainedError(
            f"model.pretrained: cannot load {path} ({type(exc).__name__}: {exc}); expected "
            f"{expected}"
        ) from None


def verify_sidecar(path: Path) -> bool:
    """Check a weights file against the sha256 in its sidecar; False when it has none."""
    side = sidecar_path(path)
    if not side.is_file():
        return False
    want = json.loads(side.read_text()).get("sha256")
    if want and file_sha256(path) != want:
        raise PretrainedError(
            f"model.pretrained: {path} does not match the sha256 in {side.name} (the file is "
            "corrupt or was replaced); restore it, or write it again with the command "
            "recorded in that file"
        )
    return True


def split_backbone(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, header) of a loaded backbone file."""
    if not is_backbone_file(obj) or not isinstance(obj.get("state_dict"), dict):
        raise PretrainedError(f"model.pretrained: {path} is not a genreid backbone file")
    return obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}


def read_backbone_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, header) of a backbone file, its sha256 checked against the sidecar."""
    p = Path(path)
    verify_sidecar(p)
    return split_backbone(load_weights(p, "a backbone file written by `genreid pretrain`"), p)


def check_fits(header: dict[str, Any], backbone: str, width: int, source: str) -> None:
    """A clear error when a backbone file was made for another backbone or width."""
    if (header.get("backbone"), int(header.get("width", -1))) != (backbone, width):
        raise PretrainedError(
            f"model.pretrained: {source} holds a {header.get('backbone')} at width "
            f"{header.get('width')}, but the model's backbone is {backbone} at width {width}; "
            "choose the arch it was trained for, or pretrain one for this backbone"
        )
