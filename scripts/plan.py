"""Print the jobs an experiment would run (``make plan-<id>``), with their run directories, state and the
estimated compute; or, with ``--all`` (``make plan-all``), one line per experiment and the suite's total
against its budget.

    python scripts/plan.py bn_mnist [--scale cpu] [overrides ...]
    python scripts/plan.py --all [--scale cpu]

Planning checks the experiment's derived / claims / plots blocks first (a typo fails here, before any
training). A job's state is ``todo``, ``unfinished`` (metrics but no DONE: it resumes), ``done``, or
``stale`` (finished with other settings than the experiment file now asks for: delete it to rerun).
Estimates come from the measured per-step cost of each arm's committed runs (``normrepro.budget``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from normrepro.analysis.run_check import CorruptRun, job_state
from normrepro.budget import SUITE_BUDGET_JOB_S, estimate
from normrepro.config import CONFIG_DIR
from normrepro.errors import UserError
from normrepro.plan import plan_jobs

REPO = Path(__file__).resolve().parents[1]


def _summary_csv(experiment: str, scale: str) -> Path:
    return REPO / "results" / (experiment if scale == "cpu" else f"{experiment}-{scale}") / "summary.csv"


def _estimate_text(est: dict, jobs: int) -> str:
    measured = jobs - est["unmeasured"]
    text = f"estimated {est['seconds'] / 60:.1f} job-min ({est['todo_seconds'] / 60:.1f} to run)"
    if est["unmeasured"]:
        text += f"; {est['unmeasured']} of {jobs} jobs have no measured arm" + ("" if measured else " (none measured)")
    return text


def plan_one(experiment: str, scale: str, overrides: list[str]) -> None:
    jobs = plan_jobs(experiment, scale, overrides)
    counts: dict[str, int] = {}
    for i, job in enumerate(jobs):
        try:
            state = job_state(job)
            label = state.state + (f": keys {', '.join(state.diff[:6])} differ" if state.diff else "")
        except CorruptRun as err:
            state, label = None, f"corrupt: {err}"
        name = state.state if state else "corrupt"
        counts[name] = counts.get(name, 0) + 1
        print(f"#{i:<3} [{label}] {' '.join(job.overrides) or '(defaults)'}  ->  {job.run_dir}")
    todo = len(jobs) - counts.get("done", 0)
    print(f"{len(jobs)} jobs, " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) +
          f", {todo} to run (make reproduce-{experiment} SCALE={scale}); "
          + _estimate_text(estimate(jobs, _summary_csv(experiment, scale)), len(jobs)))


def plan_all(scale: str) -> None:
    experiments = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml") if p.stem != "none")
    total, unmeasured = 0.0, 0
    print("| experiment | jobs | estimated job-min | jobs without a measured arm |\n|---|---|---|---|")
    for experiment in experiments:
        jobs = plan_jobs(experiment, scale, [])
        est = estimate(jobs, _summary_csv(experiment, scale))
        total += est["seconds"]
        unmeasured += est["unmeasured"]
        print(f"| {experiment} | {len(jobs)} | {est['seconds'] / 60:.1f} | {est['unmeasured'] or ''} |")
    verdict = "within" if total <= SUITE_BUDGET_JOB_S else "OVER"
    print(f"\nsuite at scale {scale}: {total / 3600:.2f} job-hours measured ({verdict} the "
          f"{SUITE_BUDGET_JOB_S / 3600:.0f} job-hour budget), plus {unmeasured} jobs with no measured arm")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?")
    parser.add_argument("--all", action="store_true", help="every experiment: jobs and estimated compute")
    parser.add_argument("--scale", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    if bool(args.all) == bool(args.experiment):
        parser.error("give an experiment id or --all")
    try:
        plan_all(args.scale) if args.all else plan_one(args.experiment, args.scale, args.overrides)
    except UserError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
