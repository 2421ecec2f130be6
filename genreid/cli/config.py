"""``genreid config``: the configs shipped with the package, by name."""

from __future__ import annotations

import typer

app = typer.Typer(help="List and print the shipped configs.", no_args_is_help=True)


@app.command("list")
def list_configs() -> None:
    """Names of the shipped configs; pass one to --config (e.g. --config tiny)."""
    from genreid.core.config import find_config, read_config_dict, shipped_configs  # lazy

    names = shipped_configs()
    width = max(map(len, names)) + 1
    tasks = {name: str(read_config_dict(name).get("task", "")) for name in names}
    task_width = max(map(len, tasks.values()))
    for name in names:
        first = next(
            (line[1:].strip() for line in find_config(name).read_text().splitlines()
             if line.startswith("#")),
            "",
        )  # fmt: skip
        typer.echo(f"{name:{width}s} {tasks[name]:{task_width}s} {first}")


@app.command("show")
def show(
    name: str = typer.Argument(..., help="A shipped config name (or a YAML file)."),
    resolved: bool = typer.Option(
        False, "--resolved", help="Print every key with its value (base and defaults filled in)."
    ),
) -> None:
    """Print a config: the file as shipped, or every key with --resolved."""
    import yaml  # lazy: keeps `genreid --help` fast

    from genreid.core.config import find_config, to_dict
    from genreid.engine.tasks import load_any_config

    path = find_config(name)
    if not resolved:
        typer.echo(f"# {path}")
        typer.echo(path.read_text().rstrip())
        return
    _, cfg = load_any_config(path)
    typer.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip())
