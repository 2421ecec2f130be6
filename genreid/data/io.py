"""Reading images with errors that name the file, and checking a whole dataset for corrupt ones."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from genreid.data.errors import CorruptImageError


def read_image(path: str | Path) -> Image.Image:
    """Decode an image fully as RGB; a missing or corrupt file raises CorruptImageError."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise CorruptImageError(path, "file not found") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptImageError(path, f"{type(exc).__name__}: {exc}") from exc


def image_problem(path: str | Path) -> str | None:
    """Why an image cannot be used, or None when it decodes."""
    try:
        read_image(path)
    except CorruptImageError as exc:
        return exc.reason
    return None


def find_corrupt_images(
    paths: Iterable[str | Path], workers: int = 8
) -> Iterator[tuple[str, str | None]]:
    """Yield (path, problem or None) for every image, decoding several at a time."""
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, problem in zip(paths, pool.map(image_problem, paths), strict=True):
            yield str(path), problem
