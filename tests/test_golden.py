"""The engine's numerics are pinned: every strategy and GAN gives the recorded final weights.

Bitwise (sha256 of every tensor) on a machine kind the digests were recorded on (AVX-512 and
AVX2 kernels of torch's CPU build, say); elsewhere (another CPU or torch build, where kernels
may round differently) the weight sums must agree with the first kind's to 1e-3 relative (a
chaotic DCGAN's sums differ by 1.3e-4 between AVX-512 and AVX2), which still catches a change
of what is computed.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.golden_cases import GOLDEN, _current_api, fingerprint, run_cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("golden"), *_current_api())


def _expected() -> tuple[dict, bool]:
    """This machine kind's recorded cases (exact), else the first kind's (tolerant)."""
    machines = json.loads(GOLDEN.read_text())["machines"]
    here = [m for m in machines if m["fingerprint"] == fingerprint()]
    return (here or machines)[0]["cases"], bool(here)


def test_every_case_matches_the_recorded_weights(cases):
    golden, exact = _expected()
    assert set(cases) == set(golden)
    for name, want in golden.items():
        got = cases[name]
        if exact:
            assert got["sha256"] == want["sha256"], name
            if "D" in want:
                assert got["D"] == want["D"], name
        else:
            for key in ("sum", "abs_sum"):
                assert math.isclose(got[key], want[key], rel_tol=1e-3), (name, key)
        for metric, value in want.get("final", {}).items():
            assert got["final"][metric] == pytest.approx(value, abs=1e-6), (name, metric)
