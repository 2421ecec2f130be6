"""Dataset parsers by name, as used on the command line and in configs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genreid.data.records import ReIDDataset

# name -> "module:function"; imported lazily so that `genreid --help` stays fast.
_PARSERS: dict[str, str] = {
    "market1501": "genreid.data.datasets.market:parse_market1501",
    "dukemtmcreid": "genreid.data.datasets.market:parse_dukemtmcreid",
    "cuhk03": "genreid.data.datasets.cuhk03:parse_cuhk03",
    "msmt17": "genreid.data.datasets.msmt17:parse_msmt17",
    "viper": "genreid.data.datasets.viper:parse_viper",
    "prid2011": "genreid.data.datasets.prid2011:parse_prid2011",
    "cub200": "genreid.data.datasets.cub200:parse_cub200",
    "folder": "genreid.data.datasets.folder:parse_folder",
}

DATASET_NAMES: tuple[str, ...] = tuple(_PARSERS)


def get_parser(name: str) -> Callable[..., ReIDDataset]:
    """The parser function of a dataset name; unknown names list the known ones."""
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"market": "market1501", "duke": "dukemtmcreid", "cub": "cub200", "prid": "prid2011"}
    key = aliases.get(key, key)
    if key not in _PARSERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    module, func = _PARSERS[key].split(":")
    return getattr(importlib.import_module(module), func)


def load_dataset(name: str, root: str | Path, **options: Any) -> ReIDDataset:
    """Parse a dataset in its original layout; ``options`` are parser-specific (e.g. split)."""
    return get_parser(name)(root, **options)
