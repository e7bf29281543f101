"""``python -m normrepro.analysis <id> [--scale cpu] [--from-results [--frames DIR]] [overrides ...]``: collect the
experiment's runs, derive, judge its claims, draw its figures and write ``results/<id>/``
(``results/<id>-<scale>/`` for scales other than cpu, so smoke or full runs never overwrite the committed
cpu-scale results, and never re-index ``results/README.md``).

The output folder is written whole or not at all: everything goes into a hidden sibling folder first, which
replaces the old one only once frames, verdicts, figures and REPORT.md are all written. ``--from-results``
re-judges from a results folder's committed frames (``--frames``; default: the output folder itself) without
runs/. A
user's mistake (a bad claim, a missing experiment) ends as one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf

from normrepro.analysis.claims import evaluate_claims
from normrepro.analysis.collect import collect
from normrepro.analysis.derive import add_derived
from normrepro.analysis.plots import make_figure, save_figure
from normrepro.analysis.rejudge import collected_from_results, current_git_sha
from normrepro.analysis.report import write_index, write_report
from normrepro.analysis.results import name_result_columns
from normrepro.errors import UserError
from normrepro.plan import plan_jobs

EXIT_USER_ERROR = 2
# Hydra's own reports of a user's mistake: an unknown experiment or config group option, a malformed override
HYDRA_USER_ERRORS = (MissingConfigException, OverrideParseException, ConfigCompositionException)


def results_dir(results_root: Path, exp_id: str, scale: str) -> Path:
    return results_root / (exp_id if scale == "cpu" else f"{exp_id}-{scale}")


@contextmanager
def staged_dir(out_dir: Path):
    """Yield an empty hidden sibling of ``out_dir``; on success it replaces ``out_dir``, on any error (or
    interrupt) it is removed and ``out_dir`` is left as it was."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become the results folder's mode
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, out_dir)


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Two renames: the old folder aside, the new one in its place; the old one is deleted last."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        if old is not None:
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_results(out_dir: Path, collected, spec: dict, exp_id: str, scale: str, command: str,
                   rejudged_at: str | None):
    runs = collected.runs
    verdicts = evaluate_claims(runs, spec["claims"], collected.metrics, spec.get("health"))
    runs.to_csv(out_dir / "summary.csv", index=False)
    collected.metrics.to_csv(out_dir / "metrics.csv.gz", index=False, float_format="%.6g",
                             compression={"method": "gzip", "mtime": 0})
    verdicts.to_csv(out_dir / "verdicts.csv", index=False)
    figures = []
    for plot in spec["plots"]:
        frame = runs if plot.get("source", "metrics") == "runs" else collected.metrics
        save_figure(make_figure(frame, plot), out_dir / "figures", plot["name"])
        figures.append((plot["name"], plot.get("caption", plot.get("title", ""))))
    exp = {"id": exp_id, "description": spec.get("description", ""), "notes": spec.get("paper", {}).get("notes"),
           "deviations": spec.get("deviations")}
    write_report(out_dir, exp, collected, verdicts, figures, scale, command, rejudged_at)
    return verdicts


def analyse(exp_id: str, scale: str = "cpu", overrides: list[str] | None = None,
            results_root: Path | None = None, from_results: Path | bool | None = None) -> Path:
    """Write the experiment's results folder. ``from_results``: re-judge from a results folder's frames (True:
    the output folder itself) instead of collecting runs/."""
    jobs = plan_jobs(exp_id, scale, overrides)
    spec = name_result_columns(OmegaConf.to_container(jobs[0].cfg, resolve=True))
    root = Path(results_root or spec["paths"]["results"])
    out_dir = results_dir(root, exp_id, scale)
    command = f"make reproduce-{exp_id}" + (f" SCALE={scale}" if scale != "cpu" else "")
    rejudged_at = None
    if from_results:
        source = out_dir if from_results is True else Path(from_results)
        collected = collected_from_results(jobs, source, spec["derived"])
        rejudged_at = current_git_sha()
        command = f"python -m normrepro.analysis {exp_id} --from-results" + (
            f" --scale {scale}" if scale != "cpu" else "")
    else:
        collected = collect(jobs)
        if collected.runs.empty:
            raise SystemExit(f"error: no finished runs of {exp_id!r} at scale {scale!r} under "
                             f"{jobs[0].run_dir.parent}; run `make reproduce-{exp_id} SCALE={scale}` first")
    budget_col = "train.steps" if "train.steps" in collected.grid_columns else None
    collected.runs = add_derived(collected.runs, collected.metrics, spec["derived"], budget_col,
                                 int(collected.fixed.get("train.steps", 0) or 0))
    with staged_dir(out_dir) as staging:
        verdicts = _write_results(staging, collected, spec, exp_id, scale, command, rejudged_at)
    if scale == "cpu":  # the committed index lists cpu-scale results only
        write_index(root)
    for v in verdicts.itertuples():
        print(f"{exp_id}/{v.id}: {v.verdict} (effect {v.effect:.4g} [{v.lo:.4g}, {v.hi:.4g}], {v.method}, "
              f"n={v.n_a}/{v.n_b})" + (f": {v.reason}" if v.reason else ""))
    print(f"wrote {out_dir}/REPORT.md")
    return out_dir


def _fail(message) -> int:
    """One line on stderr, no traceback."""
    line = " ".join(str(message).split())
    print(line if line.startswith("error:") else f"error: {line}", file=sys.stderr)
    return EXIT_USER_ERROR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--scale", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("--results", type=Path, default=None, help="results root (default: paths.results)")
    parser.add_argument("--from-results", action="store_true",
                        help="re-judge from a results folder's summary.csv and metrics.csv.gz instead of the runs")
    parser.add_argument("--frames", type=Path, default=None, metavar="DIR",
                        help="with --from-results: the folder holding the frames (default: the output folder)")
    parser.add_argument("overrides", nargs="*", help="the same overrides the sweep ran with")
    args = parser.parse_intermixed_args(argv)
    if args.frames is not None and not args.from_results:
        return _fail("--frames needs --from-results")
    from_results = (args.frames or True) if args.from_results else None
    try:
        analyse(args.experiment, args.scale, args.overrides, args.results, from_results)
    except (UserError, *HYDRA_USER_ERRORS) as err:
        return _fail(err)
    except SystemExit as err:
        if isinstance(err.code, str):
            return _fail(err.code)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
