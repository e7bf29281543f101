"""Errors that are the user's to fix: the entry point prints their one-line message instead of a traceback."""


class UserError(RuntimeError):
    """Base class: a message that says what is wrong and how to fix it."""


class ConfigError(UserError, ValueError):
    """An invalid config value (an unknown choice, an impossible combination)."""


class RunDirConflict(UserError):
    """A run directory already holds a run made with a different config."""


class RunBusy(UserError):
    """Another live process holds this run directory's lock (it is training that job right now)."""

    def __init__(self, message: str, holder_pid: int | None = None):
        super().__init__(message)
        self.holder_pid = holder_pid


class CheckpointDamaged(UserError):
    """A run's checkpoint.pt cannot be read back (truncated, overwritten, not a checkpoint)."""


class ConditionsChanged(UserError):
    """A checkpoint was made under other conditions (code, library versions, device, threads, data) than
    the ones this process would resume it under: the resumed run would not match an uninterrupted one."""


class StorageError(UserError):
    """The run directory cannot be written: not writable, read-only, or the disk is full."""
