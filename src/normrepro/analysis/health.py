"""Health checks: a claim is *not testable here* when an arm it depends on did not do what the claim needs.

An arm is the set of runs one of a claim's filters selects (``a``, ``b``, and ``a_minus`` / ``b_minus``
merged into their arm's filter), within the claim's ``where``. Comparing arms that did not train says
nothing about the paper's claim, so such a claim is neither reproduced nor not reproduced here.

Checks that need no declaration (every claim):
- **diverged**: a run of the arm ended with status ``diverged`` - unless the claim is about divergence
  (``about_divergence: true``, implied when its metric is ``diverged``);
- **training loss did not fall**: a run's last logged training loss (metrics rows ``split: train``,
  ``metric: loss``) is not below its first (a diverged run of a divergence claim is exempt, and so is a run
  that logged one training step only: a measurement at init has no end to compare).
A claim about the computation rather than learning (``trains: false``, e.g. two implementations' losses
after one step) skips the training-loss check; divergence is still checked.
A claim whose outcome *is* whether an arm trains (e.g. "without BN, x30 the rate fails") names that arm in
``failure_is_outcome: [b]`` (arm names ``a``, ``b``, ``a_minus``, ``b_minus``): neither default check
applies to it, so its failure counts as the measured result; the other arms are still checked, so a setup
in which nothing trains stays not testable.

Declared checks:
- the experiment's top-level ``health:`` list; each entry ``{where: {...}, metric: <runs column>, min: x,
  max: y, text: "...", claims: [ids]}`` applies to the runs of any arm that also match its ``where``
  (``claims`` limits it to those claims), and every such run must satisfy ``min <= value <= max``
  (a missing value fails: the run has nothing to show);
- a claim's ``requires_reached: <name>`` (or a list): every run of its arms must have reached the
  threshold of the ``steps_to`` derived metric ``<name>`` (its ``<name>_reached`` column) within the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from normrepro.analysis.frames import select
from normrepro.errors import UserError

HEALTH_KEYS = ("where", "metric", "min", "max", "text", "claims")
DIVERGENCE_METRICS = ("diverged",)  # a claim on these columns is about divergence without saying so
SHOWN_RUNS = 3  # runs named in a reason before "..."


class HealthSpecError(UserError, ValueError):
    """An experiment's ``health:`` block or a claim's health keys are malformed."""


@dataclass
class Arm:
    name: str  # "a", "b", "a_minus", "b_minus"
    where: dict
    runs: pd.DataFrame

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.where.items()) or "all runs"
        return f"arm {self.name} ({shown})"


def _fmt(value) -> str:
    return "missing" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _runs_named(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:SHOWN_RUNS]) + (", ..." if len(names) > SHOWN_RUNS else "")


# ----------------------------------------------------------------------------------------- validation
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_health(entries, claim_ids, columns) -> list[dict]:
    """The experiment's ``health:`` list, checked: one-line HealthSpecError naming the entry and the fix."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise HealthSpecError("health: must be a list of checks, e.g. [{where: {norm.kind: none}, "
                              "metric: final_test_acc, min: 0.2, text: trained above chance}]")
    for i, entry in enumerate(entries):
        where = f"health[{i}]"
        if not isinstance(entry, dict):
            raise HealthSpecError(f"{where}: must be a mapping with keys {', '.join(HEALTH_KEYS)}")
        unknown = sorted(set(entry) - set(HEALTH_KEYS))
        if unknown:
            raise HealthSpecError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(HEALTH_KEYS)}")
        if not isinstance(entry.get("metric"), str) or not isinstance(entry.get("text"), str):
            raise HealthSpecError(f"{where}: needs `metric` (a runs column) and `text` (what the check means)")
        if entry["metric"] not in columns:
            raise HealthSpecError(f"{where}: metric {entry['metric']!r} is not a column of the runs frame "
                                  "(summary.csv); use a final_*/best_* column or a derived metric")
        if "min" not in entry and "max" not in entry:
            raise HealthSpecError(f"{where}: give a bound, `min` and/or `max`")
        for bound in ("min", "max"):
            if bound in entry and not _is_number(entry[bound]):
                raise HealthSpecError(f"{where}: `{bound}` must be a number, got {entry[bound]!r}")
        if not isinstance(entry.get("where", {}), dict):
            raise HealthSpecError(f"{where}: `where` must be a mapping of runs columns to values")
        missing = sorted(set(entry.get("where") or {}) - set(columns))
        if missing:
            raise HealthSpecError(f"{where}: `where` filters on {', '.join(missing)}, not columns of the runs frame")
        ids = entry.get("claims")
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
                raise HealthSpecError(f"{where}: `claims` must be a list of claim ids")
            bad = sorted(set(ids) - set(claim_ids))
            if bad:
                raise HealthSpecError(f"{where}: `claims` names unknown claim(s) {', '.join(bad)}; "
                                      f"claims: {', '.join(claim_ids)}")
    return entries


def about_divergence(claim: dict) -> bool:
    value = claim.get("about_divergence")
    if value is not None and not isinstance(value, bool):
        raise HealthSpecError(f"claim {claim.get('id')}: about_divergence must be true or false, got {value!r}")
    metrics = {claim.get("metric"), claim.get("metric_a"), claim.get("metric_b")}
    return bool(value) or bool(metrics & set(DIVERGENCE_METRICS))


