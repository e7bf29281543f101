"""Verdicts on an experiment's ``claims:`` block: evidence over seeds, by the rule of docs/verdict-rule.md.

A claim compares arm ``a`` with arm ``b`` (``where``-style filters on the runs frame, e.g.
``{norm.kind: bn}``) on ``metric`` (``metric_a`` / ``metric_b`` to compare two metrics of the same runs).
Each arm gives one number per seed (``reduce``: mean | range | min | max over that seed's matching runs;
``a_minus`` / ``b_minus``, filters merged into the arm's, subtract a second arm per seed, so an arm can be
a difference, as in an interaction claim; ``fill_na`` replaces a run's missing value first). The effect is
the mean over seeds of a - b, paired by seed when the two arms have the same seeds; a ``between`` claim
has arm ``a`` alone and its effect is a's mean.

The rule:
- the interval is a 95% confidence interval for the mean effect (intervals.py): Student-t on the paired
  per-seed differences, Welch's t for arms on different seeds, a one-sample t for a ``between`` claim, and
  a BCa bootstrap once every arm has at least 30 seeds. Its half-width is the smallest effect this many
  seeds can tell from zero (the ``half_width`` column); ``method`` says which interval was used;
- **reproduced**: the interval lies wholly on the claimed side of the margin (``greater``: a - b > margin,
  ``less``: a - b < -margin, ``equal``: |a - b| < margin, ``between``: a inside ``range: [lo, hi]``);
  **not reproduced**: it lies wholly outside the claim; **inconclusive**: otherwise. Either decided
  outcome needs at least 5 seeds in every arm: with fewer the claim is inconclusive by rule;
- **not testable here**: an arm the claim depends on failed a health check (health.py: it diverged, its
  training loss did not fall, a declared bound or a budget criterion failed). That is no evidence either
  way, and the ``reason`` column names the arm, the check and the values.
``reason`` also says why a claim is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from normrepro.analysis.frames import select
from normrepro.analysis.health import (
    Arm,
    about_divergence,
    arm_failures,
    failure_is_outcome,
    required_reached,
    training_loss_ends,
    validate_health,
)
from normrepro.analysis.intervals import mean_effect_interval
from normrepro.errors import UserError

EXPECTS = ("greater", "less", "equal", "between")
REDUCERS = ("mean", "range", "min", "max")
OUTCOMES = ("reproduced", "not reproduced", "inconclusive", "not testable here")
MIN_SEEDS = 5  # seeds per arm below which no claim is decided


class ClaimSpecError(UserError, ValueError):
    """A claim of an experiment's ``claims:`` block is malformed (unknown expect/reduce, missing column...)."""


@dataclass
class Verdict:
    id: str
    text: str
    expect: str
    a: float
    b: float | None
    effect: float
    lo: float
    hi: float
    half_width: float
    method: str
    n_a: int
    n_b: int
    verdict: str
    reason: str = ""
    paper: str = ""
    metric: str = ""

    def row(self) -> dict:
        return asdict(self)


def _select(frame: pd.DataFrame, where: dict | None, claim_id) -> pd.DataFrame:
    try:
        return select(frame, where)
    except KeyError as err:
        raise ClaimSpecError(f"claim {claim_id}: {err.args[0]}") from None


def _per_seed(runs: pd.DataFrame, where: dict | None, metric: str, reduce: str, minus: dict | None,
              fill_na: float | None, claim_id) -> pd.Series:
    """One value per seed: ``reduce`` over the seed's matching runs; minus the same over ``minus``'s runs."""
    rows = _select(runs, where, claim_id)
    if metric not in rows.columns:
        raise ClaimSpecError(f"claim {claim_id}: metric {metric!r} is not a column of the runs frame; add it to "
                             "derived: or use a final_*/best_* column")
    values = rows[metric] if fill_na is None else rows[metric].fillna(fill_na)
    grouped = values.groupby(rows["seed"])
    values = (grouped.max() - grouped.min()) if reduce == "range" else grouped.agg(reduce)
    if minus is not None:
        values = values - _per_seed(runs, {**(where or {}), **minus}, metric, reduce, None, fill_na, claim_id)
    return values.dropna()


def judge(expect: str, lo: float, hi: float, margin: float = 0.0, bounds=None) -> str:
    """Where the interval [lo, hi] lies relative to the claim (the seeds rule and health come on top)."""
    if expect == "greater":
        return "reproduced" if lo > margin else "not reproduced" if hi <= margin else "inconclusive"
    if expect == "less":
        return "reproduced" if hi < -margin else "not reproduced" if lo >= -margin else "inconclusive"
    if expect == "equal":
        if -margin < lo and hi < margin:
            return "reproduced"
        return "not reproduced" if lo >= margin or hi <= -margin else "inconclusive"
    if expect == "between":
        low, high = bounds
        if low <= lo and hi <= high:
            return "reproduced"
        return "not reproduced" if hi < low or lo > high else "inconclusive"
    raise ClaimSpecError(f"unknown expect {expect!r}; valid: {', '.join(EXPECTS)}")


