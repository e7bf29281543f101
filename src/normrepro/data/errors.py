"""Errors raised by the data layer.

Both errors print as a single line that names the offending path and says how to fix it, so a
failed sweep job shows the cause in its last log line instead of a traceback to dig through.
"""

from __future__ import annotations

from pathlib import Path

_FIX_MISSING = (
    "set NORMREPRO_DATA=<dir> (or data.root=...) to a folder that has it, "
    "or run `make data` on a connected machine"
)


def _one_line(text: str) -> str:
    """Collapse any line breaks (e.g. inside an exception text) so the message stays one line."""
    return " ".join(text.split("\n"))


class DatasetNotFound(RuntimeError):
    """A dataset (or one of its files) is not where the loader looked for it."""

    def __init__(self, dataset: str, path: str | Path, fix: str = _FIX_MISSING) -> None:
        self.dataset = dataset
        self.path = str(path)
        super().__init__(_one_line(f"{dataset} not found at {self.path}: {fix}"))


class CorruptDataset(DatasetNotFound):
    """A data or cache file exists but cannot be decoded (wrong size, bad header, not an image).

    It subclasses DatasetNotFound so callers that handle "no usable data" catch both.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.dataset = "data file"
        self.path = str(path)
        self.reason = reason
        # RuntimeError.__init__ directly: the parent's message (about a missing folder) would mislead.
        RuntimeError.__init__(
            self,
            _one_line(
                f"corrupt data file {self.path}: {reason}; delete it (and any cached .pt made from it) "
                "and retry, or fetch a fresh copy with `make data`"
            ),
        )


class UnsafePickle(CorruptDataset):
    """A pickled data file that asks to load something its format never needs (e.g. ``os.system``)."""

    def __init__(self, path: str | Path, global_name: str) -> None:
        self.dataset = "data file"
        self.path = str(path)
        self.reason = f"refused to unpickle {global_name}"
        RuntimeError.__init__(
            self,
            _one_line(
                f"unsafe pickle {self.path}: it asks for {global_name}, which a CIFAR-10 batch never contains "
                "(nothing was run); delete it and fetch a fresh copy with `make data`"
            ),
        )
