"""Identity and camera of an image from its file name, by the datasets' naming conventions.

A folder of images searched with ``genreid search`` has no list files, so identities come
from the names alone. Each convention maps a path to ``(pid, camid)`` or None; a folder takes
the first convention (in :data:`NAMINGS` order) that every one of its images follows, or none.
Numbers follow the parsers where the name allows it: Market-style ``-1`` is junk and ``0`` a
distractor; MSMT17 identities are shifted by one (0 is a real person there); CUHK03 names
give ``pair * 1000 + person`` (the parser's global numbering needs the .mat) and camera
``2 * (pair - 1) + view``; VIPeR and PRID2011 take the camera from their ``cam_a``/``cam_b``
folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from genreid.data.datasets.cuhk03 import NAME_PATTERN as CUHK03_PATTERN
from genreid.data.datasets.market import DUKE_PATTERN, MARKET_PATTERN
from genreid.data.datasets.prid2011 import PATTERN as PRID_PATTERN
from genreid.data.datasets.viper import CAMERAS
from genreid.data.datasets.viper import PATTERN as VIPER_PATTERN

Identity = tuple[int, int]  # (pid, camid)
Naming = Callable[[Path], Identity | None]

MSMT17_PATTERN = re.compile(r"(\d{4})_\d{3}_(\d{2})_\w+\.jpg", re.IGNORECASE)
FOLDER_PATTERN = re.compile(r"(-?\d+)_c(\d+)")  # the folder parser's pid_regex + cam_regex


def _market(path: Path) -> Identity | None:
    m = MARKET_PATTERN.fullmatch(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _duke(path: Path) -> Identity | None:
    m = DUKE_PATTERN.fullmatch(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _msmt17(path: Path) -> Identity | None:
    m = MSMT17_PATTERN.fullmatch(path.name)
    return (int(m.group(1)) + 1, int(m.group(2))) if m else None


def _cuhk03(path: Path) -> Identity | None:
    m = CUHK03_PATTERN.fullmatch(path.name)
    if m is None:
        return None
    pair, person, view = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return pair * 1000 + person, 2 * (pair - 1) + view


def _camera_folder(pattern: re.Pattern[str], offset: int) -> Naming:
    def naming(path: Path) -> Identity | None:
        m = pattern.fullmatch(path.name)
        cam = CAMERAS.get(path.parent.name.lower())
        return (int(m.group(1)) + offset, cam) if m and cam else None

    return naming


def _folder(path: Path) -> Identity | None:
    m = FOLDER_PATTERN.match(path.name)
    return (int(m.group(1)), int(m.group(2))) if m else None


NAMINGS: dict[str, Naming] = {
    "market1501": _market,
    "dukemtmcreid": _duke,
    "msmt17": _msmt17,
    "cuhk03": _cuhk03,
    "viper": _camera_folder(VIPER_PATTERN, 1),
    "prid2011": _camera_folder(PRID_PATTERN, 0),
    "folder": _folder,
}


def parse_identities(
    paths: Sequence[str | Path], naming: str | None = None
) -> tuple[str | None, list[Identity] | None]:
    """(convention, one (pid, camid) per path) for the first convention every path follows
    (or the one named), else (None, None)."""
    if not paths:
        return None, None
    names = [naming] if naming else list(NAMINGS)
    for name in names:
        parse = NAMINGS.get(name) if name else None
        if parse is None:
            return None, None
        found = [parse(Path(p)) for p in paths]
        if all(f is not None for f in found):
            return name, found  # type: ignore[return-value]
    return None, None
