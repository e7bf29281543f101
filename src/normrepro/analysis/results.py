"""A run's final and best evaluations, derived from its metrics rows (the one result vocabulary, issue 10).

An evaluation is a row ``{step, split, metric, value, bn_mode}`` of ``metrics.jsonl``, written once by the
evaluator. The runs frame's ``final_<split>_<metric><suffix>`` (the value at the last evaluated step) and
``best_<split>_<metric><suffix>`` (the highest accuracy, the lowest loss or bits per character, NaN
skipped) are computed here from those rows, so ``summary.json`` keeps only the run's facts (status, times,
versions, SHA, device, threads). ``<suffix>`` names the BN statistics mode (``store.evaluation_key``).

Light on purpose (pandas, no torch): the analysis imports nothing from training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from normrepro.analysis.columns import EVALUATED_METRICS, EVALUATED_SPLITS, summary_column
from normrepro.errors import UserError
from normrepro.store import evaluation_key, read_metrics

HIGHER_IS_BETTER = ("acc",)


class ResultNameError(UserError, ValueError):
    """A claim or plot names a result with a malformed ``{of, split, metric, bn_mode}`` mapping."""


def evaluations(rows: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows of one run, each with its key ``<split>/<metric><suffix>``, in logged order."""
    if rows.empty or not {"split", "metric", "value"} <= set(rows.columns):
        return pd.DataFrame(columns=["key", "step", "metric", "value"])
    picked = rows[rows["split"].isin(EVALUATED_SPLITS) & rows["metric"].isin(EVALUATED_METRICS)]
    modes = picked["bn_mode"] if "bn_mode" in picked else pd.Series(None, index=picked.index, dtype=object)
    keys = [evaluation_key(s, m, b) for s, m, b in zip(picked["split"], picked["metric"], modes)]
    out = pd.DataFrame({"key": keys, "step": picked["step"], "metric": picked["metric"],
                        "value": pd.to_numeric(picked["value"], errors="coerce")})
    return out.reset_index(drop=True)


def final_and_best(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{"final": {key: value}, "best": {key: value}}`` for one run's rows (see the module docstring)."""
    evaluated = evaluations(rows)
    final, best = {}, {}
    for key, group in evaluated.groupby("key", sort=True):
        ordered = group.sort_values("step", kind="stable")  # ties keep the logged order
        final[key] = float(ordered["value"].iloc[-1])
        values = ordered["value"]
        best[key] = float(values.max() if group["metric"].iat[0] in HIGHER_IS_BETTER else values.min())
    return {"final": final, "best": best}


def result_row(rows: pd.DataFrame) -> dict[str, float]:
    """The runs-frame columns of one run: ``final_*`` and ``best_*`` for every evaluated key."""
    derived = final_and_best(rows)
    return {summary_column(kind, key): value for kind, values in derived.items() for key, value in values.items()}


def evaluated(run_dir) -> dict[str, dict[str, float]]:
    """``final_and_best`` of the run in ``run_dir`` (its ``metrics.jsonl``)."""
    return final_and_best(read_metrics(Path(run_dir) / "metrics.jsonl"))


# ------------------------------------------------------------------------- naming a result in a spec
RESULT_REF_KEYS = {"of", "split", "metric", "bn_mode"}
CLAIM_METRIC_FIELDS = ("metric", "metric_a", "metric_b")


def result_column(ref, where: str = "") -> str:
    """A claim's metric or a runs plot's ``y`` written as ``{of: final|best, split, metric, bn_mode}`` ->
    its runs-frame column (``{split: test, metric: acc, bn_mode: precise@10000}`` ->
    ``final_test_acc_precise10000``); a plain string (a column or a derived name) is returned as it is."""
    if not isinstance(ref, dict):
        return ref
    unknown = set(ref) - RESULT_REF_KEYS
    kind = ref.get("of", "final")
    if unknown or not {"split", "metric"} <= set(ref) or kind not in ("final", "best"):
        raise ResultNameError(f"{where}: a result is named {{of: final|best, split, metric, bn_mode}}, got {ref}")
    if ref["split"] not in EVALUATED_SPLITS or ref["metric"] not in EVALUATED_METRICS:
        raise ResultNameError(f"{where}: {ref}: split must be one of {', '.join(EVALUATED_SPLITS)} and metric one "
                             f"of {', '.join(EVALUATED_METRICS)} (the evaluations)")
    try:
        return summary_column(kind, evaluation_key(ref["split"], ref["metric"], ref.get("bn_mode")))
    except ValueError as err:
        raise ResultNameError(f"{where}: {err}") from None


def name_result_columns(spec: dict) -> dict:
    """``spec`` (a resolved experiment config) with every structured result reference of its claims and
    plots replaced by the column it names (``result_column``); the rest of the analysis sees column names."""
    claims = [{k: result_column(v, f"claim {c.get('id')}") if k in CLAIM_METRIC_FIELDS else v
               for k, v in c.items()} for c in spec.get("claims") or []]
    plots = [{k: result_column(v, f"plot {p.get('name')}") if k == "y" else v for k, v in p.items()}
             for p in spec.get("plots") or []]
    return {**spec, "claims": claims, "plots": plots}
