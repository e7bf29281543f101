"""What surrounds one job: its run directory's lock, a ``FAILED`` marker when it fails, and storage errors
(a runs/ folder that cannot be written, a full disk) turned into one line that names the path and the fix.

The lock makes a job run in one process at a time (runlock.py); the marker lets a sweep report, at its end,
which of its jobs failed and why (sweep_callback.py), while the jobs after a failed one still run.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from normrepro import runlock
from normrepro.data.errors import DatasetNotFound
from normrepro.errors import StorageError, UserError

FAILED_NAME = "FAILED"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)

T = TypeVar("T")


def guarded(run_dir: Path, label: str, job: Callable[[], T]) -> T:
    """``job()`` while holding ``run_dir``'s lock. Raises ``RunBusy`` (touching nothing) when another process
    holds it; a failure leaves ``FAILED`` with its one-line reason and is raised again (an OSError of the
    storage as a ``StorageError``); a new attempt first removes an old ``FAILED``."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with runlock.hold(run_dir, label):
            (run_dir / FAILED_NAME).unlink(missing_ok=True)
            try:
                return job()
            except Exception as err:
                reported = storage_error(err, run_dir) or err
                mark_failed(run_dir, reported)
                if reported is err:
                    raise
                raise reported from err
    except OSError as err:  # creating the directory or its lock file
        reported = storage_error(err, run_dir)
        if reported is None:
            raise
        raise reported from err


def mark_failed(run_dir: Path, err: BaseException) -> None:
    """Leave ``FAILED`` holding the reason in one line (best effort: the disk may be what failed)."""
    reason = str(err) if isinstance(err, (UserError, DatasetNotFound)) else f"{type(err).__name__}: {err}"
    try:
        (Path(run_dir) / FAILED_NAME).write_text(" ".join(reason.split()) + "\n", encoding="utf-8")
    except OSError:
        pass


def storage_error(err: BaseException, run_dir: Path) -> StorageError | None:
    """The one-line ``StorageError`` for a full disk or a path that cannot be written; None for other errors."""
    if not isinstance(err, OSError) or err.errno not in DISK_FULL + NOT_WRITABLE:
        return None
    where = Path(err.filename) if err.filename else run_dir
    reason = err.strerror or errno.errorcode.get(err.errno, str(err.errno))
    if err.errno in DISK_FULL:
        return StorageError(
            f"no space left writing {where} ({reason}): free space on that disk or set paths.runs=<a folder on "
            "another disk> (NORMREPRO_RUNS), then launch again (the job resumes from its last checkpoint)")
    if _is_runs_path(where, run_dir):
        return StorageError(
            f"cannot write {where} ({reason}): make {_existing_ancestor(where)} writable or set "
            "paths.runs=<a writable folder> (NORMREPRO_RUNS)")
    return StorageError(f"cannot access {where} ({reason}): fix its permissions")


def _is_runs_path(path: Path, run_dir: Path) -> bool:
    """``path`` lies inside the run directory or is one of its parents (runs/ itself, say)."""
    path, run_dir = path.absolute(), run_dir.absolute()
    return path == run_dir or run_dir in path.parents or path in run_dir.parents


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path
