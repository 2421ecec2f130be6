"""Self-contained HTML pages: inline images (data URIs), inline CSS, no script from a network.

The pages genreid writes (search results, run reports) open from a file with no server and no
network, so everything they show is embedded here.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from genreid.core.files import atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2329;
  background:#fff;max-width:1400px}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.4em 0 .4em;
  border-bottom:1px solid #dde2e6;padding-bottom:.2em}
table{border-collapse:collapse;margin:.4em 0;font-size:.9em}
th,td{border:1px solid #dde2e6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.diff td{background:#fff4d6}.muted{color:#6b7680}.small{font-size:.8em}
figure{display:inline-block;margin:2px;text-align:center;font-size:.72em;vertical-align:top}
figure img{display:block;border:3px solid transparent}
figure.match img{border-color:#1a9850}figure.miss img{border-color:#d73027}
figure.query img{border-color:#2b6cb0}figcaption{max-width:96px;overflow-wrap:anywhere}
.row{white-space:nowrap;overflow-x:auto;margin:6px 0 14px}
img.plot{max-width:100%;border:1px solid #dde2e6}
"""


def escape(text: object) -> str:
    """Text made safe for HTML element content and attribute values."""
    return html.escape(str(text), quote=True)


def image_data_uri(
    image: str | Path | Image.Image,
    max_height: int | None = 128,
    fmt: str = "JPEG",
    quality: int = 85,
) -> str:
    """An image as a ``data:`` URI (resized to ``max_height`` pixels high when it is taller)."""
    img = image if isinstance(image, Image.Image) else Image.open(image)
    img = img.convert("RGB") if fmt == "JPEG" else img.convert("RGBA")
    if max_height is not None and img.height > max_height:
        img = img.resize(
            (max(1, round(img.width * max_height / img.height)), max_height), Image.BILINEAR
        )
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(src: str, caption: str = "", cls: str = "", title: str = "") -> str:
    """One thumbnail with a caption; ``cls`` is ``match``, ``miss``, ``query`` or empty."""
    attr = f' class="{escape(cls)}"' if cls else ""
    tip = f' title="{escape(title)}"' if title else ""
    return (
        f'<figure{attr}><img src="{src}" alt="{escape(caption)}"{tip}>'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    row_classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; numbers are right-aligned, ``row_classes`` marks rows (e.g. ``diff``)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and row_classes[i] else ""
        cells = "".join(
            f'<td class="num">{escape(c)}</td>'
            if isinstance(c, int | float)
            else f"<td>{escape(c)}</td>"
            for c in row
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str, css: str = "") -> str:
    """A complete HTML document with the shared style sheet and ``body`` as its content."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{escape(title)}'
        f"</title><style>{CSS}{css}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_page(path: str | Path, title: str, body: str, css: str = "") -> Path:
    """Write ``page(title, body)`` atomically to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page(title, body, css))
    return path
