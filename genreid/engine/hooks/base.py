"""The hook interface of the training loop (after fast-reid's ``HookBase``).

A hook sees the :class:`~genreid.engine.loop.Loop` at fixed points of a run and may act on it:
write a checkpoint, evaluate, log, show progress. Every method does nothing by default, so a
hook overrides only the points it needs. The loop calls each point on its hooks in their order
(``Loop.hooks``: the built-in ones, then any passed to ``Loop(..., hooks=[...])``):

``before_setup`` (nothing set up yet), ``before_train`` (set up; a resumed run restored),
then per epoch ``before_epoch``, per step ``before_step`` and ``after_step``, at the epoch's
end ``end_epoch`` (values for its record) and ``after_epoch`` (the epoch counts as completed),
then ``after_train`` (training ended without an error) and always ``close``.

A hook that keeps state across a run (a counter, a best score) returns it from
``state_dict``: checkpoints keep it under the hook's class name, and a resumed run hands it
back to ``load_state_dict`` before ``before_train``. It is taken when a checkpoint is written,
which is during ``after_step`` (mid-epoch) or ``after_epoch``, before the hooks after the
:class:`Checkpointer` (every user hook) get that call: update what a resume needs at the
points before (``before_step``, ``end_epoch``), as in detectron2, whose checkpointer is a hook
among the others too.
"""

from __future__ import annotations

from typing import Any

from genreid.engine.epoch_stats import StepInfo


class Hook:
    """One concern of the loop that is not the task's: override the points it acts at."""

    def before_setup(self, loop: Any) -> None:
        """Before the loop sets up anything (threads, device, run folder, the task)."""

    def before_train(self, loop: Any) -> None:
        """After set-up (run folder, device, the task's modules; on resume, the checkpoint
        restored), before the first epoch; also when a resumed run has nothing left to do."""

    def before_epoch(self, loop: Any, epoch: int) -> None:
        """Before epoch ``epoch`` (0-based) or, on a resume mid-epoch, its rest; the epoch's
        seed is set."""

    def before_step(self, loop: Any, at: StepInfo) -> None:
        """With the step's batch read, before the task trains on it."""

    def after_step(self, loop: Any, at: StepInfo, values: dict[str, float]) -> None:
        """After the task trained on a batch (``values``: its logged scalars); ``loop.step``
        and the epoch's sums (``loop.stats``) count it."""

    def end_epoch(self, loop: Any, epoch: int) -> dict[str, Any]:
        """After an epoch's steps and the task's ``end_epoch``, before the epoch counts as
        completed: values to add to its record (e.g. an evaluation)."""
        return {}

    def after_epoch(self, loop: Any, record: dict[str, Any]) -> None:
        """The epoch counts as completed (``loop.epoch`` is their number); ``record`` is its
        entry of metrics.jsonl, without the ``step``, ``epoch`` and ``epoch_end`` keys."""

    def after_train(self, loop: Any) -> None:
        """Training ended without an error (all epochs, the task finished or ``stop_after``)."""

    def close(self, loop: Any) -> None:
        """At the very end of a run, also after an error: release what the hook holds."""

    def state_dict(self) -> dict[str, Any]:
        """State to keep in every checkpoint, as plain containers and tensors (loaded with
        ``weights_only``); empty (the default): the hook keeps none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` from a resumed run's checkpoint (before ``before_train``;
        not called when the checkpoint holds none for this hook)."""
