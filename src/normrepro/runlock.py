"""One process per run directory: an exclusive ``fcntl.flock`` on ``<run_dir>/.lock``, held for the whole job.

Why flock and not a marker file: the kernel drops the lock when the holder's file descriptor closes, which
includes the holder being killed (kill -9, the OOM killer, a preempted node), so a dead job never blocks its
directory and nothing needs cleaning up after a crash. Two launchers of the same sweep therefore never train
the same job at once: the second finds the lock taken and skips that job (``RunBusy``).

The lock file holds the holder's pid, for the message the other launcher prints. The holder deletes the file
while it still holds the lock, so a finished directory holds only its results. An acquirer may thus lock a
file that its holder has just deleted; it checks, once locked, that the file at the path is still the one it
locked, and otherwise tries again on the new one.

The descriptor is not inherited by child processes (Python opens files non-inheritable and ``subprocess``
closes the others), so a torchrun worker cannot keep a lock alive after its launcher died.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from normrepro.errors import RunBusy

LOCK_NAME = ".lock"
# Set by distributed.launch for its torchrun workers: the run directory their launcher holds the lock of.
INHERITED_ENV = "NORMREPRO_LOCKED_RUN_DIR"

_held: dict[Path, int] = {}  # resolved run directory -> the descriptor of the lock this process holds


def acquire(run_dir: Path, label: str) -> int:
    """Take ``run_dir``'s lock without waiting; returns its descriptor. Raises ``RunBusy`` naming the job and
    the holder's pid when another process (or another job of this process) holds it."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"process {pid}" if pid else "another process"
            raise RunBusy(f"[{label}] skipped: {run_dir} is being trained by {who} (it holds {path}); "
                          "launch again after that process ends to resume or skip it", pid) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_file_at(fd, path):
            break
        os.close(fd)  # we locked a file its holder deleted on release: lock the one at the path now
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[run_dir.resolve()] = fd
    return fd


def release(run_dir: Path) -> None:
    """Delete the lock file, then drop the lock (in that order: no one can lock the file in between)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is None:
        return
    try:
        (Path(run_dir) / LOCK_NAME).unlink(missing_ok=True)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def hold(run_dir: Path, label: str) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the body (the whole job)."""
    acquire(run_dir, label)
    try:
        yield
    finally:
        release(run_dir)


def holds(run_dir: Path) -> bool:
    """Whether this process may rewrite files of ``run_dir``: it holds the lock, or it is a torchrun worker
    whose launcher holds it (and the lock is in fact taken)."""
    key = Path(run_dir).resolve()
    if key in _held:
        return True
    return os.environ.get(INHERITED_ENV) == str(key) and is_locked(key)


def is_locked(run_dir: Path) -> bool:
    """Whether some process holds ``run_dir``'s lock (probed with a shared lock that is dropped at once)."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's shared lock if it got one


def holder_pid(run_dir: Path) -> int | None:
    """The pid recorded in ``run_dir``'s lock file (meaningful only while ``is_locked``)."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None  # empty: the holder has locked but not yet written it


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)
