"""Health checks make a claim *not testable here*: an arm that diverged (unless the claim is about divergence),
whose training loss did not fall, that fails a declared ``health:`` bound or a ``requires_reached`` budget
criterion. The reason names the arm, the check and the values; malformed health keys are one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

from normrepro.analysis.claims import evaluate_claims
from normrepro.analysis.health import HealthSpecError
from normrepro.errors import UserError

SEEDS = range(5)
CLAIM = {"id": "higher", "text": "BN is better", "metric": "final_test_acc", "a": {"norm.kind": "bn"},
         "b": {"norm.kind": "none"}, "expect": "greater"}


def runs_frame(none_acc=0.5, none_status="done") -> pd.DataFrame:
    rows = []
    for kind, acc, status in (("bn", 0.9, "done"), ("none", none_acc, none_status)):
        for s in SEEDS:
            rows.append({"norm.kind": kind, "seed": s, "run": f"norm={kind},seed={s}", "status": status,
                         "final_test_acc": acc + 0.01 * s, "diverged": float(status == "diverged"),
                         "steps_to_90": 100.0, "steps_to_90_reached": True})
    return pd.DataFrame(rows)


def metrics_frame(runs: pd.DataFrame, rising=()) -> pd.DataFrame:
    """Training loss 2.3 -> 0.5 for every run, 2.3 -> 2.5 for the runs in ``rising``."""
    rows = []
    for run in runs["run"]:
        for step, loss in ((0, 2.3), (50, 1.0), (100, 2.5 if run in rising else 0.5)):
            rows.append({"run": run, "step": step, "split": "train", "metric": "loss", "value": loss})
            rows.append({"run": run, "step": step, "split": "test", "metric": "acc", "value": 0.5})
    return pd.DataFrame(rows)


def verdict(runs, claims=(CLAIM,), metrics=None, health=None) -> pd.Series:
    return evaluate_claims(runs, list(claims), metrics, health).iloc[0]


def test_healthy_arms_are_judged():
    runs = runs_frame()
    v = verdict(runs, metrics=metrics_frame(runs))
    assert v.verdict == "reproduced" and v.reason == ""


def test_a_diverged_arm_is_not_testable_unless_the_claim_is_about_divergence():
    runs = runs_frame(none_status="diverged")
    v = verdict(runs, metrics=metrics_frame(runs))
    assert v.verdict == "not testable here"
    assert v.reason.startswith("arm b (norm.kind=none): diverged in 5 of 5 runs (norm=none,seed=0, "
                               "norm=none,seed=1, norm=none,seed=2, ...) and the claim is not about divergence")
    # the diverged runs' training loss is not held against a divergence claim either
    metrics = metrics_frame(runs, rising=set(runs.loc[runs["norm.kind"] == "none", "run"]))
    assert verdict(runs, [{**CLAIM, "about_divergence": True}], metrics).verdict == "reproduced"
    # a claim on the `diverged` column is about divergence without saying so
    on_diverged = {**CLAIM, "metric": "diverged", "a": {"norm.kind": "none"}, "b": {"norm.kind": "bn"}}
    v = verdict(runs, [on_diverged], metrics)
    assert v.verdict == "reproduced" and v.effect == 1.0


def test_an_arm_whose_training_loss_did_not_fall_is_not_testable():
    runs = runs_frame()
    v = verdict(runs, metrics=metrics_frame(runs, rising={"norm=bn,seed=3"}))
    assert v.verdict == "not testable here"
    assert v.reason == ("arm a (norm.kind=bn): training loss did not fall in 1 of 5 runs "
                        "(first -> last: norm=bn,seed=3: 2.3 -> 2.5)")
    # without a metrics frame the check has nothing to read and is skipped
    assert verdict(runs).verdict == "reproduced"
    # nor can it judge a run that logged a single training step (a measurement at init)
    one_step = metrics_frame(runs, rising={"norm=bn,seed=3"})
    one_step = one_step[~((one_step["run"] == "norm=bn,seed=3") & (one_step["step"] < 100))]
    assert verdict(runs, metrics=one_step).verdict == "reproduced"


def test_not_testable_wins_over_too_few_seeds():
    runs = runs_frame(none_status="diverged").query("seed < 3")
    v = verdict(runs)
    assert v.verdict == "not testable here" and "n < 5" not in v.reason


def test_a_declared_health_bound():
    runs = runs_frame(none_acc=0.08)
    check = {"where": {"norm.kind": "none"}, "metric": "final_test_acc", "min": 0.2,
             "text": "trained above chance (0.1)"}
    v = verdict(runs, health=[check])
    assert v.verdict == "not testable here"
    assert v.reason == ('arm b (norm.kind=none): fails "trained above chance (0.1)" in 5 of 5 runs '
                        "(final_test_acc = 0.08, 0.09, 0.1, ...; needs min 0.2)")
    assert verdict(runs_frame(), health=[check]).verdict == "reproduced"  # 0.5 and up: healthy
    # limited to other claims, it does not apply
    other = {**CLAIM, "id": "other"}
    assert verdict(runs, [CLAIM, other], health=[{**check, "claims": ["other"]}]).verdict == "reproduced"
    # a missing value fails the check too: the run has nothing to show
    v = verdict(runs_frame().assign(final_test_acc=lambda f: f["final_test_acc"].where(f["seed"] != 2)),
                health=[{"metric": "final_test_acc", "max": 1.0, "text": "has an accuracy"}])
    assert v.verdict == "not testable here" and "final_test_acc = missing; needs max 1" in v.reason


def test_requires_reached_is_a_budget_criterion():
    runs = runs_frame()
    runs.loc[(runs["norm.kind"] == "none") & (runs["seed"] < 2), "steps_to_90_reached"] = False
    claim = {**CLAIM, "metric": "steps_to_90", "expect": "less", "requires_reached": "steps_to_90"}
    v = verdict(runs, [claim])
    assert v.verdict == "not testable here"
    assert v.reason == ("arm b (norm.kind=none): the budget ended before steps_to_90's threshold was reached in "
                        "2 of 5 runs (norm=none,seed=0, norm=none,seed=1)")
    # read back from CSV, the column holds strings or booleans alike
    runs["steps_to_90_reached"] = runs["steps_to_90_reached"].astype(str)
    assert verdict(runs, [claim]).verdict == "not testable here"
    assert verdict(runs, [{**claim, "requires_reached": None}]).verdict != "not testable here"


@pytest.mark.parametrize("health,message", [
    ({"metric": "final_test_acc", "min": 0.2}, "health: must be a list"),
    ([{"metric": "final_test_acc", "min": 0.2, "text": "t", "wehre": {}}], "health[0]: unknown key(s) wehre"),
    ([{"metric": "final_test_acc", "text": "t"}], "health[0]: give a bound, `min` and/or `max`"),
    ([{"metric": "final_acc", "min": 0.2, "text": "t"}], "health[0]: metric 'final_acc' is not a column"),
    ([{"metric": "final_test_acc", "min": "high", "text": "t"}], "health[0]: `min` must be a number"),
    ([{"metric": "final_test_acc", "min": 0.2}], "health[0]: needs `metric` (a runs column) and `text`"),
    ([{"where": {"norm": "bn"}, "metric": "final_test_acc", "min": 0.2, "text": "t"}],
     "health[0]: `where` filters on norm, not columns"),
    ([{"metric": "final_test_acc", "min": 0.2, "text": "t", "claims": ["hihger"]}],
     "health[0]: `claims` names unknown claim(s) hihger; claims: higher"),
])
def test_malformed_health_blocks_are_one_line_errors(health, message):
    with pytest.raises(HealthSpecError) as err:
        evaluate_claims(runs_frame(), [CLAIM], None, health)
    assert isinstance(err.value, UserError) and message in str(err.value) and "\n" not in str(err.value)


def test_failure_is_outcome_exempts_only_the_named_arm():
    """"Without BN the high rate fails": the no-BN arm's stalled loss is the result, not a broken setup."""
    runs = runs_frame(none_acc=0.1)
    none_runs = set(runs.loc[runs["norm.kind"] == "none", "run"])
    claim = {**CLAIM, "failure_is_outcome": ["b"]}
    assert verdict(runs, [claim], metrics_frame(runs, rising=none_runs)).verdict == "reproduced"
    # the arm that must train is still checked: a setup where nothing trains stays not testable
    everything = set(runs["run"])
    v = verdict(runs, [claim], metrics_frame(runs, rising=everything))
    assert v.verdict == "not testable here" and v.reason.startswith("arm a (norm.kind=bn): training loss did not")
    # a declared bound still applies to the exempt arm
    bound = [{"where": {"norm.kind": "none"}, "metric": "final_test_acc", "min": 0.2, "text": "above chance"}]
    assert verdict(runs, [claim], metrics_frame(runs), bound).verdict == "not testable here"
    with pytest.raises(HealthSpecError, match="failure_is_outcome must list arm names"):
        verdict(runs, [{**CLAIM, "failure_is_outcome": ["c"]}])


def test_a_claim_about_the_computation_skips_the_training_loss_check():
    runs = runs_frame()
    stalled = metrics_frame(runs, rising=set(runs["run"]))
    assert verdict(runs, [CLAIM], stalled).verdict == "not testable here"
    assert verdict(runs, [{**CLAIM, "trains": False}], stalled).verdict == "reproduced"
    diverged = runs_frame(none_status="diverged")
    assert verdict(diverged, [{**CLAIM, "trains": False}], stalled).verdict == "not testable here"  # still checked