ARM_NAMES = ("a", "b", "a_minus", "b_minus")


def failure_is_outcome(claim: dict) -> set[str]:
    """The arms (``failure_is_outcome: [...]``) whose divergence or stalled loss is the claim's result."""
    names = claim.get("failure_is_outcome") or []
    if not isinstance(names, list) or not set(names) <= set(ARM_NAMES):
        raise HealthSpecError(f"claim {claim.get('id')}: failure_is_outcome must list arm names out of "
                              f"{', '.join(ARM_NAMES)}, got {names!r}")
    return set(names)


def required_reached(claim: dict, columns) -> list[str]:
    """The ``<name>_reached`` columns a claim's ``requires_reached`` names (validated)."""
    names = claim.get("requires_reached")
    if names is None:
        return []
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HealthSpecError(f"claim {claim.get('id')}: requires_reached must name a steps_to derived metric "
                              "(or a list of them)")
    known = sorted(c[: -len("_reached")] for c in columns if str(c).endswith("_reached"))
    for name in names:
        if f"{name}_reached" not in columns:
            raise HealthSpecError(f"claim {claim.get('id')}: requires_reached: {name!r} is not a steps_to derived "
                                  f"metric; steps_to metrics: {', '.join(known) or 'none'}")
    return [f"{n}_reached" for n in names]


# --------------------------------------------------------------------------------------------- checks
def training_loss_ends(metrics: pd.DataFrame | None) -> pd.DataFrame:
    """Per run: the first and the last logged training loss (mean over rows of the same step). A run with a
    single logged step (a measurement at init, one step long) has no start and end to compare: left out."""
    if metrics is None or metrics.empty or not {"split", "metric", "run", "step", "value"} <= set(metrics.columns):
        return pd.DataFrame(columns=["first", "last"])
    rows = metrics[(metrics["split"] == "train") & (metrics["metric"] == "loss")]
    by_step = rows.groupby(["run", "step"])["value"].mean().reset_index().sort_values(["run", "step"])
    ends = by_step.groupby("run")["value"].agg(["first", "last", "size"])
    return ends.loc[ends["size"] >= 2, ["first", "last"]]


def _truthy(value) -> bool:
    return str(value) in ("True", "true", "1", "1.0")


def arm_failures(arm: Arm, claim: dict, health: list[dict], loss_ends: pd.DataFrame) -> list[str]:
    """Why ``arm`` cannot support ``claim`` (empty when it is healthy): arm, check and values."""
    runs, reasons = arm.runs, []
    if runs.empty:
        return reasons
    if arm.name in failure_is_outcome(claim):
        return _declared_failures(arm, claim, health)
    divergence_claim = about_divergence(claim)
    diverged = runs["status"].astype(str) == "diverged" if "status" in runs else pd.Series(False, index=runs.index)
    if diverged.any() and not divergence_claim:
        reasons.append(f"{arm.label}: diverged in {int(diverged.sum())} of {len(runs)} runs "
                       f"({_runs_named(runs.loc[diverged, 'run'] if 'run' in runs else [])}) and the claim is not "
                       "about divergence")
    if claim.get("trains", True) is not False and "run" in runs and len(loss_ends):
        checked = runs[~diverged] if divergence_claim else runs
        ends = loss_ends.reindex(checked["run"]).dropna(how="all")
        stuck = ends[~(ends["last"] < ends["first"])]
        if len(stuck):
            values = "; ".join(f"{r}: {_fmt(s['first'])} -> {_fmt(s['last'])}"
                               for r, s in list(stuck.iterrows())[:SHOWN_RUNS])
            reasons.append(f"{arm.label}: training loss did not fall in {len(stuck)} of {len(ends)} runs "
                           f"(first -> last: {values}{'; ...' if len(stuck) > SHOWN_RUNS else ''})")
    return reasons + _declared_failures(arm, claim, health)


def _declared_failures(arm: Arm, claim: dict, health: list[dict]) -> list[str]:
    """The budget criterion and the experiment's declared ``health:`` bounds, for one arm."""
    runs, reasons = arm.runs, []
    for column in required_reached(claim, runs.columns):
        missed = ~runs[column].map(_truthy)
        if missed.any():
            name = column[: -len("_reached")]
            reasons.append(f"{arm.label}: the budget ended before {name}'s threshold was reached in "
                           f"{int(missed.sum())} of {len(runs)} runs "
                           f"({_runs_named(runs.loc[missed, 'run'] if 'run' in runs else [])})")
    for entry in health:
        if entry.get("claims") is not None and claim.get("id") not in entry["claims"]:
            continue
        rows = select(runs, entry.get("where"))
        if rows.empty:
            continue
        values = pd.to_numeric(rows[entry["metric"]], errors="coerce")
        ok = values.notna()
        if "min" in entry:
            ok &= values >= entry["min"]
        if "max" in entry:
            ok &= values <= entry["max"]
        if not ok.all():
            bound = " and ".join(f"{b} {entry[b]:g}" for b in ("min", "max") if b in entry)
            bad = values[~ok]
            shown = ", ".join(_fmt(v) for v in bad.iloc[:SHOWN_RUNS]) + (", ..." if len(bad) > SHOWN_RUNS else "")
            reasons.append(f"{arm.label}: fails \"{entry['text']}\" in {len(bad)} of {len(rows)} runs "
                           f"({entry['metric']} = {shown}; needs {bound})")
    return reasons
