"""How long an experiment's sweep takes, estimated from measured runs (``make plan-<id>`` / ``plan-all``).

The measurement is each arm's committed ``results/<id>/summary.csv`` (or a fresher one passed in): wall
seconds per step of the finished runs (training, evaluations, probes and logging, amortized over the
steps), averaged over the arm's seeds. A job's estimate is that cost times its own ``train.steps``; an arm
with no finished run is counted as unmeasured, not guessed. The suite budget is the performance issue's:
6 job-hours at cpu scale (3 hours of wall time with 2 jobs on 2 cores).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SUITE_BUDGET_JOB_S = 6 * 3600.0  # cpu scale, every experiment, >= 5 seeds


def arm_key(run_name: str) -> str:
    """A run directory's name without its seed: the runs of one arm share it."""
    return ",".join(p for p in run_name.split(",") if not p.startswith("seed="))


def per_step_costs(summary_csv: Path) -> dict[str, float]:
    """Arm key -> mean wall seconds per step of its finished runs."""
    if not Path(summary_csv).exists():
        return {}
    runs = pd.read_csv(summary_csv)
    needed = {"run", "wall_time_s", "steps_done"}
    if not needed <= set(runs.columns):
        return {}
    runs = runs[(runs["steps_done"] > 0) & runs["wall_time_s"].notna()]
    cost = runs["wall_time_s"] / runs["steps_done"]
    return cost.groupby(runs["run"].map(arm_key)).mean().to_dict()


def estimate(jobs, summary_csv: Path) -> dict:
    """{seconds, todo_seconds, unmeasured}: the sweep's estimated job-seconds, those of the jobs not done,
    and how many jobs have no measured arm."""
    costs = per_step_costs(summary_csv)
    total = todo = 0.0
    unmeasured = 0
    for job in jobs:
        cost = costs.get(arm_key(job.run_dir.name))
        if cost is None:
            unmeasured += 1
            continue
        seconds = cost * int(job.cfg.train.steps)
        total += seconds
        todo += 0.0 if job.done else seconds
    return {"seconds": total, "todo_seconds": todo, "unmeasured": unmeasured}
