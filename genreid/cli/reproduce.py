"""``genreid reproduce``: a paper table (METHODS section 8) as rows x columns of cells, each a
pipeline of GAN, samples, re-ID training and evaluation per split and seed, written in the
paper's layout with the paper's numbers beside ours and a paired test against the baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from genreid.cli.common import ADDRESS, EXECUTOR, JOBS, THREADS, parse_options


def _list() -> None:
    from genreid.engine.reproduce.pipeline import list_tables  # lazy: keeps --help fast

    rows = list_tables()
    width = max(len(r[0]) for r in rows) + 2
    for name, title, sweeps, default in rows:
        typer.echo(f"{name:{width}s}{title}")
        typer.echo(f"{'':{width}s}sweeps: {sweeps}")
        typer.echo(f"{'':{width}s}default: {default}")


def reproduce_command(
    table: str = typer.Argument(None, help="A table (`--list`), e.g. lsro2, fapl3, dgnet3."),
    list_tables: bool = typer.Option(False, "--list", help="Name every table and exit."),
    scale: str = typer.Option(None, "--scale", help="tiny (CPU) or paper (GPU recipes)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset (default: the table's)."),
    root: Path = typer.Option(None, "--root", "-r", help="Dataset folder."),
    out: Path = typer.Option(None, "--out", help="Table folder (run again to continue it)."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per split."),
    splits: int = typer.Option(None, "--splits", help="First N splits (VIPeR/PRID; default all)."),
    jobs: int = JOBS,
    threads: int = THREADS,
    executor: str = EXECUTOR,
    address: str = ADDRESS,
    option: list[str] = typer.Option(None, "--option", "-o", help="Dataset option key=value."),
    override: list[str] = typer.Option(None, "--override", help="key=value for every re-ID run."),
    gan_override: list[str] = typer.Option(None, "--gan-override", help="key=value, every GAN."),
    dgnet_override: list[str] = typer.Option(
        None, "--dgnet-override", help="key=value for every DG-Net run."
    ),
    set_choice: list[str] = typer.Option(
        None, "--set", help="NAME=VALUE: a choice of the table (see choices.json)."
    ),
    tune: bool = typer.Option(
        False, "--tune", help="Choose the table's tunable values on 20% of the training ids."
    ),
    validation: float = typer.Option(
        0.0, "--validation", help="Evaluate on this share of training ids, not the test ids."
    ),
    unlabeled_dataset: str = typer.Option(
        "", "--unlabeled-dataset", help="Dataset of real unlabeled images (LSRO Table 4)."
    ),
    unlabeled_root: Path = typer.Option(None, "--unlabeled-root", help="Its folder."),
    rows: str = typer.Option(
        "",
        "--rows",
        help="Only these rows, comma-separated (and the rows they are tested "
        "against); run again without it to fill in the rest.",
    ),
    rerank: bool = typer.Option(
        False, "--rerank", help="Also the table with k-reciprocal re-ranking (same runs)."
    ),
    plan: bool = typer.Option(False, "--plan", help="Print the jobs it would run and exit."),
    report: bool = typer.Option(
        False, "--report", help="Write the table of the runs finished so far; run nothing."
    ),
    results: Path = typer.Option(
        None, "--results", help="Also (re)write the table into this markdown file's block."
    ),
) -> None:
    """Reproduce a paper table; finished cells are skipped, interrupted ones resumed."""
    from genreid.core.errors import ConfigError  # lazy: keeps `genreid --help` fast

    if list_tables:
        _list()
        return
    if not table:
        raise ConfigError("give a TABLE (`genreid reproduce --list` names them)")
    if out is None and not plan:
        raise ConfigError("--out is required: the folder the table and its runs go to")
    from genreid.core.config import CONFIG_VERSION, check_config, from_dict  # lazy: fast --help
    from genreid.engine.reproduce.pipeline import ReproduceConfig, run_reproduce

    data = {
        "version": CONFIG_VERSION,  # the flags are today's keys: nothing to migrate
        "table": table, "scale": scale or "", "dataset": dataset or "",
        "root": str(root or ""), "options": parse_options(option), "seeds": seeds,
        "splits": splits, "jobs": jobs, "threads": threads, "executor": executor,
        "address": address, "validation": validation,
        "tune": tune, "choices": parse_options(set_choice), "overrides": list(override or []),
        "gan_overrides": list(gan_override or []), "dgnet_overrides": list(dgnet_override or []),
        "unlabeled_dataset": unlabeled_dataset, "unlabeled_root": str(unlabeled_root or ""),
        "rows": [r.strip() for r in rows.split(",") if r.strip()], "rerank": rerank,
    }  # fmt: skip
    cfg = from_dict(ReproduceConfig, data)
    check_config(cfg)
    if plan:
        res = run_reproduce(cfg, out or Path("."), plan_only=True)
        kinds = ", ".join(f"{n} {k}" for k, n in res["jobs"].items())
        typer.echo(f"{res['cells']} cells, {res['runs']} runs; jobs: {kinds}")
        if "gpu" in res:
            typer.echo("\n".join(res["gpu"].lines()))
        return
    result = run_reproduce(cfg, out, report_only=report)
    if report:
        typer.echo(f"{result['runs_finished']} of {result['runs']} runs finished")
    typer.echo(f"{result['table']}: {out / 'table.md'}, {out / 'table.csv'}, {out / 'cells.jsonl'}")
    if results is not None:
        from genreid.engine.reproduce.pipeline import write_results_block  # lazy: as above

        how = write_results_block(results, result, sys.argv)
        typer.echo(f"{how} its block in {results}")
