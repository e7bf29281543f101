"""Collect an experiment's runs into two pandas frames.

``runs``: one row per finished job, with every config leaf that varies across the grid as a column
(``norm.kind``, ``seed``, ...), the summary (status, wall time, throughput), the final and best evaluations
(``results.py``, from the rows) and the derived metrics.
``metrics``: every metrics row of every job, with the same grid columns attached.

Only whole, current runs are collected (``run_check``): a finished run whose files are damaged or whose
stored config differs from the planned one stops the collection with a one-line error naming it; a job with
metrics (or a ``FAILED`` marker) but no ``DONE`` is reported as unfinished and left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from omegaconf import OmegaConf

from normrepro.analysis.columns import SUMMARY_KEYS, flatten
from normrepro.analysis.results import result_row
from normrepro.analysis.run_check import check_not_stale, job_state, read_run
from normrepro.analysis.spec_check import referenced_columns
from normrepro.config import result_config
from normrepro.plan import Job


@dataclass
class Collected:
    runs: pd.DataFrame
    metrics: pd.DataFrame
    grid_columns: list[str]  # config leaves that differ between jobs (seed included)
    jobs_total: int
    fixed: dict  # config leaves shared by every job
    unfinished: list = field(default_factory=list)  # run dirs with metrics or FAILED but no DONE (left out)


def collect(jobs: list[Job]) -> Collected:
    planned = [flatten(result_config(j.cfg)) for j in jobs]  # every job's config leaves, done or not
    states = [job_state(job) for job in jobs]
    check_not_stale(jobs, states)
    configs, summaries, frames = [], [], []
    for job, leaves, state in zip(jobs, planned, states):
        if state.state != "done":
            continue
        summary, frame = read_run(job)
        configs.append(leaves)
        summaries.append(summary)
        frame["run"] = job.run_dir.name
        frames.append(frame)
    unfinished = [s.run_dir for s in states if s.state in ("unfinished", "failed")]
    failed = sum(s.state == "failed" for s in states)
    print(f"jobs_done={len(configs)}/{len(jobs)}" + (
        f" ({len(unfinished)} unfinished{f', {failed} of them FAILED' if failed else ''}, left out: "
        f"no DONE in {unfinished[0]}{f' and {len(unfinished) - 1} more' if len(unfinished) > 1 else ''}; "
        f"resume with `make reproduce-{jobs[0].cfg.experiment_id}`)" if unfinished else ""))
    all_leaves = planned[0] if planned else {}
    grid = [k for k in all_leaves if len({str(p.get(k)) for p in planned}) > 1]
    if "seed" not in grid:
        grid.append("seed")
    fixed = {k: v for k, v in all_leaves.items() if k not in grid}
    # config keys the experiment's claims and plots name stay columns even where the sweep fixes them
    spec = {k: jobs[0].cfg.get(k) for k in ("claims", "plots")} if jobs else {}
    kept = grid + sorted(referenced_columns(OmegaConf.to_container(OmegaConf.create(spec), resolve=True))
                         & set(fixed))
    rows = []
    for job_leaves, summary, frame in zip(configs, summaries, frames):
        row = {k: job_leaves.get(k) for k in kept}
        row["run"] = frame["run"].iat[0] if len(frame) else None
        row["diverged"] = float(summary.get("status") == "diverged")
        for key in SUMMARY_KEYS:
            row[key] = summary.get(key)
        row.update(result_row(frame))  # final_* and best_*, from the evaluation rows
        rows.append(row)
    runs = pd.DataFrame(rows)
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(runs):
        metrics = metrics.merge(runs[kept + ["run"]], on="run", how="left")
    return Collected(runs, metrics, grid, len(jobs), fixed, unfinished)


def load_frames(out_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a report's committed frames back (notebooks, re-plotting without the runs)."""
    runs = pd.read_csv(out_dir / "summary.csv")
    metrics = pd.read_csv(out_dir / "metrics.csv.gz")
    return runs, metrics

