"""The root of every error a user can cause, so the command line catches them in one place.

A ``GenreidError`` means bad input (a config key, a dataset folder, a run folder, a file):
its message says what was expected and how to fix it, and the command line prints it and
exits with code 1. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class GenreidError(Exception):
    """An error caused by the user's input; the message says what to do."""


class ConfigError(GenreidError, ValueError):
    """A config file or override that does not fit the config's schema."""


class RunFolderError(GenreidError, ValueError):
    """An output folder that cannot be started or resumed as asked."""


class CheckpointError(GenreidError, RuntimeError):
    """A checkpoint file that cannot be read back (truncated, foreign, or unsafe)."""


class RegistryError(GenreidError, ValueError):
    """An unknown name for a registered thing (dataset, strategy, architecture, ...)."""


class NonFiniteFeaturesError(GenreidError, ValueError):
    """A network's test features hold NaN or inf (its eval-mode activations overflowed)."""
