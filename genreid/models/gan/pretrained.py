"""Generator and discriminator weight files: initialise a GAN from synthetic pedestrians.

A file holds ``{"format": "genreid-gan", "version": 1, "arch", "model": {...}, "size": [H, W],
"G": state dict, "D": state dict}`` (loadable with ``weights_only=True``), with a JSON sidecar
recording how it was made and its sha256, like the re-ID backbones of
:mod:`genreid.models.pretrained`. ``model.pretrained`` of a GAN config takes ``synthetic``
(the file genreid ships for the arch, width and size), such a file, a GAN run folder or its
checkpoint; ``train.freeze_d`` then keeps D's first blocks fixed (FreezeD, Mo et al. 2020).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genreid.core.checkpoint import atomic_save, module_state
from genreid.core.files import write_json_atomic
from genreid.models.gan.base import GanModelConfig
from genreid.models.pretrained import (
    WEIGHTS_DIR,
    PretrainedError,
    file_sha256,
    load_weights,
    sidecar_path,
    verify_sidecar,
)

FORMAT = "genreid-gan"
VERSION = 1


def shipped_gan_name(arch: str, width: int, size: tuple[int, int]) -> str:
    return f"synthetic_{arch}_w{width}_{size[0]}x{size[1]}.pt"


def shipped_gans() -> list[str]:
    """The generator files genreid ships (names)."""
    return sorted(p.name for p in WEIGHTS_DIR.glob("synthetic_*_w*_*x*.pt"))


def save_gan_file(
    G: nn.Module,
    D: nn.Module,
    model: GanModelConfig,
    size: tuple[int, int],
    path: str | Path,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Write G's and D's weights with the model section and size, and the sidecar."""
    header = {"format": FORMAT, "version": VERSION, "arch": model.arch,
              "model": dataclasses.asdict(model), "size": [int(size[0]), int(size[1])]}  # fmt: skip
    weights = {k: {n: t.detach().cpu().clone() for n, t in m.state_dict().items()}
               for k, m in (("G", G), ("D", D))}  # fmt: skip
    atomic_save({**header, **weights}, path)
    side = {**header, "file": Path(path).name, "sha256": file_sha256(path), **record}
    write_json_atomic(side, sidecar_path(path))
    return side


def _source_file(source: str, model: GanModelConfig, size: tuple[int, int]) -> Path:
    if source.lower() == "synthetic":
        path = WEIGHTS_DIR / shipped_gan_name(model.arch, model.width, size)
        if not path.is_file():
            raise PretrainedError(
                f"model.pretrained: synthetic: genreid ships no {model.arch} at width "
                f"{model.width} for {size[0]}x{size[1]} images (it ships: "
                f"{', '.join(shipped_gans()) or 'none'}); match one of them, or give a GAN run "
                "folder or weights file"
            )
        return path
    p = Path(source).expanduser()
    if p.is_dir():
        p = p / "checkpoints" / "last.pt"
    if not p.is_file():
        raise PretrainedError(
            f"model.pretrained: {source} does not exist; give synthetic, a GAN run folder "
            "(genreid gan train --out) or a weights file"
        )
    return p


def read_gan_weights(
    source: str, model: GanModelConfig, size: tuple[int, int]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    """(G state, D state, where they came from) for a ``model.pretrained`` value."""
    path = _source_file(source, model, size)
    verify_sidecar(path)
    obj = load_weights(path, "a genreid GAN weights file or GAN training checkpoint")
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj.get("arch") != model.arch or list(obj.get("size", [])) != list(size):
            raise PretrainedError(
                f"model.pretrained: {path} holds a {obj.get('arch')} for {obj.get('size')} "
                f"images, the config a {model.arch} for {list(size)}"
            )
        return obj["G"], obj["D"], str(path)
    try:
        return module_state(obj, "G"), module_state(obj, "D"), str(path)
    except Exception:
        raise PretrainedError(
            f"model.pretrained: {path} is neither a genreid GAN weights file nor a GAN "
            "training checkpoint"
        ) from None


def load_pretrained_gan(
    G: nn.Module, D: nn.Module, source: str, model: GanModelConfig, size: tuple[int, int]
) -> str:
    """Load ``source`` into G and D (shapes must match exactly); returns where it came from."""
    g_state, d_state, where = read_gan_weights(source, model, size)
    for name, net, state in (("G", G, g_state), ("D", D, d_state)):
        own = net.state_dict()
        bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
        if bad or set(state) - set(own):
            raise PretrainedError(
                f"model.pretrained: {where}'s {name} does not fit this model.* (e.g. "
                f"{(bad or sorted(set(state) - set(own)))[0]}); use the width, depth, z_dim "
                "and size it was trained with"
            )
        net.load_state_dict(state)
    return where


def freeze_lower(D: nn.Module, blocks: int) -> None:
    """FreezeD: the parameters of D's first ``blocks`` blocks stop training."""
    lower = D.lower_blocks()  # type: ignore[operator]
    if blocks > len(lower):
        raise PretrainedError(f"train.freeze_d={blocks}: D has only {len(lower)} blocks")
    for block in lower[:blocks]:
        block.requires_grad_(False)
