"""Verdicts on an experiment's ``claims:`` block, over seeds, with a bootstrap interval (CLAIMS.md's rule).

A claim compares arm ``a`` with arm ``b`` (``where``-style filters on the runs frame, e.g.
``{norm.kind: bn}``) on ``metric`` (``metric_a`` / ``metric_b`` to compare two metrics of the same runs):
each arm gives one value per seed (the mean over its matching runs of that seed), and the effect is
mean(a) - mean(b): over paired seeds when both arms have the same seeds, else independently resampled.

``reduce`` (mean | range | min | max) turns a seed's matching runs into its value (``range``: how much the
metric varies across them, e.g. over init scales); ``a_minus`` / ``b_minus`` (filters merged into the
arm's) subtract a second arm per seed, so an arm can be a difference (an interaction claim such as "BN's
gain shrinks at full batch"). ``fill_na`` replaces a run's missing value (e.g. the final loss of a diverged
run) before reducing; the report's claim text should say so.

``expect``: ``greater`` (a - b > margin), ``less`` (a - b < -margin), ``equal`` (|a - b| < margin), or
``between`` (arm a alone, its mean inside ``range: [lo, hi]``).
- reproduced: the 95% interval lies wholly on the claimed side;
- not reproduced: the interval lies wholly outside the claim;
- inconclusive: otherwise (including too few seeds to say).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from normrepro.analysis.frames import select as _filter

EXPECTS = ("greater", "less", "equal", "between")
N_BOOT = 10_000


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
    n_a: int
    n_b: int
    verdict: str
    paper: str = ""
    metric: str = ""

    def row(self) -> dict:
        return asdict(self)


REDUCERS = ("mean", "range", "min", "max")


def _per_seed(runs: pd.DataFrame, where: dict | None, metric: str, reduce: str = "mean",
              minus: dict | None = None, fill_na: float | None = None) -> pd.Series:
    """One value per seed: ``reduce`` over the seed's matching runs; minus the same over ``minus``'s runs."""
    if reduce not in REDUCERS:
        raise ValueError(f"unknown claim reduce {reduce!r}; valid: {', '.join(REDUCERS)}")
    rows = _filter(runs, where)
    if metric not in rows.columns:
        raise KeyError(f"claim metric {metric!r} is not a column of the runs frame")
    values = rows[metric] if fill_na is None else rows[metric].fillna(fill_na)
    grouped = values.groupby(rows["seed"])
    values = (grouped.max() - grouped.min()) if reduce == "range" else grouped.agg(reduce)
    if minus is not None:
        values = values - _per_seed(runs, {**(where or {}), **minus}, metric, reduce, fill_na=fill_na)
    return values.dropna()


def bootstrap_interval(a: np.ndarray, b: np.ndarray | None, paired: bool, seed: int = 0):
    """Mean effect and its 95% percentile-bootstrap interval."""
    rng = np.random.default_rng(seed)
    if b is None:
        samples = rng.choice(a, size=(N_BOOT, len(a))).mean(1)
        effect = a.mean()
    elif paired:
        d = a - b
        samples = rng.choice(d, size=(N_BOOT, len(d))).mean(1)
        effect = d.mean()
    else:
        samples = rng.choice(a, size=(N_BOOT, len(a))).mean(1) - rng.choice(b, size=(N_BOOT, len(b))).mean(1)
        effect = a.mean() - b.mean()
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(effect), float(lo), float(hi)


def judge(expect: str, lo: float, hi: float, margin: float = 0.0, bounds=None) -> str:
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
    raise ValueError(f"unknown expect {expect!r}; valid: {', '.join(EXPECTS)}")


def evaluate_claim(runs: pd.DataFrame, claim: dict) -> Verdict:
    expect = claim["expect"]
    if expect not in EXPECTS:
        raise ValueError(f"claim {claim.get('id')}: unknown expect {expect!r}; valid: {', '.join(EXPECTS)}")
    base = runs[runs["status"] == "done"] if claim.get("exclude_diverged", False) else runs
    base = _filter(base, claim.get("where"))
    metric_a = claim.get("metric_a", claim.get("metric"))
    reduce = claim.get("reduce", "mean")
    fill = claim.get("fill_na")
    a = _per_seed(base, claim.get("a"), metric_a, reduce, claim.get("a_minus"), fill)
    b = None
    if expect != "between":
        b = _per_seed(base, claim.get("b"), claim.get("metric_b", claim.get("metric")), reduce,
                      claim.get("b_minus"), fill)
    common = a.index.intersection(b.index) if b is not None else a.index
    paired = b is not None and len(common) == len(a) == len(b)
    enough = len(a) >= 2 and (b is None or len(b) >= 2)
    if enough:
        effect, lo, hi = bootstrap_interval(a.to_numpy(float), None if b is None else b.to_numpy(float), paired)
        verdict = judge(expect, lo, hi, float(claim.get("margin", 0.0)), claim.get("range"))
    else:
        effect, lo, hi, verdict = float("nan"), float("nan"), float("nan"), "inconclusive"
    return Verdict(id=claim["id"], text=claim.get("text", ""), expect=_expect_text(claim),
                   a=float(a.mean()) if len(a) else float("nan"),
                   b=float(b.mean()) if b is not None and len(b) else None,
                   effect=effect, lo=lo, hi=hi, n_a=len(a), n_b=0 if b is None else len(b), verdict=verdict,
                   paper=claim.get("paper", ""), metric=metric_a if b is None or metric_a == claim.get(
                       "metric_b", metric_a) else f"{metric_a} vs {claim.get('metric_b')}")


def _expect_text(claim: dict) -> str:
    e, m = claim["expect"], claim.get("margin", 0)
    return {"greater": f"a - b > {m}", "less": f"a - b < {-m:g}", "equal": f"|a - b| < {m}",
            "between": f"a in {claim.get('range')}"}[e]


def evaluate_claims(runs: pd.DataFrame, claims: list[dict]) -> pd.DataFrame:
    columns = list(Verdict.__dataclass_fields__)
    return pd.DataFrame([evaluate_claim(runs, c).row() for c in claims], columns=columns)
