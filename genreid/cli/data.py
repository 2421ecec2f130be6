"""``genreid data``: dataset statistics, layout checks and the synthetic pedestrian dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from genreid.cli.common import OPTION_HELP, parse_options, parse_size

app = typer.Typer(help="Inspect, check and synthesise datasets.", no_args_is_help=True)

DATASET_HELP = "market1501, dukemtmcreid, cuhk03, msmt17, viper, prid2011, cub200 or folder."


def _load(dataset: str, root: str, options: list[str] | None):
    from genreid.data.datasets import load_dataset  # lazy: keeps `genreid --help` fast

    return load_dataset(dataset, root, **parse_options(options))


@app.command("info")
def info(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    root: str = typer.Option(..., "--root", "-r", help="The dataset's top folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the images-per-identity histogram."
    ),
    option: list[str] | None = typer.Option(
        None, "--option", "-o", help="Parser " + OPTION_HELP + " (split=3, variant=labeled)"
    ),
) -> None:
    """Images, identities and cameras per split and in total; images per identity."""
    from rich.console import Console  # lazy: keeps `genreid --help` fast

    from genreid.data.stats import dataset_stats, stats_table
    from genreid.viz.dataset import plot_images_per_identity

    ds = _load(dataset, root, option)
    stats = dataset_stats(ds)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
    else:
        Console().print(stats_table(stats))
    if plot is not None:
        plot_images_per_identity(ds, plot)
        if not as_json:
            typer.echo(f"wrote {plot}")


@app.command("check")
def check(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    root: str = typer.Option(..., "--root", "-r", help="The dataset's top folder."),
    option: list[str] | None = typer.Option(None, "--option", "-o", help="Parser " + OPTION_HELP),
) -> None:
    """Check the layout and decode every image; name what is missing, misnamed or corrupt."""
    from genreid.core.progress import Progress  # lazy: keeps `genreid --help` fast
    from genreid.data.io import find_corrupt_images

    ds = _load(dataset, root, option)
    paths = sorted({r.path for recs in ds.splits().values() for r in recs})
    bad = []
    with Progress(len(paths), desc="decoding", unit="img") as progress:
        for path, problem in find_corrupt_images(paths):
            progress.update(1)
            if problem is not None:
                bad.append((path, problem))
    if bad:
        typer.secho(f"{len(bad)} of {len(paths)} images cannot be read:", fg="red", err=True)
        for path, problem in bad:
            typer.echo(f"  {path}: {problem}", err=True)
        typer.echo("Re-extract or delete these files, then run the check again.", err=True)
        raise typer.Exit(code=1)
    typer.secho(
        f"ok: {dataset} at {root}: {len(paths):,} images, layout and files fine.", fg="green"
    )


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset into."),
    ids: int = typer.Option(200, "--ids", min=4, help="Number of identities (half train)."),
    cams: int = typer.Option(6, "--cams", min=2, max=9, help="Number of cameras."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; same arguments, same bytes."),
    size: str = typer.Option("128x64", "--size", help="Image size HxW."),
    preview: Path | None = typer.Option(None, "--preview", help="Write a contact sheet PNG."),
    workers: int = typer.Option(0, "--workers", help="Processes (0: all cores)."),
    fresh_noise: bool = typer.Option(False, "--fresh-noise", help="New sensor noise per image."),
    three_quarter: bool = typer.Option(
        False, "--three-quarter", help="Turn half the front/back views towards a side."
    ),
    texture: bool = typer.Option(False, "--texture", help="Fabric grain on garments."),
    lighting: bool = typer.Option(
        False, "--lighting", help="A light gradient and, sometimes, a cast shadow per image."
    ),
    occlusion: float = typer.Option(
        0.18, "--occlusion", min=0.0, max=1.0, help="Share of identity images with an occluder."
    ),
    camera: float = typer.Option(
        1.0,
        "--camera",
        min=0.0,
        max=3.0,
        help="How far cameras differ in exposure, colour cast, gamma, saturation (x spread).",
    ),
    images_per_id: float = typer.Option(
        17.0, "--images-per-id", min=2.0, max=200.0, help="Mean images of an identity."
    ),
    width: float = typer.Option(
        1.0, "--width", min=0.5, max=2.0, help="Body width factor (x U(0.9, 1.1) per image)."
    ),
) -> None:
    """Render the procedural synthetic pedestrian dataset in the Market-1501 layout.

    The style flags add renderer features measured for pretraining (docs/RESULTS.md); without
    them the bytes are those of the original renderer.
    """
    from genreid.data.synthetic import (  # lazy: fast --help
        RenderStyle,
        render_dataset,
        write_preview,
    )

    style = RenderStyle(
        fresh_noise=fresh_noise, three_quarter=three_quarter, texture=texture,
        lighting=lighting, occlusion=occlusion, camera=camera, width=width,
    )  # fmt: skip
    stats = render_dataset(
        out, ids=ids, cams=cams, seed=seed, size=parse_size(size, minimum=16), workers=workers,
        style=style, images_per_id=images_per_id,
    )  # fmt: skip
    if preview is not None:
        write_preview(out, preview)
    typer.echo(json.dumps(stats, indent=2))
    if preview is not None:
        typer.echo(f"wrote {preview}")
