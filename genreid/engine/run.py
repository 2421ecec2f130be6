"""Self-describing run folders: config, versions, metrics.jsonl, results.json, TensorBoard.

Layout of a run folder::

    RUN/config.yaml        resolved config (what actually ran)
    RUN/env.json           versions (python, torch, genreid, git commit), seed, command, host
    RUN/metrics.jsonl      one JSON object per logged step/epoch, appended and flushed
    RUN/results.json       final figures, written atomically
    RUN/checkpoints/       last.pt (+ epoch_NNN.pt when kept), written atomically
    RUN/tb/                TensorBoard events
    RUN/figures/           PNGs
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genreid import __version__
from genreid.config import save_config


def versions() -> dict[str, str]:
    """Exact versions of what produced a run."""
    import numpy
    import torch

    out = {
        "genreid": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }
    try:
        import torchvision

        out["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name(0)
    commit = _git_commit()
    if commit:
        out["git_commit"] = commit
    return out


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write JSON to a temporary file and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)
    return path


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class RunDir:
    """A run folder; creating one records the config, versions and seed."""

    def __init__(self, path: str | Path, is_main: bool = True) -> None:
        self.path = Path(path)
        self.is_main = is_main
        self._tb = None
        if is_main:
            for sub in ("checkpoints", "figures"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    def record_config(self, cfg: Any, seed: int, stage: str) -> None:
        """Save the resolved config and an env.json with versions, seed and command line."""
        if not self.is_main:
            return
        save_config(cfg, self.path / "config.yaml")
        env = {
            "stage": stage,
            "seed": seed,
            "versions": versions(),
            "command": sys.argv,
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json_atomic(env, self.path / "env.json")

    def log_metrics(self, record: dict[str, Any], step: int | None = None) -> None:
        """Append one record to metrics.jsonl and its scalars to TensorBoard."""
        if not self.is_main:
            return
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record, default=_json_default) + "\n")
            fh.flush()
        if step is not None:
            tb = self.tensorboard()
            for key, value in record.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    tb.add_scalar(key, value, step)
            tb.flush()

    def truncate_metrics(self, keep_until: int, key: str = "epoch") -> None:
        """On resume, drop metrics logged after the checkpoint so the file matches one run."""
        path = self.path / "metrics.jsonl"
        if not self.is_main or not path.is_file():
            return
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get(key, -1) <= keep_until
        ]
        path.write_text("".join(line + "\n" for line in kept))

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_results(self, results: dict[str, Any]) -> Path:
        return write_json_atomic(results, self.path / "results.json")

    def tensorboard(self):
        """A lazily created TensorBoard SummaryWriter under RUN/tb."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.path / "tb"))
        return self._tb

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
