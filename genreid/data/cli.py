"""``genreid data``: dataset statistics, layout checks and the synthetic pedestrian dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
import yaml

from genreid.cli_errors import fail, parse_size
from genreid.data.errors import DatasetError

data_app = typer.Typer(help="Inspect, check and synthesise datasets.", no_args_is_help=True)

DATASET_HELP = "market1501, dukemtmcreid, cuhk03, msmt17, viper, prid2011, cub200 or folder."


def parse_options(items: list[str] | None) -> dict[str, object]:
    """``key=value`` parser options, values read as YAML scalars (``split=3``)."""
    out: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--option")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _load(dataset: str, root: str, options: list[str] | None):
    from genreid.data.datasets import load_dataset

    try:
        return load_dataset(dataset, root, **parse_options(options))
    except (DatasetError, ValueError) as exc:
        fail(str(exc))
    except TypeError as exc:
        fail(f"bad --option for {dataset}: {exc}")


def print_stats(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    title = f"{stats['dataset']} at {stats['root']}"
    if "num_splits" in stats:
        title += f" (split {stats['split']} of {stats['num_splits']})"
    table = Table(title=title)
    for col in ("split", "images", "identities", "cameras", "img/id min", "median", "max"):
        table.add_column(col, justify="right" if col != "split" else "left")

    def row(name: str, s: dict) -> list[str]:
        ipi = s.get("images_per_identity", {})
        return [
            name,
            f"{s['images']:,}",
            f"{s['identities']:,}",
            str(s["cameras"]),
            str(ipi.get("min", "-")),
            f"{ipi.get('median', '-')}",
            str(ipi.get("max", "-")),
        ]

    for name, s in stats["splits"].items():
        table.add_row(*row(name, s))
    table.add_row(*row("total", stats), style="bold")
    Console().print(table)


@data_app.command("info")
def info(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    root: str = typer.Option(..., "--root", "-r", help="The dataset's top folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object instead of a table."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the images-per-identity histogram."
    ),
    option: list[str] | None = typer.Option(
        None, "--option", "-o", help="Parser option key=value (split=3, variant=labeled, ...)."
    ),
) -> None:
    """Images, identities and cameras per split and in total; images per identity."""
    from genreid.data.records import dataset_stats

    ds = _load(dataset, root, option)
    stats = dataset_stats(ds)
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
    else:
        print_stats(stats)
    if plot is not None:
        from genreid.viz.dataset import plot_images_per_identity

        plot_images_per_identity(ds, plot)
        if not as_json:
            typer.echo(f"wrote {plot}")


@data_app.command("check")
def check(
    dataset: str = typer.Option(..., "--dataset", "-d", help=DATASET_HELP),
    root: str = typer.Option(..., "--root", "-r", help="The dataset's top folder."),
    option: list[str] | None = typer.Option(
        None, "--option", "-o", help="Parser option key=value."
    ),
) -> None:
    """Check the layout and decode every image; name what is missing, misnamed or corrupt."""
    from tqdm import tqdm

    from genreid.data.io import find_corrupt_images

    ds = _load(dataset, root, option)
    paths = sorted({r.path for recs in ds.splits().values() for r in recs})
    bad = []
    progress = tqdm(
        find_corrupt_images(paths),
        total=len(paths),
        desc="decoding",
        unit="img",
        disable=not sys.stderr.isatty(),
    )
    for path, problem in progress:
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


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the dataset into."),
    ids: int = typer.Option(200, "--ids", min=4, help="Number of identities (half train)."),
    cams: int = typer.Option(6, "--cams", min=2, max=9, help="Number of cameras."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; same arguments, same bytes."),
    size: str = typer.Option("128x64", "--size", help="Image size HxW."),
    preview: Path | None = typer.Option(None, "--preview", help="Write a contact sheet PNG."),
    workers: int = typer.Option(0, "--workers", help="Processes (0: all cores)."),
) -> None:
    """Render the procedural synthetic pedestrian dataset in the Market-1501 layout."""
    from genreid.data.synthetic import render_dataset, write_preview

    try:
        stats = render_dataset(
            out, ids=ids, cams=cams, seed=seed, size=parse_size(size, minimum=16), workers=workers
        )
        if preview is not None:
            write_preview(out, preview)
    except (ValueError, FileExistsError, NotADirectoryError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}")
    typer.echo(json.dumps(stats, indent=2))
    if preview is not None:
        typer.echo(f"wrote {preview}")
