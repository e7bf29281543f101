"""What a planned job's run directory holds, checked before anything is collected from it.

Collection must never take partial or foreign data for a whole run. For each job this decides:

- ``todo``: nothing there yet; ``unfinished``: metrics but no ``DONE`` (running, killed, or to resume);
  ``failed``: no ``DONE`` but a ``FAILED`` marker (the job stopped on an error, its reason inside);
- ``stale``: finished, but its ``run_config.yaml`` differs from what the experiment file now asks for
  (the settings changed after the run): its numbers belong to another config;
- ``done``: finished and current; ``read_run`` then checks its files are whole: ``summary.json`` parses,
  every metrics line but a torn last one is valid, and the rows reach the recorded step count
  (``steps_done``) and match the row count and last step summary.json records (``metrics_rows`` /
  ``metrics_last_step``) when the run recorded them.

A damaged file raises ``CorruptRun``: one line naming the file and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from normrepro.config import differing_keys as _diff_keys  # the same rule as the training side's RunDir.claim
from normrepro.config import result_config
from normrepro.errors import UserError
from normrepro.store import SchemaError, read_metrics

STATES = ("todo", "unfinished", "failed", "stale", "done")


class CorruptRun(UserError):
    """A finished run directory whose files are damaged or incomplete."""


class StaleRun(UserError):
    """Finished runs made with other settings than the experiment file now asks for."""


@dataclass
class RunState:
    state: str  # one of STATES
    run_dir: Path
    diff: list[str]  # stale: the config keys that differ


def _rerun(job) -> str:
    scale = job.cfg.scale.name
    return (f"delete {job.run_dir} and rerun `make reproduce-{job.cfg.experiment_id}"
            f"{'' if scale == 'cpu' else f' SCALE={scale}'}`")


def job_state(job) -> RunState:
    """The job's state (one of ``STATES``); raises CorruptRun for a finished run
    whose config file is missing or damaged."""
    run_dir = Path(job.run_dir)
    if not (run_dir / "DONE").exists():
        if (run_dir / "FAILED").exists():
            return RunState("failed", run_dir, [])
        started = (run_dir / "metrics.jsonl").exists()
        return RunState("unfinished" if started else "todo", run_dir, [])
    config_file = run_dir / "run_config.yaml"
    if not config_file.is_file():
        raise CorruptRun(f"{config_file} is missing (the run's config), so its results cannot be matched to "
                         f"the experiment; {_rerun(job)}")
    try:
        old = OmegaConf.to_container(OmegaConf.load(config_file))
    except Exception as err:  # a damaged YAML file fails in many ways
        raise CorruptRun(f"{config_file} does not parse ({type(err).__name__}); {_rerun(job)}") from None
    diff = sorted(_diff_keys(old, result_config(job.cfg)))
    return RunState("stale" if diff else "done", run_dir, diff)


def check_not_stale(jobs, states: list[RunState]) -> None:
    """Refuse to collect any finished run whose stored config differs from the planned one."""
    stale = [(job, s) for job, s in zip(jobs, states) if s.state == "stale"]
    if not stale:
        return
    exp, scale = jobs[0].cfg.experiment_id, jobs[0].cfg.scale.name
    listed = "; ".join(f"{s.run_dir} (keys {', '.join(s.diff[:6])})" for _, s in stale[:3])
    more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
    raise StaleRun(f"{len(stale)} finished run(s) of {exp} were made with other settings than "
                   f"configs/experiment/{exp}.yaml now asks for: {listed}{more}; delete them and rerun "
                   f"`make reproduce-{exp}{'' if scale == 'cpu' else f' SCALE={scale}'}`, or restore the "
                   "settings they were made with")


def read_summary(job) -> dict:
    path = Path(job.run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptRun(f"{path} is missing although DONE exists; {_rerun(job)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptRun(f"{path} is damaged (not JSON: {err.msg if hasattr(err, 'msg') else err}); "
                         f"{_rerun(job)}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("steps_done"), int) \
            or summary.get("status") not in ("done", "diverged"):
        raise CorruptRun(f"{path} lacks status/steps_done (not a run summary); {_rerun(job)}")
    return summary


def read_run(job) -> tuple[dict, pd.DataFrame]:
    """A finished job's summary and metrics rows, refusing files that are damaged or incomplete."""
    summary = read_summary(job)
    path = Path(job.run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise CorruptRun(f"{path} is missing although DONE exists; {_rerun(job)}")
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 1))
        ends_whole = fh.read(1) in (b"\n", b"")
    if not ends_whole:  # the writer flushes whole lines and closes before DONE: a torn tail is damage
        raise CorruptRun(f"{path}'s last line is torn although the run finished (the file is damaged); "
                         f"{_rerun(job)}")
    try:
        frame = read_metrics(path)
    except SchemaError as err:  # a line in the middle that is not JSON, or a row outside the schema
        raise CorruptRun(f"{' '.join(str(err).split())[:300]} (the file is damaged); {_rerun(job)}") from None
    except UnicodeDecodeError:
        raise CorruptRun(f"{path} is not UTF-8 text (the file is damaged); {_rerun(job)}") from None
    _check_complete(job, summary, frame, path)
    return summary, frame


def _recorded(summary: dict, *names: str):
    """The first of ``names`` the summary records (the run side names them ``metrics_rows`` /
    ``metrics_last_step``; ``rows`` / ``last_step`` are accepted too), else None."""
    return next((summary[n] for n in names if summary.get(n) is not None), None)


def _check_complete(job, summary: dict, frame: pd.DataFrame, path: Path) -> None:
    """The rows must be what the summary says the run left: a lost tail is partial data."""
    last = int(frame["step"].max()) if len(frame) else None
    summary_file = path.parent / "summary.json"
    rows = _recorded(summary, "metrics_rows", "rows")
    if rows is not None and len(frame) != int(rows):
        raise CorruptRun(f"{path} has {len(frame)} rows but {summary_file} records {rows} (rows lost or added "
                         f"after the run); {_rerun(job)}")
    last_step = _recorded(summary, "metrics_last_step", "last_step")
    if last_step is not None and last != int(last_step):
        raise CorruptRun(f"{path} ends at step {last} but {summary_file} records its last step as {last_step} "
                         f"(rows lost or added after the run); {_rerun(job)}")
    if last is None or last < int(summary["steps_done"]):  # the last evaluation is logged at steps_done
        raise CorruptRun(f"{path} ends at step {last} but {summary_file} says the run did "
                         f"{summary['steps_done']} steps (rows lost); {_rerun(job)}")
