"""Atomic checkpoints loaded with ``weights_only=True``, and RNG state for exact resume.

A training checkpoint (written by the loop's ``genreid.engine.hooks.checkpoints``) holds
``modules``, ``optimizers``, ``schedulers``, ``scalers`` (name -> state dict), the task's own
``task`` state, ``rng``, the loop position ``loop`` and ``meta`` (what a reader needs to
rebuild the networks).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genreid.core.errors import CheckpointError
from genreid.core.faults import crash_point
from genreid.core.text import first_line

__all__ = [
    "CheckpointError", "atomic_save", "load_checkpoint", "module_state", "rng_state",
    "seed_everything", "set_rng_state",
]  # fmt: skip


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        crash_point("checkpoint_write")
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    crash_point("checkpoint_renamed")
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (a power cut after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded ({first_line(exc, None)}); "
            "delete it to fall back to the previous one"
        ) from exc


def load_run_checkpoint(run: str | Path, name: str = "last.pt") -> dict:
    """A run folder's checkpoint ``checkpoints/NAME``; missing means no epoch has finished."""
    path = Path(run) / "checkpoints" / name
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist: the run has not finished an epoch yet; train it longer "
            "or resume it with `genreid train --out RUN --resume`"
        )
    return load_checkpoint(path)


def module_state(ckpt: dict[str, Any], name: str) -> dict[str, torch.Tensor]:
    """The state dict of module ``name`` (``model``, ``G``, ...) of a training checkpoint."""
    modules = ckpt.get("modules", {})
    if name in modules:
        return modules[name]
    if isinstance(ckpt.get(name), dict):  # checkpoints of genreid 0.1.0 kept them at the top
        return ckpt[name]
    raise CheckpointError(
        f"the checkpoint holds no module {name!r} (it has {', '.join(modules) or 'none'}); "
        "is it from another kind of run?"
    )


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors/plain values (safe for weights_only)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": torch.tensor(list(map(int, _py_state_words())), dtype=torch.int64),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_words() -> list[int]:
    version, words, gauss = random.getstate()
    return list(words)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    words = tuple(int(x) for x in state["python"].tolist())
    random.setstate((3, words, None))
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
