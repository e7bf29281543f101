"""Deterministic run directories: skip finished jobs, refuse to mix configs, checkpoint and resume.

``runs/<experiment>/<scale>/<override_dirname>/`` holds ``run_config.yaml`` (the resolved config that
determines the result), ``metrics.jsonl``, ``summary.json``, ``checkpoint.pt`` and, written last, ``DONE``;
while a job runs, ``.lock`` (runlock.py); after a job failed, ``FAILED`` (its one-line reason, guard.py).

A run marked DONE is whole: its metrics are flushed and fsync'd, its summary (which records how many metric
rows and which last step the metrics hold) is written atomically, and DONE comes after both. A checkpoint
loads with ``weights_only=True`` (tensors, numbers, strings, lists and dicts only) and carries the conditions
it was made under (conditions.py); a damaged one, or one made under other conditions, is refused with one
line before anything in the directory is touched.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from normrepro import conditions as run_conditions
from normrepro import runlock
from normrepro.config import differing_keys as _diff_keys
from normrepro.config import result_config
from normrepro.errors import CheckpointDamaged, ConditionsChanged, RunDirConflict
from normrepro.store import count_rows, truncate_after

log = logging.getLogger(__name__)


class RunDir:
    def __init__(self, path: Path, cfg: DictConfig):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = result_config(cfg)
        self.config_file = self.path / "run_config.yaml"
        self.metrics_file = self.path / "metrics.jsonl"
        self.summary_file = self.path / "summary.json"
        self.checkpoint_file = self.path / "checkpoint.pt"
        self.done_file = self.path / "DONE"
        self.failed_file = self.path / "FAILED"
        self.conditions: dict | None = None  # this process's conditions (set by train.run), saved with checkpoints
        self.changed_conditions: list[str] = []  # what differed from the checkpoint's, when resumed anyway

    def claim(self) -> None:
        """Record this run's config, or check it equals the one already recorded here."""
        if self.config_file.exists():
            old = OmegaConf.to_container(OmegaConf.load(self.config_file))
            diff = sorted(_diff_keys(old, self.config))
            if diff:
                raise RunDirConflict(
                    f"{self.path} holds a run with a different config (keys {', '.join(diff[:6])}); "
                    f"delete that directory or choose another paths.runs")
        else:
            OmegaConf.save(OmegaConf.create(self.config), self.config_file)

    @property
    def done(self) -> bool:
        return self.done_file.exists()

    def save_checkpoint(self, state: dict) -> None:
        if self.conditions is not None:
            state = {**state, "conditions": self.conditions}
        buffer = io.BytesIO()
        torch.save(state, buffer)  # in memory first: Python's own write then reports a full disk as ENOSPC
        _write_atomic(self.checkpoint_file, buffer.getbuffer())  # a kill mid-save keeps the previous one

    def load_checkpoint(self, discard_bad: bool = False, allow_changed_conditions: bool = False) -> dict | None:
        """The checkpoint to resume from, or None to start at step 0.

        A file that does not load as a checkpoint raises ``CheckpointDamaged`` (or, with ``discard_bad``, is
        deleted with a warning and the run restarts); one made under other conditions than ``self.conditions``
        raises ``ConditionsChanged`` (or, with ``allow_changed_conditions``, is resumed and the changes are
        kept in ``changed_conditions`` for the summary)."""
        if not self.checkpoint_file.exists():
            return None
        try:
            ckpt = torch.load(self.checkpoint_file, map_location="cpu", weights_only=True)
            if not (isinstance(ckpt, dict) and isinstance(ckpt.get("step"), int) and "model" in ckpt):
                raise ValueError("not a checkpoint of this project")
        except Exception as err:  # truncated, overwritten or foreign files fail in many different ways
            if discard_bad:
                log.warning("%s is damaged (%s); train.discard_bad_checkpoint=true: deleting it, restarting "
                            "this run from step 0", self.checkpoint_file, _one_line(err))
                self.checkpoint_file.unlink()
                return None
            raise CheckpointDamaged(
                f"{self.checkpoint_file} is damaged ({_one_line(err)}); delete it to restart this run from step 0, "
                "or run with train.discard_bad_checkpoint=true") from None
        if self.conditions is not None:
            changed = run_conditions.differences(ckpt.get("conditions"), self.conditions)
            if changed and not allow_changed_conditions:
                what = "; ".join(changed) if "conditions" in ckpt else "it records none (an older version made it)"
                raise ConditionsChanged(
                    f"{self.checkpoint_file} was made under other conditions ({what}): resuming would not give "
                    "an uninterrupted run's numbers; restore them, or delete the checkpoint to restart from "
                    "step 0, or run with train.allow_changed_conditions=true")
            if changed:
                log.warning("%s was made under other conditions (%s); train.allow_changed_conditions=true: "
                            "resuming anyway", self.checkpoint_file, "; ".join(changed))
            self.changed_conditions = changed
        return ckpt

    def truncate_metrics(self, step: int) -> None:
        """Drop metric rows logged after ``step`` (the resumed run logs them again). Rewriting the file is only
        safe while no other process writes it, so this process must hold the directory's lock."""
        if not runlock.holds(self.path):
            raise RuntimeError(f"refusing to rewrite {self.metrics_file}: this process does not hold {self.path}'s "
                               "lock (another process may be writing it)")
        truncate_after(self.metrics_file, step)

    def finish(self, summary: dict) -> None:
        """Mark the run DONE once it is whole. The caller has closed the metrics writer (which fsyncs);
        ``summary`` gains the row count and last step of metrics.jsonl and the run's conditions, then is
        written atomically; DONE follows; the checkpoint goes last (a kill before that leaves a DONE run with
        a stale checkpoint, which the next launch deletes, never a run that must start over)."""
        rows, last_step = count_rows(self.metrics_file)
        summary.update({"metrics_rows": rows, "metrics_last_step": last_step})
        if self.conditions is not None:
            summary.update({"conditions": self.conditions, "conditions_changed": self.changed_conditions})
        _write_atomic(self.summary_file, json.dumps(summary, indent=2, default=str) + "\n")
        _write_atomic(self.done_file, summary.get("status", "done") + "\n")
        self.checkpoint_file.unlink(missing_ok=True)  # finished runs keep metrics, not weights
        self.failed_file.unlink(missing_ok=True)
        _fsync_dir(self.path)

    def read_summary(self) -> dict:
        return json.loads(self.summary_file.read_text(encoding="utf-8"))


def _write_atomic(path: Path, data: str | bytes | memoryview) -> None:
    """Write ``data`` to a temporary file, fsync it and rename it over ``path``: readers see the old file or
    the whole new one, also after a crash; a failed write (full disk) leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    """Persist the directory's entries (the renames above) on file systems that need it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _one_line(err: BaseException) -> str:
    """A short reason. torch's weights-only refusal explains how to load untrusted files unsafely, which is not
    the way out here, so it is summarized."""
    text = " ".join(str(err).split())
    if "Weights only load failed" in text:
        text = "it does not unpickle as plain tensors, numbers and containers (weights_only=True)"
    return f"{type(err).__name__}: {text[:160]}"


