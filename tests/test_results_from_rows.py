"""Final and best values come from the evaluation rows (analysis/results.py), never from summary.json."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from normrepro.analysis.results import final_and_best, result_row
from normrepro.store import SchemaError, evaluation_key


def rows(*entries) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(("step", "split", "metric", "value", "bn_mode"), e)) for e in entries])


def test_final_is_the_last_step_and_best_depends_on_the_metric():
    frame = rows((0, "test", "acc", 0.5, None), (10, "test", "acc", 0.9, None), (20, "test", "acc", 0.8, None),
                 (0, "test", "loss", 2.0, None), (10, "test", "loss", 0.4, None), (20, "test", "loss", 0.6, None),
                 (20, "train", "loss", 0.1, None), (20, "probe", "acc", 0.3, None))  # not evaluations
    out = final_and_best(frame)
    assert out["final"] == {"test/acc": 0.8, "test/loss": 0.6}
    assert out["best"] == {"test/acc": 0.9, "test/loss": 0.4}  # highest accuracy, lowest loss


def test_the_bn_mode_names_the_column_and_nan_is_skipped_for_best():
    frame = rows((0, "test", "acc", 0.2, "precise@1000"), (5, "test", "acc", float("nan"), "precise@1000"),
                 (5, "val", "bpc", 1.5, "batch"), (5, "test", "acc", 0.7, "population"))
    out = result_row(frame)
    assert math.isnan(out["final_test_acc_precise1000"]) and out["best_test_acc_precise1000"] == 0.2
    assert out["final_val_bpc_batchstats"] == 1.5 and out["final_test_acc"] == 0.7


@pytest.mark.parametrize("mode, key", [(None, "test/acc"), (float("nan"), "test/acc"), ("population", "test/acc"),
                                       ("shared", "test/acc_sharedstats"), ("batch", "test/acc_batchstats"),
                                       ("ema_slow", "test/acc_emaslow"), ("precise@64", "test/acc_precise64"),
                                       ("batch@8", "test/acc_batch8")])
def test_evaluation_keys(mode, key):
    assert evaluation_key("test", "acc", mode) == key


def test_an_unknown_mode_is_refused():
    with pytest.raises(SchemaError, match="unknown bn_mode 'precise@x'"):
        evaluation_key("test", "acc", "precise@x")


def test_claims_and_plots_may_name_a_result_by_what_was_evaluated():
    from normrepro.analysis.results import ResultNameError, name_result_columns

    spec = {"claims": [{"id": "c", "metric_a": {"split": "test", "metric": "acc", "bn_mode": "precise@10000"},
                        "metric_b": {"of": "best", "split": "val", "metric": "loss"}, "metric": "gap"}],
            "plots": [{"name": "p", "y": {"split": "test", "metric": "acc", "bn_mode": "batch"}, "x": "step"}]}
    named = name_result_columns(spec)
    assert named["claims"][0] == {"id": "c", "metric_a": "final_test_acc_precise10000", "metric_b": "best_val_loss",
                                  "metric": "gap"}
    assert named["plots"][0]["y"] == "final_test_acc_batchstats" and named["plots"][0]["x"] == "step"
    for bad, message in (({"split": "test"}, "a result is named"), ({"split": "probe", "metric": "acc"}, "split must"),
                         ({"split": "test", "metric": "acc", "of": "mean"}, "a result is named"),
                         ({"split": "test", "metric": "acc", "bn_mode": "precise@x"}, "unknown bn_mode")):
        with pytest.raises(ResultNameError, match=message):
            name_result_columns({"claims": [{"id": "c", "metric": bad}]})
