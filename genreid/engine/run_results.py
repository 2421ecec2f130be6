"""results.json of a training run: ``done`` or ``partial`` when a call ends, ``stopped`` (with
the reason, advice and the last good checkpoint) when training stopped on purpose."""

from __future__ import annotations

from typing import Any

from genreid.engine.errors import TrainingStopped


def final_results(loop: Any) -> dict[str, Any]:
    """The results of a call that ended normally; written unless it was cut short on purpose
    (``stop_after``) before the run completed."""
    results: dict[str, Any] = {
        "status": "done" if loop.epoch >= loop.cfg.epochs else "partial",
        "epochs_completed": loop.epoch,
        "epochs": loop.cfg.epochs,
        "steps": loop.step,
        "world_size": loop.dist.world_size,
        "train_seconds": round(loop.train_seconds, 3),
        "seconds_this_call": round(loop.seconds_this_call, 3),
        "checkpoint": str(loop.rundir.last_checkpoint),
        "fast_path": loop.fast_path(),
        **loop.task.results(),
    }
    if loop.last_eval:
        results["final"] = dict(loop.last_eval)
    if loop.stop_after is None or loop.complete():
        loop.rundir.write_results(results)
    return results


def kept_checkpoint(loop: Any) -> str:
    """What a stopped run kept: the last good checkpoint and how to go on from it."""
    if loop.saved_at is None:
        return "No checkpoint had been saved yet."
    epoch, batch, step = loop.saved_at
    where = f"after epoch {epoch}" if batch == 0 else f"epoch {epoch + 1}, step {step}"
    return (
        f"The last good checkpoint {loop.rundir.last_checkpoint} ({where}) is kept; continue "
        "from it with --resume after changing the config."
    )


def stopped_results(loop: Any, exc: TrainingStopped) -> TrainingStopped:
    """Log and record why training stopped; the error to raise, with the full message (where,
    what, the checkpoint kept, what to try)."""
    pos = loop.position
    where = f"epoch {pos.epoch + 1}, step {pos.index + 1} of {pos.length}"
    message = f"{loop.task.label}training stopped at {where}: {exc.what}. {kept_checkpoint(loop)}"
    if exc.advice:
        message += f" Try: {exc.advice}"
    if loop.rundir is not None:
        loop.log({"event": "stopped", "reason": exc.what})
        last_good = None
        if loop.saved_at is not None:
            epochs, _, step = loop.saved_at
            last_good = {"path": str(loop.rundir.last_checkpoint), "epochs": epochs, "step": step}
        loop.rundir.write_results(
            {
                "status": "stopped",
                "reason": exc.what,
                "advice": exc.advice,
                "epochs_completed": loop.epoch,
                "step": loop.step,
                "last_good_checkpoint": last_good,
                **loop.task.results(),
            }
        )
    return type(exc)(exc.what, exc.advice, message)
