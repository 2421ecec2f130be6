"""The appearance-transfer rate on networks whose answer is known: a generator that returns
the appearance donor scores 1 for appearance and 0 for structure, one that returns the
structure donor the reverse."""

from __future__ import annotations

import types

import pytest
import torch

from genreid.data.records import ImageRecord, Role
from genreid.engine.dgnet_quality import swap_quality
from genreid.eval.generation.gen_quality import MeasureConfig
from tests.fixtures import write_jpeg


class Identity(torch.nn.Module):
    def forward(self, x):
        return types.SimpleNamespace(code=x)


def colour_judge(x: torch.Tensor) -> torch.Tensor:
    """Mean colour, centred and L2-normalised: tells the fixture's identities apart."""
    f = x.mean(dim=(2, 3))
    return torch.nn.functional.normalize(f - f.mean(dim=1, keepdim=True), dim=1)


@pytest.mark.parametrize("keeps", ["appearance", "structure"])
def test_a_generator_copying_one_donor_scores_that_donor(tmp_path, keeps):
    records = [
        ImageRecord(
            str(write_jpeg(tmp_path / f"{pid}_{k}.jpg", pid, size=(32, 64))), pid, 0, Role.TRAIN
        )
        for pid in range(4)
        for k in range(2)
    ]
    G = (lambda a, s: a) if keeps == "appearance" else (lambda a, s: s)
    out = swap_quality(
        Identity(), torch.nn.Identity(), G, records, (64, 32), colour_judge, "colour",
        MeasureConfig(images=20), torch.device("cpu"),
    )  # fmt: skip
    other = "structure" if keeps == "appearance" else "appearance"
    assert out["transfer"][keeps] == 1.0 and out["transfer"][other] == 0.0
    assert out["transfer"]["swaps"] == 20 and out["transfer"]["judge"] == "colour"
    assert out["transfer"]["judge_on_real"] == 1.0  # the judge tells every real image apart
    assert out["generated"]["real_images"] == 8 and out["generated"]["fake_images"] == 20
