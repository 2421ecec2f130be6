"""The last job of ``genreid pretrain``: a finished training run's weights file (a backbone, or
a GAN's G and D) and its sidecar, which records how the file was made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genreid.core.checkpoint import load_checkpoint, module_state
from genreid.core.config import load_config
from genreid.core.runs import RunDir, read_results, versions
from genreid.data.synthetic.spec import render_arguments
from genreid.engine.stages import newer_than
from genreid.engine.tasks.gan import GanConfig
from genreid.models.gan import build_gan
from genreid.models.gan.pretrained import save_gan_file
from genreid.models.loading import load_run_model
from genreid.models.pretrained import save_backbone, sidecar_path


def made_by(origin: dict[str, Any], root: Path, training: dict[str, Any]) -> dict[str, Any]:
    """What a weights file's sidecar records of how it was made; ``origin`` holds the command
    and the pipeline's config, taken where the pipeline was started (a job may run elsewhere)."""
    return {
        "made_by": "genreid pretrain",
        "command": origin["command"],
        "config": origin["config"],
        "synthetic": render_arguments(root),
        "training": training,
        "versions": versions(),
    }


def export_generator(run: Path, target: Path, root: Path, origin: dict[str, Any]) -> dict:
    """``target`` (G and D of the finished GAN run) and its sidecar. With ``train.ema`` the
    file's G is the EMA generator: the one that samples and was measured."""
    gcfg = load_config(GanConfig, run / "config.yaml")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", map_location="cpu")
    G, D = build_gan(gcfg.model, gcfg.data.size)
    sampler = "G_ema" if "G_ema" in ckpt.get("modules", {}) else "G"
    G.load_state_dict(module_state(ckpt, sampler))  # the generator its measures scored
    D.load_state_dict(module_state(ckpt, "D"))
    results = read_results(run) or {}
    training = {k: results.get(k) for k in ("train_images", "iteration", "train_seconds")}
    training["G"] = "EMA of G's weights" if sampler == "G_ema" else "G as trained"
    record = {**made_by(origin, root, training), "generated": results.get("generated")}
    return save_gan_file(G, D, gcfg.model, gcfg.data.size, target, record)


def last_epoch_loss(run: Path) -> float | None:
    """The training loss of a run's last finished epoch."""
    ends = [r for r in RunDir(run, is_main=False).read_metrics() if r.get("epoch_end")]
    return ends[-1].get("loss") if ends else None


def export_backbone(run: Path, target: Path, root: Path, origin: dict[str, Any]) -> dict:
    """``target`` (the finished re-ID run's backbone) and its sidecar."""
    model = load_run_model(run, device="cpu")
    results = read_results(run) or {}
    training = {
        "identities": results.get("num_classes"),
        "images": results.get("train_images"),
        "epochs": results.get("epochs_completed"),
        "seconds": results.get("train_seconds"),
        "final_loss": last_epoch_loss(run),
    }
    spec = model.spec
    record = made_by(origin, root, training)
    return save_backbone(model.backbone, spec.backbone, spec.width, target, record)


EXPORTS = {"backbone": export_backbone, "generator": export_generator}


def weights_file(out: str | Path, product: str) -> Path:
    """OUT/backbone.pt or OUT/generator.pt."""
    return Path(out) / f"{product}.pt"


def exported(out: str | Path, product: str, run: str | Path) -> bool:
    """The weights file is there, with a sidecar written after the run's last checkpoint."""
    target = weights_file(out, product)
    checkpoint = Path(run) / "checkpoints" / "last.pt"
    return newer_than(sidecar_path(target), checkpoint) and target.is_file()
