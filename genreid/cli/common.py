"""What every command shares: one-line errors, ``HxW`` sizes, ``key=value`` options."""

from __future__ import annotations

import typer
import yaml

OPTION_HELP = "key=value option (repeatable)."

# how a plan's jobs run: the options `genreid reproduce` and `genreid quickstart` share
JOBS = typer.Option(1, "--jobs", "-j", help="Jobs side by side, cores/J threads each.")
THREADS = typer.Option(None, "--threads", help="Threads per job (default cores/J).")
EXECUTOR = typer.Option(
    "local", "--executor", help="local (a pool of --jobs processes) or dask (a cluster's)."
)
ADDRESS = typer.Option(
    "", "--address", help="The Dask scheduler, tcp://HOST:PORT (with --executor dask)."
)


def fail(message: object) -> None:
    """Print ``error: message`` to stderr without a traceback and exit with code 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def parse_size(text: str | None, minimum: int = 1) -> tuple[int, int] | None:
    """``128x64`` -> (128, 64), height first like the papers; None stays None."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 128x64, got {text!r}") from None
    if h < minimum or w < minimum:
        raise typer.BadParameter(f"size {text} is too small; use at least {minimum}x{minimum}")
    return h, w


def parse_options(items: list[str] | None) -> dict[str, object]:
    """``key=value`` parser options, values read as YAML scalars (``split=3``)."""
    out: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--option")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
