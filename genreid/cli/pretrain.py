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
    t = side["training"]
    typer.echo(
        f"{out / 'backbone.pt'}: {side['backbone']} at width {side['width']}, "
        f"{side['parameters']:,} parameters, trained on {t['identities']} identities "
        f"({t['images']} images, {t['epochs']} epochs); sha256 {side['sha256'][:16]}...; use "
        f"it with model.pretrained={out / 'backbone.pt'}"
    )
