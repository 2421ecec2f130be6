"""Self-describing run folders: config, versions, metrics.jsonl, results.json, TensorBoard.

Layout of a run folder::

    RUN/config.yaml        resolved config (what actually ran)
    RUN/env.json           versions (python, torch, genreid, git commit), seed, command, host
    RUN/metrics.jsonl      one JSON object per logged step/epoch, appended and flushed
    RUN/results.json       final figures and ``status`` (done, partial, stopped), atomic
    RUN/checkpoints/       last.pt (+ epoch_NNN.pt when kept), written atomically
    RUN/tb/                TensorBoard events
    RUN/figures/           PNGs
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genreid import __version__
from genreid.core.config import save_config
from genreid.core.errors import RunFolderError
from genreid.core.faults import crash_point
from genreid.core.files import json_default, write_json_atomic

__all__ = ["RunDir", "read_results", "require_run", "versions", "write_json_atomic"]


def versions() -> dict[str, str]:
    """Exact versions of what produced a run."""
    import numpy  # lazy: keeps importing this module (e.g. for --help) light
    import torch

    out = {
        "genreid": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }
    try:
        import torchvision  # lazy: as above; optional

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


def require_run(run: str | Path, what: str = "run") -> Path:
    """A run folder that holds ``config.yaml``, or a RunFolderError saying what it is not."""
    run = Path(run).expanduser()
    if not (run / "config.yaml").is_file():
        raise RunFolderError(
            f"expected a {what} folder with config.yaml at {run}, found "
            f"{'no such folder' if not run.exists() else 'none'}; pass the --out of that run"
        )
    return run


def read_results(run: str | Path) -> dict[str, Any] | None:
    """A run's results.json, or None when it has none (yet)."""
    path = Path(run) / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


class RunDir:
    """A run folder; only the main process writes (``is_main``)."""

    def __init__(self, path: str | Path, is_main: bool = True) -> None:
        self.path = Path(path)
        self.is_main = is_main
        self._tb = None
        self._purge_step: int | None = None
        if is_main:
            try:
                for sub in ("checkpoints", "figures"):
                    (self.path / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunFolderError(
                    f"cannot create the run folder {self.path}: {exc.strerror or exc}; choose "
                    "another --out"
                ) from None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

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
        line = json.dumps(record, default=json_default) + "\n"
        with open(self.metrics_path, "a") as fh:
            half = len(line) // 2
            fh.write(line[:half])
            fh.flush()
            crash_point("metrics_write")  # a line cut by a crash must not break a resume
            fh.write(line[half:])
            fh.flush()
        if step is not None:
            tb = self.tensorboard()
            for key, value in record.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    tb.add_scalar(key, value, step)
            tb.flush()

    def truncate_metrics(self, keep_until: int, key: str = "step") -> None:
        """On resume, drop what was logged after the checkpoint (and a line cut by a crash),
        and purge TensorBoard events after it, so the run reads as one uninterrupted run."""
        self._purge_step = keep_until + 1
        path = self.metrics_path
        if not self.is_main or not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a run killed while writing it
            if record.get(key, -1) <= keep_until:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        return [json.loads(x) for x in self.metrics_path.read_text().splitlines() if x.strip()]

    def write_results(self, results: dict[str, Any]) -> Path | None:
        if not self.is_main:
            return None
        return write_json_atomic(results, self.path / "results.json")

    def tensorboard(self):
        """A lazily created TensorBoard SummaryWriter under RUN/tb."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter  # lazy: pulls in tensorboard

            self._tb = SummaryWriter(log_dir=str(self.path / "tb"), purge_step=self._purge_step)
        return self._tb

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
