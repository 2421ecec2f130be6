"""``genreid train`` (any task: re-ID, GAN, ...) and ``genreid extract`` (features of a run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from genreid.cli.common import OPTION_HELP, fail, parse_options, parse_size


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
    run: Path = typer.Option(None, "--run", help="A training run folder."),
    pretrained: str = typer.Option(
        None,
        "--pretrained",
        help="Instead of --run: zero-shot features of a backbone with no training, synthetic "
        "(the shipped one) or a file from `genreid pretrain` (RUN/backbone.pt).",
    ),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name (e.g. market1501)."),
    root: Path = typer.Option(..., "--root", "-r", help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="Features file to write (.npz)."),
    option: list[str] = typer.Option(
        None,
        "--option",
        "-o",
        help="Dataset parser option (split=3) or, with --run, config override (eval.flip=false); "
        + OPTION_HELP,
    ),
    checkpoint: str = typer.Option("last.pt", "--checkpoint", help="File in RUN/checkpoints."),
    size: str = typer.Option(
        None, "--size", help="HxW with --pretrained (default: the size it was pretrained at)."
    ),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="With --pretrained: + mirrored."),
) -> None:
    """Write flip-averaged, L2-normalised query/gallery features of a trained run, or of a
    pretrained backbone with no training (zero-shot)."""
    import torch  # lazy: keeps `genreid --help` fast

    from genreid.data.datasets import DATASETS, load_dataset
    from genreid.data.errors import DatasetError
    from genreid.eval.ranking.extract import (
        load_pretrained_model,
        load_trained_model,
        reid_features,
        save_dataset_features,
    )

    if (run is None) == (pretrained is None):
        fail("give either --run RUN (a trained run) or --pretrained synthetic|FILE, not both")
    options = list(option or [])
    parser = parse_options([o for o in options if "." not in o.split("=", 1)[0]])
    overrides = [o for o in options if "." in o.split("=", 1)[0]]
    if pretrained is not None:
        if overrides:
            fail(f"--pretrained takes dataset parser options only (split=3), not {overrides[0]}")
        model, hw, _ = load_pretrained_model(pretrained, parse_size(size) if size else None)
        batch_size, device = 128, torch.device("cpu")
        ds = load_dataset(dataset, root, **parser)
    else:
        model, data, ev, device = load_trained_model(run, checkpoint, overrides)
        hw, batch_size, flip = data.size, ev.batch_size, ev.flip
        same = DATASETS.key(dataset) == DATASETS.key(data.dataset)
        ds = load_dataset(dataset, root, **{**(data.options if same else {}), **parser})
    if not ds.query or not ds.gallery:
        raise DatasetError(f"{dataset} at {root} has no query or gallery images")
    with torch.no_grad():
        qf = reid_features(model, ds.query, hw, batch_size, flip, device)
        gf = reid_features(model, ds.gallery, hw, batch_size, flip, device)
    path = save_dataset_features(out, ds, qf, gf)
    print(f"{path}: {qf.shape[0]} query and {gf.shape[0]} gallery features", file=sys.stderr)
