"""Files written so that a crash leaves either the old content or the new, never a mix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write to a temporary file in the same folder, flush it to disk, rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def json_default(obj: Any) -> Any:
    """JSON for NumPy scalars and arrays and paths (what results dicts hold)."""
    import numpy as np  # lazy: numpy is only needed when such values occur

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """JSON (indented, NumPy values allowed) written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def make_output_dir(out: str | Path, error: type[Exception] | None = None) -> Path:
    """Create ``out`` (and its parents); an OS refusal becomes ``error`` (RunFolderError by
    default) saying why and to choose another ``--out``."""
    from genreid.core.errors import RunFolderError  # lazy: errors imports nothing from here

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise (error or RunFolderError)(
            f"cannot create the output folder {out}: {exc.strerror or exc}; choose another --out"
        ) from None
    return out


def update_marked_block(path: str | Path, key: str, body: str) -> str:
    """Put ``body`` between ``<!-- begin KEY -->`` and ``<!-- end KEY -->`` in the text file
    ``path`` (a results page that commands rewrite): the old block is replaced, the rest of
    the file kept; a file without the block gets it at the end. Returns "replaced",
    "appended" or "created"."""
    path = Path(path)
    begin, end = f"<!-- begin {key} -->", f"<!-- end {key} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.is_file() else ""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i >= 0 and j >= 0:
        new, how = text[:i] + block + text[j + len(end) :], "replaced"
    else:
        how = "appended" if text else "created"
        new = (text.rstrip("\n") + "\n\n" if text else "") + block + "\n"
    atomic_write_text(path, new)
    return how
