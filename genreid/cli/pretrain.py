"""``genreid pretrain``: a backbone trained on many synthetic pedestrians (no download), for
``model.pretrained=RUN/backbone.pt``; genreid ships the tiny one as ``synthetic``."""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain_command(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
    config: str = typer.Option(
        "pipelines/pretrain_tiny",
        "--config",
        "-c",
        help="A pretraining config (`genreid config list`: task pretrain) or a YAML file.",
    ),
    out: Path = typer.Option(..., "--out", help="Run folder (run again to continue it)."),
) -> None:
    """Render synthetic pedestrians, train on all of them, write RUN/backbone.pt (+ .json); a
    GAN recipe (-c pretrain_gan_tiny) writes RUN/generator.pt."""
    from genreid.core.config import load_config  # lazy: keeps `genreid --help` fast
    from genreid.engine.pretrain import PretrainConfig, run_pretrain

    cfg = load_config(PretrainConfig, config, list(overrides or []))
    side = run_pretrain(cfg, out)
    typer.echo(summary_line(side, out))


def summary_line(side: dict, out: Path) -> str:
    """What the finished pretraining wrote and how to use it (backbone or generator)."""
    t, digest = side["training"], side["sha256"][:16]
    if side.get("format") == "genreid-gan":
        path, g = out / "generator.pt", side.get("generated") or {}
        size = "x".join(str(v) for v in side["size"])
        scores = ""
        if "frechet" in g:
            scores = (f"; Frechet {g['frechet']:.3f}, precision {g['precision']:.2f}, "
                      f"recall {g['recall']:.2f} against {g['against']}")  # fmt: skip
        return (
            f"{path}: {side['arch']} at width {side['model']['width']} for {size} images, "
            f"{t['iteration']} iterations on {t['train_images']} images{scores}; sha256 "
            f"{digest}...; use it with model.pretrained={path}"
        )
    path = out / "backbone.pt"
    return (
        f"{path}: {side['backbone']} at width {side['width']}, {side['parameters']:,} "
        f"parameters, trained on {t['identities']} identities ({t['images']} images, "
        f"{t['epochs']} epochs); sha256 {digest}...; use it with model.pretrained={path}"
    )
