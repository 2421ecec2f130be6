"""What ``genreid search`` writes: queries encoded by the index's model, ranked against the
index, as ``results.json`` and a self-contained ``index.html``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from genreid.core.files import make_output_dir, write_json_atomic
from genreid.eval.deploy.encoder import Encoder
from genreid.eval.deploy.index import QueryResult, SearchIndex, check_encoder, search, summary
from genreid.viz.search_page import PageHit, PageQuery, write_search_page


def _label(pid: int | None, camid: int | None) -> str:
    return "" if pid is None else f"id {pid} c{camid}"


def page_queries(results: list[QueryResult]) -> list[PageQuery]:
    """The search page's rows (plain data) from the ranked lists."""
    rows = []
    for r in results:
        hits = [
            PageHit(h.path, h.rank, h.distance, h.match, h.same_camera, _label(h.pid, h.camid))
            for h in r.hits
        ]
        if r.has_match is None:
            note = "identity unknown"
        elif not r.has_match:
            note = "no true match in the gallery"
        elif r.first_match is None:
            note = f"no true match in the top {len(r.hits)}"
        else:
            note = f"first true match at rank {r.first_match}"
        if r.excluded:
            note += f"; {r.excluded} gallery image(s) left out by the protocol"
        rows.append(PageQuery(r.path, hits, _label(r.pid, r.camid), note))
    return rows


def run_search(
    index: SearchIndex,
    index_label: str,
    encoder: Encoder,
    queries: list[Path],
    out: str | Path,
    top: int = 20,
    protocol: str = "market",
    rerank: dict[str, float] | None = None,
    backend: str = "auto",
) -> dict[str, Any]:
    """Encode ``queries`` (after checking ``encoder`` is the index's model), rank the index for
    each, write ``out/results.json`` and ``out/index.html``; returns what results.json holds."""
    check_encoder(index, encoder, index_label)
    paths = [str(q) for q in queries]
    qf = encoder.encode(paths)
    results, used = search(index, paths, qf, top, protocol, rerank, backend)
    out = Path(out)
    make_output_dir(out)
    result = {
        "index": index_label,
        "model": index.model,
        "query_encoder": encoder.identity(),
        "backend": used,
        "distance": "cosine distance 1 - q.g of L2-normalised features"
        + (" after k-reciprocal re-ranking" if rerank else ""),
        "protocol": protocol,
        "rerank": rerank,
        "top": top,
        "naming": index.naming,
        "summary": summary(results),
        "queries": [asdict(r) for r in results],
    }
    write_json_atomic(result, out / "results.json")
    settings: list[tuple[str, object]] = [
        ("index", f"{index_label} ({len(index)} images, {index.header.get('dim')}-d)"),
        ("model", f"{index.model.get('kind')} {index.model.get('source')}"),
        ("architecture", index.model.get("architecture", "")),
        ("queries encoded by", f"{encoder.kind} {encoder.source}"),
        ("distance", result["distance"]),
        ("backend", used),
        ("protocol", protocol),
        ("identities", f"from {index.naming} file names" if index.naming else "unknown"),
    ]
    if "rank1" in result["summary"]:
        s = result["summary"]
        settings.append(
            ("rank-1", f"{100 * s['rank1']:.1f}% of {s['queries_with_true_match']} queries")
        )
    write_search_page(out / "index.html", page_queries(results), settings)
    return result
