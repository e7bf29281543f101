"""``python -m normrepro.analysis <id> [--scale cpu] [overrides ...]``: collect the experiment's runs, derive,
judge its claims, draw its figures and write ``results/<id>/`` (``results/<id>-<scale>/`` for scales other
than cpu, so smoke or full runs never overwrite the committed cpu-scale results)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from normrepro.analysis.claims import evaluate_claims
from normrepro.analysis.collect import collect
from normrepro.analysis.derive import add_derived
from normrepro.analysis.plots import make_figure, save_figure
from normrepro.analysis.report import write_index, write_report
from normrepro.plan import plan_jobs


def results_dir(results_root: Path, exp_id: str, scale: str) -> Path:
    return results_root / (exp_id if scale == "cpu" else f"{exp_id}-{scale}")


def analyse(exp_id: str, scale: str = "cpu", overrides: list[str] | None = None,
            results_root: Path | None = None) -> Path:
    jobs = plan_jobs(exp_id, scale, overrides)
    collected = collect(jobs)
    if collected.runs.empty:
        raise SystemExit(f"error: no finished runs of {exp_id!r} at scale {scale!r} under "
                         f"{jobs[0].run_dir.parent}; run `make reproduce-{exp_id} SCALE={scale}` first")
    spec = OmegaConf.to_container(jobs[0].cfg, resolve=True)
    root = Path(results_root or spec["paths"]["results"])
    out_dir = results_dir(root, exp_id, scale)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    budget_col = "train.steps" if "train.steps" in collected.grid_columns else None
    runs = add_derived(collected.runs, collected.metrics, spec["derived"], budget_col,
                       int(collected.fixed.get("train.steps", 0) or 0))
    collected.runs = runs
    verdicts = evaluate_claims(runs, spec["claims"])
    runs.to_csv(out_dir / "summary.csv", index=False)
    collected.metrics.to_csv(out_dir / "metrics.csv.gz", index=False, float_format="%.6g",
                             compression={"method": "gzip", "mtime": 0})
    verdicts.to_csv(out_dir / "verdicts.csv", index=False)
    figures = []
    for plot in spec["plots"]:
        frame = runs if plot.get("source", "metrics") == "runs" else collected.metrics
        save_figure(make_figure(frame, plot), out_dir / "figures", plot["name"])
        figures.append((plot["name"], plot.get("caption", plot.get("title", ""))))
    exp = {"id": exp_id, "description": spec.get("description", ""), "notes": spec.get("paper", {}).get("notes")}
    command = f"make reproduce-{exp_id}" + (f" SCALE={scale}" if scale != "cpu" else "")
    write_report(out_dir, exp, collected, verdicts, figures, scale, command)
    write_index(root)
    for v in verdicts.itertuples():
        print(f"{exp_id}/{v.id}: {v.verdict} (effect {v.effect:.4g} [{v.lo:.4g}, {v.hi:.4g}], n={v.n_a}/{v.n_b})")
    print(f"wrote {out_dir}/REPORT.md")
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("experiment")
    parser.add_argument("--scale", default="cpu", choices=("smoke", "cpu", "full"))
    parser.add_argument("--results", type=Path, default=None, help="results root (default: paths.results)")
    parser.add_argument("overrides", nargs="*", help="the same overrides the sweep ran with")
    args = parser.parse_intermixed_args(argv)
    analyse(args.experiment, args.scale, args.overrides, args.results)


if __name__ == "__main__":
    sys.exit(main())
