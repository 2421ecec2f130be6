"""``genreid evaluate``: metrics, re-ranking and figures from a features file."""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from genreid.cli_errors import fail
from genreid.eval.features import FeatureSet, load_features


class Metric(StrEnum):
    """Distance between features."""

    cosine = "cosine"
    euclidean = "euclidean"
    sqeuclidean = "sqeuclidean"


class Protocol(StrEnum):
    """How queries are scored against the gallery."""

    market = "market"
    cuhk03_classic = "cuhk03_classic"


class APKind(StrEnum):
    """Which average precision: the standard one or the MATLAB script's trapezoid."""

    standard = "standard"
    trapezoid = "trapezoid"


def _is_input_error(exc: BaseException) -> bool:
    """A ValueError raised by genreid itself (bad input), not a bug elsewhere."""
    return isinstance(exc, ValueError) and type(exc).__module__.startswith("genreid")


def _ranklist(
    fs: FeatureSet, distmat: np.ndarray, num: int, seed: int, path: Path, err: Console
) -> None:
    from genreid.eval.protocols import has_valid_match
    from genreid.eval.report import choose_queries
    from genreid.viz.plots import plot_ranklist

    valid = has_valid_match(fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids)
    candidates = np.flatnonzero(valid) if valid.any() else None
    chosen = choose_queries(num, fs.num_query, seed, candidates)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_ranklist(
            distmat,
            chosen,
            fs.q_paths,
            fs.g_paths,
            fs.q_pids,
            fs.g_pids,
            fs.q_camids,
            fs.g_camids,
            path,
        )
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)


def _run(
    fs: FeatureSet,
    features: Path,
    out: Path,
    options: dict[str, Any],
    ranklist: int,
    err: Console,
) -> dict[str, Any]:
    from genreid.eval.protocols import evaluate_arrays
    from genreid.eval.report import write_results
    from genreid.viz.plots import plot_cmc

    with err.status(f"evaluating {fs.num_query} queries against {fs.num_gallery} images"):
        ev = evaluate_arrays(
            fs.qf, fs.gf, fs.q_pids, fs.g_pids, fs.q_camids, fs.g_camids, **options
        )
    result = {"features": str(features), **ev.to_dict(), "seed": options["seed"]}
    out.mkdir(parents=True, exist_ok=True)
    result["files"] = {"cmc": "cmc.png"}
    plot_cmc(ev.cmc, out / "cmc.png", title=f"CMC ({ev.metric}, {ev.protocol})")
    if ranklist > 0:
        final = ev.distmat["rerank" if "rerank" in ev.distmat else "plain"]
        _ranklist(fs, final, ranklist, options["seed"], out / "ranklist.png", err)
        result["files"]["ranklist"] = "ranklist.png"
    write_results(result, out)
    return result


def run_evaluation(
    features: str | Path, out: str | Path, ranklist: int = 0, **options: Any
) -> dict[str, Any]:
    """What ``genreid evaluate`` does, as a function: results.json, cmc.png, ranklist.png."""
    defaults = {
        "metric": "cosine", "protocol": "market", "rerank": False, "max_rank": 50, "k1": 20,
        "k2": 6, "lambda_value": 0.3, "seed": 0, "repeats": 10, "ap": "standard",
    }  # fmt: skip
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"run_evaluation: unknown option(s) {sorted(unknown)}")
    features, out = Path(features), Path(out)
    return _run(
        load_features(features), features, out, {**defaults, **options}, ranklist,
        Console(stderr=True),
    )  # fmt: skip


def evaluate_command(
    features: Annotated[
        Path,
        typer.Option(
            "--features",
            help="Features .npz from save_features (format: genreid.eval.features).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder for results.json and figures.")],
    metric: Annotated[Metric, typer.Option("--metric", help="Feature distance.")] = Metric.cosine,
    rerank: Annotated[
        bool, typer.Option("--rerank/--no-rerank", help="Also score k-reciprocal re-ranking.")
    ] = False,
    protocol: Annotated[
        Protocol,
        typer.Option(
            "--protocol",
            help="market: drop same-identity same-camera and junk gallery images; "
            "cuhk03_classic: single-shot gallery sampling, repeated.",
        ),
    ] = Protocol.market,
    ranklist: Annotated[
        int,
        typer.Option(
            "--ranklist",
            min=0,
            help="Draw N queries (chosen by --seed) with their top-10 matches (re-ranked if "
            "--rerank) in ranklist.png.",
        ),
    ] = 0,
    max_rank: Annotated[
        int, typer.Option("--max-rank", min=1, help="Length of the CMC curve.")
    ] = 50,
    k1: Annotated[int, typer.Option("--k1", min=1, help="Re-ranking k1.")] = 20,
    k2: Annotated[int, typer.Option("--k2", min=1, help="Re-ranking k2.")] = 6,
    lambda_value: Annotated[
        float,
        typer.Option(
            "--lambda", min=0.0, max=1.0, help="Re-ranking weight of the original distance."
        ),
    ] = 0.3,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for query sampling and cuhk03_classic.")
    ] = 0,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Gallery samplings of cuhk03_classic.")
    ] = 10,
    ap: Annotated[
        APKind,
        typer.Option(
            "--ap",
            help="standard: mean precision at each true match (torchreid, fast-reid); "
            "trapezoid: the interpolated AP of the Market-1501 MATLAB script.",
        ),
    ] = APKind.standard,
) -> None:
    """Evaluate query/gallery features: CMC, mAP, mINP, optional re-ranking and figures."""
    err = Console(stderr=True)
    options = {
        "metric": metric.value,
        "protocol": protocol.value,
        "rerank": rerank,
        "max_rank": max_rank,
        "k1": k1,
        "k2": k2,
        "lambda_value": lambda_value,
        "seed": seed,
        "repeats": repeats,
        "ap": ap.value,
    }
    try:
        fs = load_features(features)
        result = _run(fs, features, out, options, ranklist, err)
    except ValueError as exc:
        if not _is_input_error(exc):
            raise
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc} ({exc.filename or out})")
    from genreid.eval.report import results_table

    console = Console()
    console.print(
        f"{features.name}: {result['num_query']} queries ({result['num_valid_query']} with a "
        f"true match), {result['num_gallery']} gallery images, {metric.value}, "
        f"{protocol.value} protocol",
        markup=False,
        highlight=False,
    )
    console.print(results_table(result))
    console.print(f"wrote {out / 'results.json'}", markup=False, highlight=False)
