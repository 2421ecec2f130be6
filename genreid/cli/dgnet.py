"""``genreid dgnet``: images from a trained DG-Net run (swap grid, interpolation, folders)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="DG-Net: swap appearance and structure codes of a trained run's images; measure how "
    "well it swaps.",
    no_args_is_help=True,
)


@app.command("swap")
def swap(
    more: list[Path] = typer.Argument(
        None, help="More images (so that --images A.jpg B.jpg C.jpg works).", show_default=False
    ),
    run: Path = typer.Option(..., "--run", help="A DG-Net training run folder (task dgnet)."),
    images: list[Path] = typer.Option(
        None, "--images", help="Images: --images A.jpg B.jpg ... (rows/columns in this order)."
    ),
    out: Path = typer.Option(None, "--out", help="PNG to write: the swap grid (Fig. 1)."),
    interpolate: bool = typer.Option(
        False, "--interpolate", help="With two images: appearance interpolation (Fig. 5)."
    ),
    steps: int = typer.Option(8, "--steps", help="Frames of the interpolation."),
    to_folder: Path = typer.Option(
        None,
        "--to-folder",
        help="Write every swap (or --num training pairs) as JPEGs with manifest.csv, for "
        "`genreid gan metrics` and data.generated.",
    ),
    num: int = typer.Option(
        None, "--num", "-n", help="With --to-folder and no --images: random training pairs."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --num pairs."),
    checkpoint: str = typer.Option("last.pt", "--checkpoint", help="File in RUN/checkpoints."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
) -> None:
    """Swap grid (rows keep an appearance, columns a structure), --interpolate strip, or a
    --to-folder of swapped images with manifest.csv."""
    from genreid.engine.dgnet_swap import (  # lazy: keeps `genreid --help` fast
        SwapError,
        interpolation,
        open_run,
        swap_grid,
        swap_to_folder,
    )

    paths = [*(images or []), *(more or [])]
    if out is None and to_folder is None:
        raise SwapError("give --out FILE.png (grid or --interpolate strip) and/or --to-folder DIR")
    model = open_run(run, checkpoint, device)
    if out is not None:
        if interpolate:
            path = interpolation(model, paths, out, steps)
        else:
            path = swap_grid(model, paths, out, batch_size)
        typer.echo(f"wrote {path}")
    if to_folder is not None:
        manifest = swap_to_folder(model, to_folder, paths, num, seed, batch_size)
        rows = len(manifest.read_text().splitlines()) - 1
        typer.echo(f"wrote {rows} images and {manifest}")


@app.command("measure")
def measure(
    run: Path = typer.Option(..., "--run", help="A DG-Net training run folder (task dgnet)."),
    judge: Path = typer.Option(
        None, "--judge", help="A re-ID run that judges identities (default: the run's teacher)."
    ),
    num: int = typer.Option(256, "--num", "-n", help="Cross-identity training pairs swapped."),
    seed: int = typer.Option(0, "--seed", help="Seed of the pairs and KID's subsets."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    out: Path = typer.Option(None, "--out", help="Also write the results to this JSON file."),
) -> None:
    """Appearance-transfer rate of a run's swaps (share judged to be the appearance donor's
    identity, and the structure donor's) and their Frechet/KID/precision/recall."""
    from genreid.core.files import write_json_atomic  # lazy: keeps `genreid --help` fast
    from genreid.engine.dgnet_quality import measure_run  # lazy: as above

    result = measure_run(run, judge, num, seed, device)
    t = result["transfer"]
    typer.echo(
        f"{t['swaps']} swaps judged by {t['judge']}: appearance donor's identity "
        f"{100 * t['appearance']:.1f} %, structure donor's {100 * t['structure']:.1f} %",
        err=True,
    )
    if out:
        write_json_atomic(result, out)
    typer.echo(json.dumps(result, indent=2))
