"""The compute estimate of ``make plan-<id>`` / ``plan-all`` (normrepro/budget.py): measured per-step cost of
each arm's finished runs, times a job's steps; arms with no finished run are counted, not guessed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from normrepro.budget import arm_key, estimate, per_step_costs


def _job(name: str, steps: int, done: bool = False):
    return SimpleNamespace(run_dir=Path("/runs/x") / name, cfg=SimpleNamespace(train=SimpleNamespace(steps=steps)),
                           done=done)


def test_arm_key_drops_only_the_seed():
    assert arm_key("norm=bn,seed=3,setting=a") == "norm=bn,setting=a"
    assert arm_key("seed=0") == ""


def test_estimate_scales_the_arm_mean_per_step_cost_and_counts_unmeasured(tmp_path):
    csv = tmp_path / "summary.csv"
    pd.DataFrame({"run": ["norm=bn,seed=0", "norm=bn,seed=1", "norm=none,seed=0"],
                  "wall_time_s": [10.0, 30.0, 5.0], "steps_done": [100, 100, 50]}).to_csv(csv, index=False)
    assert per_step_costs(csv) == {"norm=bn": 0.2, "norm=none": 0.1}
    jobs = [_job("norm=bn,seed=0", 100, done=True), _job("norm=bn,seed=7", 200), _job("norm=ln,seed=0", 100)]
    est = estimate(jobs, csv)
    assert est["seconds"] == 0.2 * 100 + 0.2 * 200 and est["todo_seconds"] == 0.2 * 200
    assert est["unmeasured"] == 1


def test_no_summary_means_every_job_unmeasured(tmp_path):
    est = estimate([_job("norm=bn,seed=0", 10)], tmp_path / "missing.csv")
    assert est == {"seconds": 0.0, "todo_seconds": 0.0, "unmeasured": 1}
