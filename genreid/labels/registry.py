"""Label strategies by name (``labels.strategy``), imported on first use."""

from __future__ import annotations

from typing import Any

from genreid.core.registry import Registry

STRATEGIES: Registry[Any] = Registry(
    "label strategy",
    {
        "baseline": "genreid.labels.baseline:Baseline",
        "lsr": "genreid.labels.lsr:LSR",
        "lsro": "genreid.labels.lsro:LSRO",
        "all_in_one": "genreid.labels.all_in_one:AllInOne",
        "pseudo_label": "genreid.labels.pseudo_label:PseudoLabel",
        "smprl": "genreid.labels.mprl:SMpRL",
        "dmprl1": "genreid.labels.mprl:DMpRL1",
        "dmprl2": "genreid.labels.mprl:DMpRL2",
        "slsr": "genreid.labels.slsr:SLSR",
        "fapl_onehot": "genreid.labels.fapl:FAPLOneHot",
        "fapl_dist": "genreid.labels.fapl:FAPLDist",
    },
)
