"""``genreid train`` and ``genreid extract``: re-ID training runs and their features files.

Bad input (unknown strategy, unknown config key, missing data, a diverged loss) prints
``error: ...`` to stderr and exits with status 1, without a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from genreid.cli_errors import fail
from genreid.config import ConfigError


@contextmanager
def _bad_input_ends_cleanly() -> Iterator[None]:
    """Errors caused by the user's config, data or files end as one line, exit code 1."""
    from genreid.engine.checkpoint import CheckpointError
    from genreid.engine.trainer import TrainingError

    try:
        yield
    except (ConfigError, ValueError, TrainingError, CheckpointError, OSError, KeyError) as exc:
        fail(exc)


def train_command(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides."),
    config: Path = typer.Option(
        None, "--config", help="YAML config (default with --resume: RUN/config.yaml)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to create (or resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoints/last.pt."),
) -> None:
    """Train a re-ID model with a label strategy for generated images (torchrun for DDP)."""
    with _bad_input_ends_cleanly():
        from genreid.config import load_config
        from genreid.engine.reid_config import ReIDTrainConfig
        from genreid.engine.trainer import train

        if config is None:
            if not resume:
                raise ConfigError("--config is required (e.g. configs/train/tiny.yaml)")
            config = out / "config.yaml"
        cfg = load_config(ReIDTrainConfig, config, list(overrides or []))
        results = train(cfg, out, resume=resume)
    if os.environ.get("RANK", "0") != "0":
        return
    final = results.get("final", {})
    shown = ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k != "epoch")
    print(
        f"run {out}: {results['epochs_completed']} epochs" + (f"; {shown}" if shown else ""),
        file=sys.stderr,
    )


def extract_command(
    run: Path = typer.Option(..., "--run", help="A training run folder."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset name (e.g. market1501)."),
    root: Path = typer.Option(..., "--root", help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="Features file to write (.npz)."),
    option: list[str] = typer.Option(
        None, "-o", "--option", help="key=value config overrides (e.g. eval.flip=false)."
    ),
    checkpoint: str = typer.Option("last.pt", "--checkpoint", help="File in RUN/checkpoints."),
) -> None:
    """Write flip-averaged, L2-normalised query/gallery features of a trained run."""
    with _bad_input_ends_cleanly():
        features, nq, ng = _extract(run, dataset, root, out, list(option or []), checkpoint)
    print(f"{features}: {nq} query and {ng} gallery features", file=sys.stderr)


def _extract(
    run: Path, dataset: str, root: Path, out: Path, overrides: list[str], checkpoint: str
) -> tuple[Path, int, int]:
    import torch

    from genreid.data.datasets import load_dataset
    from genreid.engine.extract import (
        extract_features,
        load_trained_model,
        save_dataset_features,
    )

    model, cfg, device = load_trained_model(run, checkpoint, overrides)
    same = dataset.replace("-", "").replace("_", "").lower() == cfg.data.dataset.lower()
    ds = load_dataset(dataset, root, **(cfg.data.options if same else {}))
    if not ds.query or not ds.gallery:
        raise ValueError(f"{dataset} at {root} has no query or gallery images")
    size = (cfg.data.height, cfg.data.width)
    e = cfg.eval
    with torch.no_grad():
        qf = extract_features(model, ds.query, size, e.batch_size, e.flip, device)
        gf = extract_features(model, ds.gallery, size, e.batch_size, e.flip, device)
    return save_dataset_features(out, ds, qf, gf), qf.shape[0], gf.shape[0]
