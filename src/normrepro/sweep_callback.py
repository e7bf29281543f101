"""Hydra callbacks (configs/train.yaml, ``hydra.callbacks``): a sweep runs all its jobs, then exits non-zero
naming the ones that failed; and after each job, one progress line for the whole sweep.

A failing job leaves ``FAILED`` in its run directory (guard.py) and returns normally, so Hydra goes on with
the other jobs. The jobs may run in other processes (the joblib launcher's workers, submitit's jobs), so
these callbacks read and write what they share on disk: ``FailedJobsReport`` the markers written during
this sweep, i.e. new or changed since ``on_multirun_start``; ``SweepProgress`` one small file per finished
job under ``<sweep dir>/.progress/<launch>/``, removed when the sweep ends.

Hydra calls ``on_job_start`` / ``on_job_end`` in the process that runs the job, with a copy of the callback
as it was when the jobs were launched (after ``on_multirun_start``), so every copy knows the sweep's size and
start time; what the other jobs did it learns from the files.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from normrepro.guard import FAILED_NAME

log = logging.getLogger("normrepro.sweep")
PROGRESS_DIR = ".progress"
OUTCOMES = ("trained", "skipped", "failed")  # skipped: finished before, or being trained by another process


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


def sweep_size(config: DictConfig) -> int | None:
    """The number of jobs Hydra's basic sweeper makes of this sweep: the config's ``hydra.sweeper.params``
    (the experiment's grid), then the command line's overrides, as the sweeper combines them (plan.py does
    the same); None for another sweeper."""
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return None
    params = OmegaConf.to_container(sweeper.get("params") or {}, resolve=False)
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return len(BasicSweeper.split_arguments(parsed, max_batch_size=None)[0])


def _hms(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class SweepProgress(Callback):
    """After each job: ``[sweep demo/cpu] 4/10 jobs (3 trained, 1 skipped, 0 failed) | 1m05s | ETA 1m40s``.

    The ETA is the time so far per trained job times the jobs left, so it counts the launcher's parallelism
    and leaves out the jobs that only found their run finished."""

    def __init__(self) -> None:
        self.name, self.total, self.start, self.folder = "", None, 0.0, None
        self.job_before: tuple[bool, tuple | None] = (False, None)  # DONE there, FAILED's version, at job start

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.name = f"{config.get('experiment_id', 'adhoc')}/{OmegaConf.select(config, 'scale.name', default='-')}"
        self.start = time.time()
        self.total = sweep_size(config)
        launch = f"{os.uname().nodename}-{os.getpid()}-{time.time_ns()}"
        self.folder = Path(config.hydra.sweep.dir) / PROGRESS_DIR / launch
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.runtime.output_dir)
        self.job_before = ((run_dir / "DONE").exists(), _version(run_dir / FAILED_NAME))

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if self.folder is None:  # a single run, not a sweep
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        done_before, failed_before = self.job_before
        failed = _version(run_dir / FAILED_NAME)
        if (run_dir / "DONE").exists() and not done_before:
            outcome = "trained"
        elif failed is not None and failed != failed_before:
            outcome = "failed"
        else:
            outcome = "skipped"  # finished before, or another process holds it
        record = self.folder / f"{config.hydra.job.num}"
        tmp = record.with_name(f".{record.name}.tmp")
        tmp.write_text(outcome + "\n", encoding="utf-8")
        os.replace(tmp, record)  # whole or absent: another job may be counting right now
        log.info("%s", self.line(_count(self.folder)))

    def line(self, counts: dict[str, int]) -> str:
        done = sum(counts.values())
        elapsed = time.time() - self.start
        total = self.total if self.total is not None else "?"
        text = (f"[sweep {self.name}] {done}/{total} jobs ("
                + ", ".join(f"{counts[k]} {k}" for k in OUTCOMES) + f") | {_hms(elapsed)}")
        if self.total is not None and done >= self.total:
            return text + " | all done"
        if self.total is not None and counts["trained"]:
            return text + f" | ETA {_hms(elapsed / counts['trained'] * (self.total - done))}"
        return text + " | ETA -"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.folder is None:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # .progress/ itself, unless another launch of this sweep is running
        except OSError:
            pass


def _version(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _count(folder: Path) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for record in folder.iterdir():
        if record.name.startswith("."):
            continue
        try:
            outcome = record.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            continue
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
