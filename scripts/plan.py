"""Print the jobs an experiment would run (``make plan-<id>``), with their run directories and state.

    python scripts/plan.py bn_mnist [--scale cpu] [overrides ...]

Planning checks the experiment's derived / claims / plots blocks first (a typo fails here, before any
training). A job's state is ``todo``, ``unfinished`` (metrics but no DONE: it resumes), ``done``, or
``stale`` (finished with other settings than the experiment file now asks for: delete it to rerun).
"""

from __future__ import annotations

import argparse
import sys

from normrepro.analysis.run_check import CorruptRun, job_state
from normrepro.errors import UserError
from normrepro.plan import plan_jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--scale", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    try:
        jobs = plan_jobs(args.experiment, args.scale, args.overrides)
    except UserError as err:
        sys.exit(f"error: {err}")
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
          f", {todo} to run (make reproduce-{args.experiment} SCALE={args.scale})")


if __name__ == "__main__":
    main()
