"""``--from-results``: an experiment's frames read back from a results folder instead of collected from runs/.

The planned jobs still come from ``plan_jobs`` (the config, its grid and fixed keys); the runs and metrics
frames come from the folder's ``summary.csv`` and ``metrics.csv.gz``. Derived columns are dropped and
computed again by ``add_derived`` from the metrics frame, so a changed ``derived:`` block or rule applies to
runs made before it, without repeating them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from normrepro.analysis.collect import Collected, flatten, load_frames
from normrepro.config import result_config
from normrepro.errors import UserError
from normrepro.plan import Job

REPO = Path(__file__).resolve().parents[3]


class ResultsFramesError(UserError):
    """A results folder cannot be re-judged (frames missing, or runs the current plan does not have)."""


def plan_leaves(jobs: list[Job]) -> tuple[list[str], dict]:
    """(grid columns, fixed leaves) of the planned jobs, as ``collect`` derives them."""
    planned = [flatten(result_config(j.cfg)) for j in jobs]
    leaves = planned[0] if planned else {}
    grid = [k for k in leaves if len({str(p.get(k)) for p in planned}) > 1]
    if "seed" not in grid:
        grid.append("seed")
    return grid, {k: v for k, v in leaves.items() if k not in grid}


def derived_columns(specs: list[dict]) -> list[str]:
    """Every column ``add_derived`` adds for ``specs`` (a steps_to metric also adds ``<name>_reached``)."""
    names = []
    for spec in specs:
        names.append(spec["name"])
        if spec["kind"] == "steps_to":
            names.append(f"{spec['name']}_reached")
    return names


def collected_from_results(jobs: list[Job], source: Path, derived: list[dict]) -> Collected:
    """The frames of ``source`` (a ``results/<id>/`` folder), with the derived columns dropped for recomputing."""
    missing = [n for n in ("summary.csv", "metrics.csv.gz") if not (source / n).is_file()]
    if missing:
        raise ResultsFramesError(f"--from-results: {source} has no {' or '.join(missing)}; give a results/<id>/ "
                                 "folder written by the analysis")
    runs, metrics = load_frames(source)
    planned = {j.run_dir.name for j in jobs}
    unplanned = sorted(set(runs["run"].astype(str)) - planned)
    if unplanned:
        raise ResultsFramesError(f"--from-results: {source}/summary.csv holds {len(unplanned)} run(s) the current "
                                 f"plan does not (e.g. {unplanned[0]!r}): the grid changed since; pass the "
                                 "overrides the sweep ran with, or run the sweep again")
    runs = runs.drop(columns=[c for c in derived_columns(derived) if c in runs.columns])
    grid, fixed = plan_leaves(jobs)
    return Collected(runs, metrics, grid, len(jobs), fixed)


def current_git_sha() -> str:
    """HEAD of the checkout this package runs from, ``+dirty`` when tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=REPO).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha[:12]}+dirty" if dirty else sha[:12]

