"""Checkpointing: ``checkpoints/last.pt`` after every epoch (and ``epoch_NNN.pt`` with
``train.keep_checkpoints``), every ``train.checkpoint_every`` steps within one, and where the
task finished mid-epoch; never with NaN or infinite weights. Loads it back on resume.

A checkpoint holds every registered module, optimizer, scheduler and scaler by name, the task's
own state, the RNG state, the loop's position and running epoch sums, the task's ``meta`` and,
when some hook keeps state, ``hooks`` (each such hook's ``state_dict`` by class name; a run
without one has no such key, so its checkpoints are as before).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genreid.core.checkpoint import atomic_save, load_checkpoint, rng_state, set_rng_state
from genreid.core.errors import RunFolderError
from genreid.engine.epoch_stats import StepInfo
from genreid.engine.errors import NonFiniteError, TrainingError
from genreid.engine.hooks.base import Hook

CHECKPOINT_FORMAT = 2
REGISTERED = ("modules", "optimizers", "schedulers", "scalers")  # Loop attributes, by name


def non_finite_tensors(state: dict[str, Any], prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state dict with a NaN or inf."""
    bad = []
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            bad += non_finite_tensors(value, name + ".")
        elif torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            bad.append(name)
    return bad


def hook_states(hooks: list[Hook]) -> dict[str, Any]:
    """The state of every hook that keeps some, by class name (two of one class with state
    would share a name, so they are refused)."""
    states: dict[str, Any] = {}
    for hook in hooks:
        state = hook.state_dict()
        if not state:
            continue
        name = type(hook).__name__
        if name in states:
            raise TrainingError(
                f"two {name} hooks keep state, and a checkpoint keeps it by class name: give "
                "one of them a subclass of its own"
            )
        states[name] = state
    return states


def loop_state(loop: Any) -> dict[str, Any]:
    """Everything a resume needs, as plain containers and tensors (``weights_only`` loads)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "task": loop.task.name,
        **{
            kind: {k: o.state_dict() for k, o in getattr(loop, kind).items()} for kind in REGISTERED
        },
        "task_state": loop.task.state_dict(),
        "rng": rng_state(),
        "loop": {
            "epoch": loop.epoch,
            "batch_in_epoch": loop.batch_in_epoch,
            "step": loop.step,
            "train_seconds": loop.train_seconds,
            "epoch_stats": loop.stats.state_dict(),
            "last_eval": dict(loop.last_eval),
        },
        "meta": loop.task.meta(),
    }
    hooks = hook_states(loop.hooks)
    if hooks:  # none: no key, so a checkpoint of a run without stateful hooks is unchanged
        state["hooks"] = hooks
    return state


class Checkpointer(Hook):
    """Saves at epoch ends, every ``train.checkpoint_every`` steps and when the task finished
    mid-epoch; :meth:`load` restores a resumed run. ``loop.saved_at`` is where last.pt is."""

    def after_step(self, loop: Any, at: StepInfo, values: dict[str, float]) -> None:
        """A mid-epoch checkpoint every ``train.checkpoint_every`` steps (not at an epoch's
        end, which saves anyway, nor once the task finished, which :meth:`after_train` saves)."""
        every = loop.cfg.checkpoint_every
        mid_epoch = loop.batch_in_epoch < at.length
        if every and loop.step % every == 0 and mid_epoch and not loop.task.finished():
            self.save(loop)

    def after_epoch(self, loop: Any, record: dict[str, Any]) -> None:
        """last.pt (and epoch_NNN.pt when kept) at every epoch's end."""
        keep = loop.cfg.keep_checkpoints
        self.save(loop, keep_as=f"epoch_{loop.epoch:03d}.pt" if keep else None)

    def after_train(self, loop: Any) -> None:
        """The task finished mid-epoch: keep where it stopped."""
        if loop.batch_in_epoch:
            self.save(loop)

    def save(self, loop: Any, keep_as: str | None = None) -> None:
        """Write checkpoints/last.pt atomically, never with NaN or infinite weights."""
        bad = non_finite_tensors({k: m.state_dict() for k, m in loop.modules.items()})
        if bad:
            raise NonFiniteError(
                f"{len(bad)} weight/buffer tensor(s) became NaN or inf (e.g. "
                f"{', '.join(bad[:3])}), so no checkpoint was written",
                loop.task.nan_advice,
            )
        if loop.is_main:
            state = loop_state(loop)
            atomic_save(state, loop.rundir.last_checkpoint)
            if keep_as:
                atomic_save(state, loop.rundir.checkpoints / keep_as)
        loop.saved_at = (loop.epoch, loop.batch_in_epoch, loop.step)

    def load(self, loop: Any, path: Path) -> None:
        """Restore a run from ``path``: registered objects, task state, RNG and position."""
        ckpt = load_checkpoint(path, map_location="cpu")  # RNG states must stay on the CPU
        task = loop.task
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("task") != task.name:
            raise RunFolderError(
                f"{path} is not a checkpoint of a genreid {task.name!r} run of this version "
                f"(format {ckpt.get('format')}, task {ckpt.get('task')!r}); start a new run"
            )
        task.check_checkpoint(ckpt.get("meta", {}), path)
        for kind in REGISTERED:
            objects, saved = getattr(loop, kind), ckpt.get(kind, {})
            missing = sorted(set(objects) - set(saved))
            if missing:
                raise RunFolderError(
                    f"{path} holds no {kind} {', '.join(missing)}; start a new run"
                )
            for name, obj in objects.items():
                if saved[name]:
                    obj.load_state_dict(saved[name])
        task.load_state_dict(ckpt.get("task_state", {}))
        hooks = ckpt.get("hooks", {})
        for hook in loop.hooks:
            if type(hook).__name__ in hooks:
                hook.load_state_dict(hooks[type(hook).__name__])
        set_rng_state(ckpt["rng"])
        pos = ckpt["loop"]
        loop.epoch, loop.batch_in_epoch = int(pos["epoch"]), int(pos["batch_in_epoch"])
        loop.step = int(pos["step"])
        loop.train_seconds = float(pos.get("train_seconds", 0.0))
        loop.stats.load_state_dict(pos.get("epoch_stats", {}))
        loop.last_eval = dict(pos.get("last_eval", {}))
        loop.saved_at = (loop.epoch, loop.batch_in_epoch, loop.step)
        loop.rundir.truncate_metrics(loop.step)
        task.after_load()
