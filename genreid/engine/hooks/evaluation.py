"""Periodic evaluation: the task's ``evaluate`` every ``train.eval_every`` epochs and after
the last one; its values join the epoch's record and become results.json's ``final``."""

from __future__ import annotations

from typing import Any

from genreid.core.errors import NonFiniteFeaturesError
from genreid.core.faults import crash_point
from genreid.engine.errors import NonFiniteError
from genreid.engine.hooks.base import Hook


def evaluation_due(epoch: int, every: int, epochs: int) -> bool:
    """Whether the run evaluates after epoch ``epoch`` (0-based): every ``every`` (0: never
    before the end) and always after the last."""
    return bool(every and (epoch + 1) % every == 0) or epoch + 1 == epochs


class PeriodicEvaluation(Hook):
    """Evaluates when due; a NaN feature stops the run like a NaN loss."""

    def end_epoch(self, loop: Any, epoch: int) -> dict[str, Any]:
        """The evaluation's values (none when not due); ``loop.last_eval`` keeps them."""
        if not evaluation_due(epoch, loop.cfg.eval_every, loop.cfg.epochs):
            return {}
        try:
            evaluation = loop.task.evaluate()
        except NonFiniteFeaturesError as exc:  # stop like a NaN loss: the last good
            raise NonFiniteError(  # checkpoint stays, results.json says what happened
                f"evaluation after epoch {epoch + 1}: {exc}", loop.task.nan_advice
            ) from None
        crash_point("evaluation")
        if not evaluation:
            return {}
        loop.last_eval = {**evaluation, "epoch": epoch + 1}
        return evaluation
