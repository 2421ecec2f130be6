"""The ``genreid`` command line: data, evaluation, training and generation subcommands."""

from __future__ import annotations

import typer

from genreid import __version__

app = typer.Typer(
    name="genreid",
    help="Person re-identification trained with GAN-generated images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"genreid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Person re-identification trained with GAN-generated images."""


# --- data -------------------------------------------------------------------------------
from genreid.data.cli import data_app  # noqa: E402

app.add_typer(data_app, name="data")

# --- evaluate ---------------------------------------------------------------------------
from genreid.eval.cli import evaluate_command  # noqa: E402

app.command("evaluate")(evaluate_command)


# --- train / extract -------------------------------------------------------------------
from genreid.engine.train_cli import extract_command, train_command  # noqa: E402

app.command("train")(train_command)
app.command("extract")(extract_command)


# --- gan --------------------------------------------------------------------------------
from genreid.engine.gan_cli import gan_app  # noqa: E402

app.add_typer(gan_app, name="gan")


# --- quickstart -------------------------------------------------------------------------
@app.command("quickstart")
def quickstart(
    out: str = typer.Option("runs/quickstart", "--out", help="Folder for everything it writes."),
    ids: int = typer.Option(120, "--ids", help="Synthetic identities."),
    cams: int = typer.Option(6, "--cams", help="Synthetic cameras."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    epochs: int = typer.Option(8, "--epochs", help="Re-ID training epochs (tiny recipe)."),
    gan_epochs: int = typer.Option(5, "--gan-epochs", help="DCGAN training epochs."),
    data_only: bool = typer.Option(False, "--data-only", help="Only render and describe data."),
) -> None:
    """The main job on built-in data: synthetic pedestrians, a DCGAN, baseline vs LSRO re-ID."""
    from genreid.engine.gan_trainer import TrainingStopped
    from genreid.engine.trainer import TrainingError
    from genreid.quickstart import run_quickstart

    try:
        run_quickstart(
            out, ids=ids, cams=cams, seed=seed, epochs=epochs, gan_epochs=gan_epochs,
            data_only=data_only,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, TrainingError, TrainingStopped) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        typer.echo("Run the same command again to continue where it stopped.", err=True)
        raise typer.Exit(code=1) from None


def main() -> None:
    app()


if __name__ == "__main__":
    main()
