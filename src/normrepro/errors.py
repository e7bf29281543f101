"""Errors that are the user's to fix: the entry point prints their one-line message instead of a traceback."""


class UserError(RuntimeError):
    """Base class: a message that says what is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """An invalid config value (an unknown choice, an impossible combination)."""


class RunDirConflict(UserError):
    """A run directory already holds a run made with a different config."""
