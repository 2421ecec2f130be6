"""The errors a training run raises: one that cannot start or go on, and a deliberate stop.

They live below the loop so that its hooks (``engine/hooks/``) can raise them too; tasks import
them from ``genreid.engine.loop`` as before.
"""

from __future__ import annotations

from genreid.core.errors import GenreidError


class TrainingError(GenreidError, RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class TrainingStopped(TrainingError):
    """Training stopped on purpose (a diverged loss, a collapsed GAN); the last good checkpoint
    is kept. ``what`` says what happened, ``advice`` what to try."""

    def __init__(self, what: str, advice: str = "", message: str | None = None) -> None:
        self.what, self.advice = what, advice
        super().__init__(message or what)


class NonFiniteError(TrainingStopped):
    """A loss, or the weights at checkpoint time, became NaN or infinite."""
