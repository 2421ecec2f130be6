"""The page ``genreid search`` writes: one row per query, its thumbnail then its ranked list.

Plain data in (paths, ranks, distances, match flags), one self-contained HTML file out:
thumbnails are inline data URIs (``viz.html``), so it opens from disk with no server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genreid.viz.html import escape, figure, image_data_uri, table, write_page

CSS = (
    "figure.same img{border-color:#1a9850;border-style:dashed}"
    ".row figure{min-width:72px}.row figure img{height:96px;width:auto;margin:auto}"
    ".row figcaption{white-space:normal;max-width:80px;margin:auto}"
)


@dataclass
class PageHit:
    """One gallery image of a ranked list."""

    path: str
    rank: int
    distance: float
    match: bool | None = None  # None: identities unknown
    same_camera: bool = False  # a true match from the query's own camera
    label: str = ""  # e.g. the identity and camera


@dataclass
class PageQuery:
    """A query with its ranked list."""

    path: str
    hits: list[PageHit]
    label: str = ""
    note: str = ""  # e.g. "first true match at rank 3"


class _Thumbs:
    """Data URIs of thumbnails, each image encoded once however often it is shown."""

    def __init__(self, height: int) -> None:
        self.height = height
        self.cache: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        if path not in self.cache:
            self.cache[path] = image_data_uri(path, max_height=self.height)
        return self.cache[path]


def _hit_class(hit: PageHit) -> str:
    if hit.match is None:
        return ""
    if hit.match and hit.same_camera:
        return "match same"
    return "match" if hit.match else "miss"


def search_body(
    queries: Sequence[PageQuery], settings: Sequence[tuple[str, object]], thumb_height: int = 96
) -> str:
    """The page's HTML body: settings table, legend, one row per query."""
    thumbs = _Thumbs(thumb_height)
    parts = ["<h1>genreid search</h1>", table(["setting", "value"], settings)]
    parts.append(
        '<p class="legend muted small">Each row: the query (blue) then its ranked gallery '
        "images, rank and distance under each. Green: same identity; red: another identity; "
        "dashed green: same identity from the query's camera; no outline: identities "
        "unknown from the file names.</p>"
    )
    for q in queries:
        caption = "query" + (f" {q.label}" if q.label else "")
        row = [figure(thumbs(q.path), caption, "query", q.path)]
        for h in q.hits:
            dist = f"{h.distance:.4f}".replace("-0.0000", "0.0000")  # rounding below zero
            text = f"#{h.rank} {dist}" + (f" {h.label}" if h.label else "")
            row.append(figure(thumbs(h.path), text, _hit_class(h), h.path))
        head = escape(Path(q.path).name) + (f" <span class='muted'>{escape(q.note)}</span>")
        parts.append(f"<h2 class='small'>{head}</h2><div class='row'>{''.join(row)}</div>")
    return "\n".join(parts)


def write_search_page(
    path: str | Path,
    queries: Sequence[PageQuery],
    settings: Sequence[tuple[str, object]],
    title: str = "genreid search",
) -> Path:
    """Write the self-contained results page to ``path``."""
    return write_page(path, title, search_body(queries, settings), CSS)
