"""Print the jobs an experiment would run (``make plan-<id>``), with their run directories and state.

    python scripts/plan.py bn_mnist [--scale cpu] [overrides ...]
"""

from __future__ import annotations

import argparse

from normrepro.plan import plan_jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--scale", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    jobs = plan_jobs(args.experiment, args.scale, args.overrides)
    done = sum(job.done for job in jobs)
    for i, job in enumerate(jobs):
        state = "done" if job.done else "todo"
        print(f"#{i:<3} [{state}] {' '.join(job.overrides) or '(defaults)'}  ->  {job.run_dir}")
    print(f"{len(jobs)} jobs, {done} done, {len(jobs) - done} to run "
          f"(make reproduce-{args.experiment} SCALE={args.scale})")


if __name__ == "__main__":
    main()
