"""``genreid evaluate``: metrics, re-ranking and figures from a features file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


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


def evaluate_command(
    features: Annotated[
        Path,
        typer.Option(
            "--features",
            help="Features .npz from save_features (format: genreid.eval.ranking.features).",
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
    from rich.console import Console  # lazy: keeps `genreid --help` fast

    from genreid.eval.ranking.features import load_features
    from genreid.eval.ranking.report import results_table, run_evaluation

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
    fs = load_features(features)
    with err.status(f"evaluating {fs.num_query} queries against {fs.num_gallery} images"):
        result = run_evaluation(fs, out, ranklist=ranklist, source=str(features), **options)
    for warning in result.pop("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
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
