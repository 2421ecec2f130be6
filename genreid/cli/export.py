"""``genreid export``: a trained run's test feature as an ONNX model, verified on real images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Format(StrEnum):
    """Model file formats ``genreid export`` writes."""

    onnx = "onnx"


def export_command(
    run: Annotated[Path, typer.Option("--run", help="A training run folder (re-ID or DG-Net).")],
    out: Annotated[
        Path, typer.Option("--out", help="ONNX file to write; its description goes to .json.")
    ],
    fmt: Annotated[Format, typer.Option("--format", help="Model format.")] = Format.onnx,
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            help="Folder or dataset root whose images check the export (default: the run's "
            "data.root; a random batch when neither has images).",
        ),
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Images in the check and the speed test.")
    ] = 16,
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="File in RUN/checkpoints.")
    ] = "last.pt",
) -> None:
    """Export a run's test feature (what `genreid extract` stores) to ONNX, checked.

    The graph takes normalised B x 3 x H x W images and returns flip-averaged, L2-normalised
    features (dynamic batch); the export fails if onnxruntime differs from PyTorch by more
    than 1e-4 on real images. The preprocessing is in the model's metadata and OUT.json.
    """
    from genreid.eval.deploy.export import export_onnx  # lazy: keeps `genreid --help` fast

    report = export_onnx(run, out, images, batch, checkpoint)
    if report.random_batch:
        typer.echo(f"warning: no real images reachable; checked on {report.images}", err=True)
    typer.echo(
        f"exported {run} to {report.path} with {report.exporter} (opset {report.opset}): "
        f"input images B x 3 x H x W, output features B x {report.feature_dim}"
    )
    typer.echo(
        f"checked on {report.images}: largest absolute feature difference "
        f"{report.max_abs_diff:.2e} (limit 1e-04)"
    )
    typer.echo(
        f"CPU speed on that batch of {report.batch} ({report.threads} thread(s)): PyTorch "
        f"{report.torch_images_per_s:.0f} images/s, onnxruntime {report.onnx_images_per_s:.0f} "
        "images/s"
    )
    typer.echo(f"wrote {report.path} and {report.sidecar}")
