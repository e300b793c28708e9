"""Exceptions for user mistakes: each names the file (or input) and the problem.

The CLI and the server turn these into a one-line message / a JSON error instead of a traceback.
Anything that is not a ``MusiLingoError`` is a bug in musilingo.
"""

from __future__ import annotations


class MusiLingoError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class AudioError(MusiLingoError):
    """Audio that is missing, unreadable, truncated, empty, non-finite or too long."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class AudioTooLongError(AudioError):
    """Audio longer than the configured limit (a server answers 413 for it)."""


class ManifestError(MusiLingoError):
    """A manifest / dataset file that is malformed or points at missing audio."""


class CheckpointError(MusiLingoError):
    """A model folder or checkpoint that is missing, malformed or of the wrong shape."""


class ConfigError(MusiLingoError):
    """An invalid configuration value or preset name."""
