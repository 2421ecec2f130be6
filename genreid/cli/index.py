"""``genreid index`` (a gallery folder's features, one file) and ``genreid search`` (query
images against an index: index.html with thumbnails and results.json)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer


class Protocol(StrEnum):
    """Which gallery images each query's list leaves out."""

    market = "market"
    none = "none"


class Backend(StrEnum):
    """How the nearest gallery images are found."""

    auto = "auto"
    faiss = "faiss"
    exact = "exact"


def _encoder(run: Path | None, onnx: Path | None, checkpoint: str, batch_size: int | None) -> Any:
    from genreid.eval.deploy.encoder import load_onnx_encoder, load_run_encoder  # lazy: fast --help
    from genreid.eval.deploy.index import SearchIndexError

    if (run is None) == (onnx is None):
        raise SearchIndexError("give exactly one of --run RUN and --onnx FILE")
    if run is not None:
        return load_run_encoder(run, checkpoint, batch_size=batch_size)
    return load_onnx_encoder(onnx, batch_size or 64)  # type: ignore[arg-type]


def index_command(
    images: Annotated[Path, typer.Option("--images", help="Folder of gallery images (recursive).")],
    out: Annotated[Path, typer.Option("--out", help="Index file to write (.npz).")],
    run: Annotated[
        Path | None, typer.Option("--run", help="Encode with a training run folder.")
    ] = None,
    onnx: Annotated[
        Path | None, typer.Option("--onnx", help="Encode with an ONNX file of `genreid export`.")
    ] = None,
    naming: Annotated[
        str,
        typer.Option(
            "--naming",
            help="Identities and cameras from file names: auto (the first convention every "
            "name follows), none, or market1501, dukemtmcreid, msmt17, cuhk03, viper, "
            "prid2011, folder.",
        ),
    ] = "auto",
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="File in RUN/checkpoints.")
    ] = "last.pt",
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Images per forward pass.")
    ] = None,
) -> None:
    """Encode a folder of images into a search index file for `genreid search`.

    The index holds L2-normalised features, image paths, identities and cameras when the
    file names carry them, and the model that made them.
    """
    from genreid.eval.deploy.index import (  # lazy: keeps `genreid --help` fast
        build_index,
        save_index,
    )

    encoder = _encoder(run, onnx, checkpoint, batch_size)
    index = build_index(encoder, images, naming)
    path = save_index(index, out)
    ids = f"identities from {index.naming} names" if index.naming else "no identities"
    typer.echo(
        f"indexed {len(index)} images under {images} ({index.header['dim']}-d, "
        f"{encoder.kind} {encoder.source}; {ids})"
    )
    if index.header["skipped_files"]:
        typer.echo(f"skipped {index.header['skipped_files']} file(s) that are not images")
    typer.echo(f"wrote {path}")


def search_command(
    index: Annotated[Path, typer.Option("--index", help="Index file of `genreid index`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for index.html and results.json.")],
    query: Annotated[
        list[Path] | None,
        typer.Option("--query", help="Query images (or a folder of them): --query A.jpg B.jpg."),
    ] = None,
    more: Annotated[
        list[Path] | None,
        typer.Argument(help="More queries (--query A.jpg B.jpg ...).", show_default=False),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Results per query.")] = 20,
    rerank: Annotated[
        bool,
        typer.Option(
            "--rerank/--no-rerank",
            help="k-reciprocal re-ranking over the queries and the gallery (as evaluate).",
        ),
    ] = False,
    k1: Annotated[int, typer.Option("--k1", min=1, help="Re-ranking k1.")] = 20,
    k2: Annotated[int, typer.Option("--k2", min=1, help="Re-ranking k2.")] = 6,
    lambda_value: Annotated[
        float,
        typer.Option(
            "--lambda", min=0.0, max=1.0, help="Re-ranking weight of the original distance."
        ),
    ] = 0.3,
    protocol: Annotated[
        Protocol,
        typer.Option(
            "--protocol",
            help="market: leave out junk (-1) and the query identity's images from its own "
            "camera, as `genreid evaluate` does (needs identities); none: keep every image.",
        ),
    ] = Protocol.market,
    backend: Annotated[
        Backend,
        typer.Option(
            "--backend", help="faiss (IndexFlatIP), exact (torch), or auto: faiss if installed."
        ),  # fmt: skip
    ] = Backend.auto,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="Encode the queries with this run (default: the index's)."),
    ] = None,
    onnx: Annotated[
        Path | None,
        typer.Option("--onnx", help="Encode the queries with this ONNX file of `genreid export`."),
    ] = None,
    checkpoint: Annotated[
        str, typer.Option("--checkpoint", help="File in RUN/checkpoints.")
    ] = "last.pt",
) -> None:
    """Rank an index's images for each query: DIR/index.html and DIR/results.json.

    The page shows each query's thumbnail then its ranked list with rank and distance; true
    matches are outlined green and others red when the file names carry identities.
    """
    from genreid.eval.deploy.index import (  # lazy: keeps `genreid --help` fast
        SearchIndexError,
        load_index,
        query_images,
    )
    from genreid.eval.deploy.search import run_search  # lazy: keeps `genreid --help` fast

    idx = load_index(index)
    queries = query_images([*(query or []), *(more or [])])
    if run is None and onnx is None:
        built = idx.model
        key = "run" if built.get("kind") == "run" else "onnx"
        source = Path(str(built.get("source")))
        if not source.exists():
            raise SearchIndexError(
                f"{index} was built with {source}, which is not there any more; pass --run or "
                "--onnx with the same model"
            )
        run, onnx = (source, None) if key == "run" else (None, source)
    encoder = _encoder(run, onnx, checkpoint, None)
    options = {"k1": k1, "k2": k2, "lambda_value": lambda_value} if rerank else None
    result = run_search(
        idx, str(index), encoder, queries, out, top, protocol.value, options, backend.value
    )
    summary = result["summary"]
    line = f"searched {summary['queries']} queries in {len(idx)} images ({result['backend']})"
    if "rank1" in summary:
        line += (
            f"; rank-1 {100 * summary['rank1']:.1f}% over {summary['queries_with_true_match']} "
            "queries with a true match"
        )
    typer.echo(line)
    typer.echo(f"wrote {out / 'index.html'} and {out / 'results.json'}")
