"""``genreid slsr``: SLSR's whole pipeline (baseline, k-means, a GAN per cluster, training
with SLSR labels and the comparisons, evaluation, a table over seeds)."""

from __future__ import annotations

from pathlib import Path

import typer


def slsr_command(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
    config: str = typer.Option(
        "pipelines/slsr_tiny",
        "--config",
        "-c",
        help="A pipeline config (`genreid config list`: task slsr) or a YAML file.",
    ),
    out: Path = typer.Option(..., "--out", help="Pipeline folder (run again to continue it)."),
) -> None:
    """Run the SLSR pipeline; every finished stage is skipped, an interrupted one resumed."""
    from genreid.core.config import load_config  # lazy: keeps `genreid --help` fast
    from genreid.engine.slsr import SlsrConfig, run_slsr

    cfg = load_config(SlsrConfig, config, list(overrides or []))
    summary = run_slsr(cfg, out)
    methods = ", ".join(summary["methods"])
    typer.echo(f"{methods}: table {out / 'summary.md'}, figure {out / 'comparison.png'}")
