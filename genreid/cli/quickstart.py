"""``genreid quickstart``: the whole pipeline at tiny scale on built-in synthetic pedestrians
(or on a real dataset with ``--dataset``/``--root``)."""

from __future__ import annotations

from pathlib import Path

import typer

from genreid.cli.common import ADDRESS, EXECUTOR, JOBS, OPTION_HELP, THREADS, fail, parse_options
from genreid.core.errors import GenreidError


def quickstart_command(
    out: str = typer.Option("runs/quickstart", "--out", help="Folder for everything it writes."),
    dataset: str = typer.Option(
        "synthetic", "--dataset", "-d", help="synthetic (rendered), or a dataset such as viper."
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help="The dataset's folder."),
    option: list[str] | None = typer.Option(
        None, "--option", "-o", help="Parser " + OPTION_HELP + " (split=3)"
    ),
    ids: int = typer.Option(120, "--ids", help="Synthetic identities."),
    cams: int = typer.Option(6, "--cams", help="Synthetic cameras."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    epochs: int = typer.Option(8, "--epochs", help="Re-ID training epochs (tiny recipe)."),
    gan_epochs: int = typer.Option(5, "--gan-epochs", help="DCGAN training epochs."),
    gan_iters: int = typer.Option(
        None,
        "--gan-iters",
        help="DCGAN iterations at least (more epochs if needed); default 400 on the "
        "synthetic set, 1,500 on a real one.",
    ),
    gan_config: str = typer.Option(
        "gan/dcgan_tiny_pretrained",
        "--gan-config",
        help="GAN recipe: the shipped synthetic generator fine-tuned (default), or e.g. "
        "gan/dcgan_tiny (from scratch, the papers' recipe scaled down).",
    ),
    data_only: bool = typer.Option(False, "--data-only", help="Only render and describe data."),
    jobs: int = JOBS,
    threads: int = THREADS,
    executor: str = EXECUTOR,
    address: str = ADDRESS,
) -> None:
    """The main job: data, a DCGAN, baseline vs LSRO vs FAPL-distributed re-ID, compared."""
    from genreid.engine.quickstart import run_quickstart  # lazy: keeps `genreid --help` fast
    from genreid.reporting.run_report import write_report

    try:
        run_quickstart(
            out, ids=ids, cams=cams, seed=seed, epochs=epochs, gan_epochs=gan_epochs,
            gan_iters=gan_iters, data_only=data_only, dataset=dataset, root=root,
            options=parse_options(option), gan_config=gan_config, jobs=jobs, threads=threads,
            executor=executor, address=address, report=write_report,
        )  # fmt: skip
    except GenreidError as exc:
        typer.echo("Run the same command again to continue where it stopped.", err=True)
        fail(exc)
