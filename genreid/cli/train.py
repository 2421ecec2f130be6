"""``genreid train`` (any task: re-ID, GAN, ...) and ``genreid extract`` (features of a run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from genreid.cli.common import OPTION_HELP


def train_command(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
    config: str = typer.Option(
        None,
        "--config",
        "-c",
        help="A shipped config name (`genreid config list`, e.g. tiny) or a YAML file; "
        "with --resume it defaults to RUN/config.yaml. Its `task` key picks what is trained.",
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to create (or resume)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from RUN/checkpoints/last.pt (the same result)."
    ),
) -> None:
    """Train a run of the config's task (re-ID by default); torchrun for DDP."""
    run_training(config, overrides, out, resume)


def run_training(
    config: str | None,
    overrides: list[str] | None,
    out: Path,
    resume: bool,
    task_name: str | None = None,
) -> None:
    """Load the config (RUN/config.yaml on --resume without one), train its task, report."""
    from genreid.core.errors import ConfigError  # lazy: keeps `genreid --help` fast
    from genreid.engine.tasks import load_task_config

    if config is None:
        if not resume:
            raise ConfigError("--config is required (e.g. --config tiny; `genreid config list`)")
        config = str(out / "config.yaml")
        if not Path(config).is_file():
            raise ConfigError(
                f"nothing to resume at {out}: no config.yaml there. Pass the --out folder of an "
                "existing run, or drop --resume and pass --config to start one."
            )
    task, cfg = load_task_config(config, list(overrides or []))
    if task_name is not None and task.name != task_name:
        raise ConfigError(
            f"{config} trains a {task.name!r} task, not {task_name!r}; use `genreid train`"
        )
    results = task.train(cfg, out, resume=resume)
    if os.environ.get("RANK", "0") != "0":
        return
    final = results.get("final", {})
    shown = ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "epoch")
    line = f"{results.get('status', 'done')}: {out}, {results.get('epochs_completed', '?')} epochs"
    print(line + (f"; {shown}" if shown else ""), file=sys.stderr)


def extract_command(
    run: Path = typer.Option(..., "--run", help="A training run folder."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (e.g. market1501)."),
    root: Path = typer.Option(..., "--root", "-r", help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="Features file to write (.npz)."),
    option: list[str] = typer.Option(
        None, "--option", "-o", help="Config override " + OPTION_HELP + " (eval.flip=false)"
    ),
    checkpoint: str = typer.Option("last.pt", "--checkpoint", help="File in RUN/checkpoints."),
) -> None:
    """Write flip-averaged, L2-normalised query/gallery features of a trained run."""
    import torch  # lazy: keeps `genreid --help` fast

    from genreid.data.datasets import DATASETS, load_dataset
    from genreid.data.errors import DatasetError
    from genreid.eval.extract import load_trained_model, reid_features, save_dataset_features

    model, data, ev, device = load_trained_model(run, checkpoint, list(option or []))
    same = DATASETS.key(dataset) == DATASETS.key(data.dataset)
    ds = load_dataset(dataset, root, **(data.options if same else {}))
    if not ds.query or not ds.gallery:
        raise DatasetError(f"{dataset} at {root} has no query or gallery images")
    with torch.no_grad():
        qf = reid_features(model, ds.query, data.size, ev.batch_size, ev.flip, device)
        gf = reid_features(model, ds.gallery, data.size, ev.batch_size, ev.flip, device)
    path = save_dataset_features(out, ds, qf, gf)
    print(f"{path}: {qf.shape[0]} query and {gf.shape[0]} gallery features", file=sys.stderr)
