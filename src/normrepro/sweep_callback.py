"""Hydra callback (configs/train.yaml, ``hydra.callbacks``): a sweep runs all its jobs, then exits non-zero
naming the ones that failed.

A failing job leaves ``FAILED`` in its run directory (guard.py) and returns normally, so Hydra goes on with
the other jobs. The jobs may run in other processes (the joblib launcher's workers), so this callback reads
the markers from disk: those written during this sweep, i.e. new or changed since ``on_multirun_start``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from normrepro.guard import FAILED_NAME


def _markers(sweep_dir: Path) -> dict[Path, tuple[int, int, int]]:
    """Every FAILED under the sweep directory with what identifies this version of it."""
    found = {}
    for path in sweep_dir.rglob(FAILED_NAME):
        try:
            st = path.stat()
        except FileNotFoundError:  # removed by a job of a concurrent launch
            continue
        found[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


class FailedJobsReport(Callback):
    def __init__(self) -> None:
        self.before: dict[Path, tuple[int, int, int]] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.before = _markers(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(p for p, version in _markers(sweep_dir).items() if self.before.get(p) != version)
        if not failed:
            return
        names = ", ".join(str(p.parent.relative_to(sweep_dir)) for p in failed)
        # SystemExit passes through Hydra's callback wrapper (which only catches Exception): the sweep's status
        sys.exit(f"error: {len(failed)} job(s) of this sweep failed: {names} (in {sweep_dir}; each one's FAILED "
                 "holds the reason); fix them and launch again: finished jobs are skipped")