def _validate(claim: dict) -> None:
    cid = claim.get("id")
    if claim.get("expect") not in EXPECTS:
        raise ClaimSpecError(f"claim {cid}: unknown expect {claim.get('expect')!r}; valid: {', '.join(EXPECTS)}")
    if claim.get("reduce", "mean") not in REDUCERS:
        raise ClaimSpecError(f"claim {cid}: unknown reduce {claim.get('reduce')!r}; valid: {', '.join(REDUCERS)}")
    if claim["expect"] == "between":
        bounds = claim.get("range")
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2):
            raise ClaimSpecError(f"claim {cid}: expect between needs range: [lo, hi]")


def claim_arms(base: pd.DataFrame, claim: dict) -> list[Arm]:
    """The run sets a claim depends on: a, b and their ``_minus`` arms (merged filters)."""
    arms = []
    for side in ("a",) if claim["expect"] == "between" else ("a", "b"):
        where = dict(claim.get(side) or {})
        arms.append(Arm(side, where, _select(base, where, claim.get("id"))))
        if claim.get(f"{side}_minus") is not None:
            merged = {**where, **claim[f"{side}_minus"]}
            arms.append(Arm(f"{side}_minus", merged, _select(base, merged, claim.get("id"))))
    return arms


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def evaluate_claim(runs: pd.DataFrame, claim: dict, health: list[dict] | None = None,
                   loss_ends: pd.DataFrame | None = None) -> Verdict:
    """One claim's verdict. ``health``: the experiment's validated ``health:`` list; ``loss_ends``: each run's
    first and last training loss (``training_loss_ends(metrics)``; None skips that check)."""
    _validate(claim)
    about_divergence(claim)  # validates the health keys up front, whatever the arms hold
    failure_is_outcome(claim)
    required_reached(claim, runs.columns)
    cid, expect = claim["id"], claim["expect"]
    base = runs[runs["status"] == "done"] if claim.get("exclude_diverged", False) else runs
    base = _select(base, claim.get("where"), cid)
    metric_a = claim.get("metric_a", claim.get("metric"))
    reduce, fill = claim.get("reduce", "mean"), claim.get("fill_na")
    a = _per_seed(base, claim.get("a"), metric_a, reduce, claim.get("a_minus"), fill, cid)
    b = None
    if expect != "between":
        b = _per_seed(base, claim.get("b"), claim.get("metric_b", claim.get("metric")), reduce,
                      claim.get("b_minus"), fill, cid)
    paired = b is not None and set(a.index) == set(b.index)
    if paired:
        b = b.reindex(a.index)
    interval = mean_effect_interval(a.to_numpy(float), None if b is None else b.to_numpy(float), paired)
    margin = float(claim.get("margin", 0.0))
    located = judge(expect, interval.lo, interval.hi, margin, claim.get("range"))
    sizes = {"a": len(a)} if b is None else {"a": len(a), "b": len(b)}
    failures = [r for arm in claim_arms(base, claim)
                for r in arm_failures(arm, claim, health or [], loss_ends if loss_ends is not None else
                                      pd.DataFrame(columns=["first", "last"]))]
    if failures:
        verdict, reason = "not testable here", "; ".join(failures)
    elif min(sizes.values()) < MIN_SEEDS:
        verdict = "inconclusive"
        counts = ", ".join(f"{n} in {arm}" for arm, n in sizes.items())
        reason = f"n < {MIN_SEEDS} seeds per arm ({counts}): too few to decide"
        if not math.isnan(interval.lo):
            reason += f"; the interval alone would say {located}"
    else:
        verdict = located
        reason = "" if verdict != "inconclusive" else (
            f"the interval [{_fmt(interval.lo)}, {_fmt(interval.hi)}] is neither wholly inside nor wholly "
            f"outside the claim ({_expect_text(claim)})")
    metric = metric_a if b is None or metric_a == claim.get("metric_b", metric_a) else \
        f"{metric_a} vs {claim.get('metric_b')}"
    return Verdict(id=cid, text=claim.get("text", ""), expect=_expect_text(claim),
                   a=float(a.mean()) if len(a) else float("nan"),
                   b=float(b.mean()) if b is not None and len(b) else None,
                   effect=interval.effect, lo=interval.lo, hi=interval.hi, half_width=interval.half_width,
                   method=interval.method, n_a=len(a), n_b=0 if b is None else len(b), verdict=verdict,
                   reason=reason, paper=claim.get("paper", ""), metric=metric)


def _expect_text(claim: dict) -> str:
    e, m = claim["expect"], claim.get("margin", 0)
    return {"greater": f"a - b > {m}", "less": f"a - b < {-m:g}", "equal": f"|a - b| < {m}",
            "between": f"a in {claim.get('range')}"}[e]


def evaluate_claims(runs: pd.DataFrame, claims: list[dict], metrics: pd.DataFrame | None = None,
                    health: list[dict] | None = None) -> pd.DataFrame:
    """Every claim's verdict, one row each. ``metrics`` (the metrics frame) enables the training-loss check;
    ``health`` is the experiment's ``health:`` block."""
    health = validate_health(health, [c.get("id") for c in claims], runs.columns)
    loss_ends = training_loss_ends(metrics)
    columns = list(Verdict.__dataclass_fields__)
    return pd.DataFrame([evaluate_claim(runs, c, health, loss_ends).row() for c in claims], columns=columns)
