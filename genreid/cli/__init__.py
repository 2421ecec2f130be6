"""The ``genreid`` command: one module per command group, one place that reports user errors.

Every error a user can cause is a :class:`~genreid.core.errors.GenreidError`; the group below
catches it for every command, prints ``error: <message>`` and exits with code 1. Anything else
is a bug and keeps its traceback. Command bodies import the library lazily, so that
``genreid --help`` does not import torch.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from genreid import __version__
from genreid.cli.common import fail
from genreid.core.errors import GenreidError


class ErrorReportingGroup(TyperGroup):
    """Runs a command; a GenreidError becomes ``error: ...`` on stderr and exit code 1."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GenreidError as exc:
            fail(exc)


app = typer.Typer(
    name="genreid",
    help="Person re-identification trained with GAN-generated images.",
    cls=ErrorReportingGroup,
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


from genreid.cli import cluster as _cluster  # noqa: E402
from genreid.cli import config as _config  # noqa: E402
from genreid.cli import data as _data  # noqa: E402
from genreid.cli import dgnet as _dgnet  # noqa: E402
from genreid.cli import evaluate as _evaluate  # noqa: E402
from genreid.cli import export as _export  # noqa: E402
from genreid.cli import gan as _gan  # noqa: E402
from genreid.cli import index as _index  # noqa: E402
from genreid.cli import pretrain as _pretrain  # noqa: E402
from genreid.cli import quickstart as _quickstart  # noqa: E402
from genreid.cli import slsr as _slsr  # noqa: E402
from genreid.cli import train as _train  # noqa: E402

app.add_typer(_data.app, name="data")
app.command("evaluate")(_evaluate.evaluate_command)
app.command("train")(_train.train_command)
app.command("extract")(_train.extract_command)
app.command("export")(_export.export_command)
app.command("index")(_index.index_command)
app.command("search")(_index.search_command)
app.add_typer(_gan.app, name="gan")
app.add_typer(_dgnet.app, name="dgnet")
app.add_typer(_config.app, name="config")
app.command("quickstart")(_quickstart.quickstart_command)
app.command("cluster")(_cluster.cluster_command)
app.command("slsr")(_slsr.slsr_command)
app.command("pretrain")(_pretrain.pretrain_command)


from genreid.cli import report as _report  # noqa: E402

app.command("report")(_report.report_command)

from genreid.cli import reproduce as _reproduce  # noqa: E402

app.command("reproduce")(_reproduce.reproduce_command)


def main() -> None:
    app()
