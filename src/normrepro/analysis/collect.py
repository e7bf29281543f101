"""Collect an experiment's runs into two pandas frames.

``runs``: one row per finished job, with every config leaf that varies across the grid as a column
(``norm.kind``, ``seed``, ...), the summary (status, wall time, throughput) and the derived metrics.
``metrics``: every metrics row of every job, with the same grid columns attached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from normrepro.config import result_config
from normrepro.plan import Job
from normrepro.store import read_metrics


@dataclass
class Collected:
    runs: pd.DataFrame
    metrics: pd.DataFrame
    grid_columns: list[str]  # config leaves that differ between jobs (seed included)
    jobs_total: int
    fixed: dict  # config leaves shared by every job


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if not isinstance(value, list) else str(value)
    return out


def collect(jobs: list[Job]) -> Collected:
    planned = [flatten(result_config(j.cfg)) for j in jobs]  # every job's config leaves, done or not
    configs, summaries, frames = [], [], []
    for job, leaves in zip(jobs, planned):
        if not job.done:
            continue
        summary = json.loads((job.run_dir / "summary.json").read_text())
        configs.append(leaves)
        summaries.append(summary)
        frame = read_metrics(job.run_dir / "metrics.jsonl")
        frame["run"] = job.run_dir.name
        frames.append(frame)
    print(f"jobs_done={len(configs)}/{len(jobs)}")
    all_leaves = planned[0] if planned else {}
    grid = [k for k in all_leaves if len({str(p.get(k)) for p in planned}) > 1]
    if "seed" not in grid:
        grid.append("seed")
    fixed = {k: v for k, v in all_leaves.items() if k not in grid}
    rows = []
    for job_leaves, summary, frame in zip(configs, summaries, frames):
        row = {k: job_leaves.get(k) for k in grid}
        row["run"] = frame["run"].iat[0] if len(frame) else None
        row["diverged"] = float(summary.get("status") == "diverged")
        for key in ("status", "steps_done", "diverged_at", "wall_time_s", "train_time_s", "samples_per_s",
                    "params", "git_sha", "device", "threads"):
            row[key] = summary.get(key)
        for kind in ("final", "best"):
            for name, value in (summary.get(kind) or {}).items():
                row[f"{kind}_{name.replace('/', '_')}"] = value
        rows.append(row)
    runs = pd.DataFrame(rows)
    metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(runs):
        metrics = metrics.merge(runs[grid + ["run"]], on="run", how="left")
    return Collected(runs, metrics, grid, len(jobs), fixed)


def load_frames(out_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a report's committed frames back (notebooks, re-plotting without the runs)."""
    runs = pd.read_csv(out_dir / "summary.csv")
    metrics = pd.read_csv(out_dir / "metrics.csv.gz")
    return runs, metrics

