"""Dataset parsers by name, as used on the command line and in configs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genreid.core.registry import Registry
from genreid.data.errors import DatasetError
from genreid.data.records import ReIDDataset

# name -> "module:function", imported on first use (keeps `genreid --help` fast).
DATASETS: Registry[Callable[..., ReIDDataset]] = Registry(
    "dataset",
    {
        "market1501": "genreid.data.datasets.market:parse_market1501",
        "dukemtmcreid": "genreid.data.datasets.market:parse_dukemtmcreid",
        "cuhk03": "genreid.data.datasets.cuhk03:parse_cuhk03",
        "msmt17": "genreid.data.datasets.msmt17:parse_msmt17",
        "viper": "genreid.data.datasets.viper:parse_viper",
        "prid2011": "genreid.data.datasets.prid2011:parse_prid2011",
        "cub200": "genreid.data.datasets.cub200:parse_cub200",
        "folder": "genreid.data.datasets.folder:parse_folder",
    },
)
DATASETS.normalize_with(lambda name: name.lower().replace("-", "").replace("_", ""))
DATASETS.alias(market="market1501", duke="dukemtmcreid", cub="cub200", prid="prid2011")

DATASET_NAMES: tuple[str, ...] = DATASETS.names()


class DatasetOptionError(DatasetError):
    """A parser option (``-o key=value``, ``data.options``) the dataset does not take."""


def get_parser(name: str) -> Callable[..., ReIDDataset]:
    """The parser function of a dataset name; unknown names list the known ones."""
    return DATASETS.get(name)


# Options every dataset takes (after its parser's own): hyper-parameters are chosen on
# identities held out of the training split, never on the test identities.
SPLIT_OPTIONS = ("validation", "validation_seed")


def load_dataset(name: str, root: str | Path, **options: Any) -> ReIDDataset:
    """Parse a dataset in its original layout; ``options`` are parser-specific (e.g. split),
    plus ``validation`` (a fraction, or a number, of training identities held out as query and
    gallery in place of the test split) and ``validation_seed``."""
    held = {k: options.pop(k) for k in SPLIT_OPTIONS if k in options}
    parser = get_parser(name)
    try:
        inspect.signature(parser).bind(root, **options)
    except TypeError as exc:
        takes = [p for p in inspect.signature(parser).parameters if p != "root"]
        raise DatasetOptionError(
            f"{DATASETS.key(name)}: bad option(s) {sorted(options)} ({exc}); it takes "
            f"{', '.join([*takes, *SPLIT_OPTIONS])}"
        ) from None
    ds = parser(root, **options)
    if held.get("validation"):
        ds = ds.validation_split(held["validation"], held.get("validation_seed", 0))
    return ds
