"""Shared pytest set-up: no test writes outside its tmp folder; real data paths."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
VIPER_ROOT = SHARED / "VIPeR"
PRID_ROOT = SHARED / "prid2011"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Split files and other caches go to a per-test temporary folder."""
    monkeypatch.setenv("GENREID_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def one_thread():
    """Tiny models run faster (and never oversubscribe a busy machine) on one torch thread."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
