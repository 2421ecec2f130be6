"""What every `genreid` subcommand shares: one-line errors and the HxW size argument."""

from __future__ import annotations

import typer


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
