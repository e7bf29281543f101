"""Per-run scalar metrics derived from the metrics rows, declared in an experiment's ``derived:`` block.

Each spec selects rows (``split``, ``metric`` (a name or a list) and optionally ``layer``/``unit``; a missing ``layer`` or
``unit`` averages over all of them at each step) and reduces them over steps by ``kind``:
- ``final``: the last logged value;            - ``at_step``: the value at ``step`` (e.g. 0 = at init);
- ``mean``: the mean over steps (from ``from_step``); - ``max`` / ``min``: over steps;
- ``range``: max - min over steps (from ``from_step``), per unit, then averaged over units (drift);
- ``steps_to``: the first step whose value reaches ``threshold`` (``below: true`` for <=); a run that never
  reaches it gets the step budget, a lower bound, and ``<name>_reached`` = False;
- ``expr``: a formula over the runs frame's columns (``final_train_eval_acc - final_test_acc``), evaluated
  after the other kinds by ``safe_expr`` (a whitelist: experiment files are data and never run code).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from normrepro.analysis.frames import select
from normrepro.analysis.safe_expr import Expression

KINDS = ("final", "at_step", "mean", "max", "min", "range", "steps_to", "expr")


def _select(metrics: pd.DataFrame, spec: dict) -> pd.DataFrame:
    names = spec["metric"] if isinstance(spec["metric"], list) else [spec["metric"]]
    rows = metrics[(metrics["split"] == spec["split"]) & (metrics["metric"].isin(names))]
    rows = select(rows, {k: spec[k] for k in ("layer", "unit", "bn_mode") if k in spec})
    return rows[rows["step"] >= spec.get("from_step", 0)]


def derive_one(metrics: pd.DataFrame, spec: dict, budget: int) -> dict:
    """The derived value(s) of one run for one spec."""
    kind, name = spec["kind"], spec["name"]
    if kind not in KINDS:
        raise ValueError(f"derived metric {name!r}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    rows = _select(metrics, spec)
    if rows.empty:
        return {name: np.nan}
    if kind == "range":
        per_unit = rows.groupby(["metric", "layer", "unit"], dropna=False)["value"].agg(lambda v: v.max() - v.min())
        return {name: float(per_unit.mean())}
    series = rows.groupby("step")["value"].mean().sort_index()
    if kind == "final":
        return {name: float(series.iloc[-1])}
    if kind == "at_step":
        later = series[series.index >= spec.get("step", 0)]
        return {name: float(later.iloc[0]) if len(later) else np.nan}
    if kind in ("mean", "max", "min"):
        return {name: float(getattr(series, kind)())}
    hit = series <= spec["threshold"] if spec.get("below") else series >= spec["threshold"]
    reached = bool(hit.any())
    return {name: float(series.index[hit.argmax()]) if reached else float(budget), f"{name}_reached": reached}


def add_derived(runs: pd.DataFrame, metrics: pd.DataFrame, specs: list[dict], budget_column: str | None,
                default_budget: int) -> pd.DataFrame:
    """Add one column per spec to ``runs`` (one row per run, keyed by ``run``)."""
    if not specs or runs.empty:
        return runs
    row_specs = [s for s in specs if s["kind"] != "expr"]
    by_run = dict(tuple(metrics.groupby("run")))
    extra = []
    for _, run in runs.iterrows():
        budget = int(run[budget_column]) if budget_column and budget_column in run else default_budget
        values = {}
        for spec in row_specs:
            values.update(derive_one(by_run.get(run["run"], metrics.iloc[:0]), spec, budget))
        extra.append(values)
    out = pd.concat([runs.reset_index(drop=True), pd.DataFrame(extra, index=range(len(runs)))], axis=1)
    for spec in specs:
        if spec["kind"] == "expr":
            # backticks let the expression name dotted columns (`norm.kind`)
            out[spec["name"]] = Expression(spec["expr"], f"derived {spec['name']!r}").evaluate(out)
    return out
