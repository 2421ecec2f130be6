"""``genreid report``: runs compared in one self-contained HTML page (no server, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders (each with config.yaml): `genreid train`, `gan train`, `dgnet "
            "train` runs or pipeline folders; sections a run cannot fill are left out with a note.",
            metavar="RUN",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="HTML file to write; a folder (or a name without .html) gets FOLDER/report.html.",
        ),
    ] = Path("report.html"),
    title: Annotated[str, typer.Option("--title", help="Page title.")] = "",
    only_diff: Annotated[
        bool,
        typer.Option("--only-diff", help="Config and env: list only the keys whose values differ."),
    ] = False,
    samples: Annotated[
        int, typer.Option("--samples", min=0, help="Generated images shown per run.")
    ] = 16,
    hardest: Annotated[
        int,
        typer.Option(
            "--hardest",
            min=0,
            help="Hardest queries shown per run (from its features file), worst first rank of "
            "a true match, then lowest AP.",
        ),
    ] = 6,
) -> None:
    """Compare runs: configs side by side, training curves, CMC, results, images, hard queries."""
    from genreid.reporting.run_report import write_report  # lazy: keeps `genreid --help` fast

    path = write_report(runs, out, title or None, only_diff, samples, hardest)
    typer.echo(f"wrote {path}")
