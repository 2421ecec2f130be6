"""Crash points for fault-injection tests: ``GENREID_CRASH_AT=POINT:N`` kills the process with
SIGKILL the N-th time it reaches ``crash_point(POINT)``. Unset (always, outside those tests),
a crash point costs one comparison. ``benchmarks/resume_faults.py`` uses them to kill runs
inside checkpoint writes, evaluations and metrics lines, and checks every resume."""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("GENREID_CRASH_AT", "")
_POINT, _, _N = _SPEC.partition(":")
_AT = int(_N) if _N.isdigit() else 1
_seen = 0


def crash_point(name: str) -> None:
    """Die here (SIGKILL, like a power cut or the OOM killer) if this is the chosen point."""
    global _seen
    if name != _POINT:
        return
    _seen += 1
    if _seen == _AT:
        os.kill(os.getpid(), signal.SIGKILL)
