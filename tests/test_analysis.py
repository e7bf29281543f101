"""Analysis on constructed frames: verdict rules, claim evaluation (paired/unpaired), derived metrics,
figures, and the results index."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from normrepro.analysis.claims import EXPECTS, ClaimSpecError, Verdict, evaluate_claim, evaluate_claims, judge
from normrepro.analysis.derive import add_derived, derive_one
from normrepro.analysis.plots import make_figure, save_figure
from normrepro.analysis.report import write_index
from normrepro.errors import UserError
from normrepro.store import MetricsWriter, read_metrics


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# ------------------------------------------------------------------------------------------ judge
@pytest.mark.parametrize("expect,lo,hi,margin,bounds,verdict", [
    ("greater", 0.1, 0.3, 0.0, None, "reproduced"),
    ("greater", -0.3, -0.1, 0.0, None, "not reproduced"),
    ("greater", -0.1, 0.2, 0.0, None, "inconclusive"),
    ("greater", 0.05, 0.3, 0.1, None, "inconclusive"),  # above 0 but not clearly above the margin
    ("greater", 0.0, 0.1, 0.1, None, "not reproduced"),  # wholly at or below the margin
    ("less", -0.3, -0.1, 0.0, None, "reproduced"),
    ("less", 0.1, 0.3, 0.0, None, "not reproduced"),
    ("less", -0.2, 0.1, 0.0, None, "inconclusive"),
    ("less", -0.3, -0.05, 0.1, None, "inconclusive"),
    ("equal", -0.05, 0.05, 0.1, None, "reproduced"),
    ("equal", 0.2, 0.3, 0.1, None, "not reproduced"),
    ("equal", -0.3, -0.2, 0.1, None, "not reproduced"),
    ("equal", 0.05, 0.2, 0.1, None, "inconclusive"),
    ("between", 0.65, 0.68, 0.0, (0.6, 0.7), "reproduced"),
    ("between", 0.8, 0.9, 0.0, (0.6, 0.7), "not reproduced"),
    ("between", 0.4, 0.5, 0.0, (0.6, 0.7), "not reproduced"),
    ("between", 0.55, 0.65, 0.0, (0.6, 0.7), "inconclusive"),
])
def test_judge(expect, lo, hi, margin, bounds, verdict):
    assert judge(expect, lo, hi, margin, bounds) == verdict


def test_judge_rejects_unknown_expect():
    with pytest.raises(ClaimSpecError, match=", ".join(EXPECTS)):
        judge("bigger", 0.0, 1.0)


# ------------------------------------------------------------------------------- evaluate_claim
def runs_frame(arms: dict[str, list[float]], seeds: dict[str, list[int]] | None = None, metric="final_test_acc"):
    rows = []
    for arm, values in arms.items():
        for i, value in enumerate(values):
            seed = seeds[arm][i] if seeds else i
            rows.append({"norm.kind": arm, "seed": seed, metric: value, "status": "done"})
    return pd.DataFrame(rows)


CLAIM = {"id": "c", "text": "BN is better", "metric": "final_test_acc", "a": {"norm.kind": "bn"},
         "b": {"norm.kind": "none"}}


def test_claim_reproduced_not_reproduced_inconclusive():
    noise = [0.01, -0.01, 0.005, 0.0, -0.005]
    bn = [0.95 + n for n in noise]
    none = [0.90 + n for n in noise[::-1]]
    v = evaluate_claim(runs_frame({"bn": bn, "none": none}), {**CLAIM, "expect": "greater"})
    assert isinstance(v, Verdict) and v.verdict == "reproduced"
    assert v.a == pytest.approx(0.95) and v.b == pytest.approx(0.90) and v.effect == pytest.approx(0.05)
    assert v.lo <= v.effect <= v.hi and (v.n_a, v.n_b) == (5, 5)
    assert evaluate_claim(runs_frame({"bn": bn, "none": none}), {**CLAIM, "expect": "less"}).verdict == \
        "not reproduced"
    mixed = runs_frame({"bn": [0.9, 0.95, 0.85, 0.92, 0.88], "none": [0.91, 0.86, 0.94, 0.89, 0.90]})
    assert evaluate_claim(mixed, {**CLAIM, "expect": "greater"}).verdict == "inconclusive"
    # equal within a margin
    assert evaluate_claim(runs_frame({"bn": bn, "none": bn}), {**CLAIM, "expect": "equal", "margin": 0.01}
                          ).verdict == "reproduced"
    assert evaluate_claim(runs_frame({"bn": bn, "none": none}), {**CLAIM, "expect": "equal", "margin": 0.01}
                          ).verdict == "not reproduced"


def test_between_uses_arm_a_alone():
    runs = runs_frame({"bn": [0.67, 0.68, 0.69, 0.68, 0.68], "none": [1.0] * 5}, metric="frac")
    claim = {"id": "mid68", "metric": "frac", "a": {"norm.kind": "bn"}, "expect": "between"}
    v = evaluate_claim(runs, {**claim, "range": [0.63, 0.73]})
    assert v.verdict == "reproduced" and v.b is None and v.n_b == 0 and v.effect == pytest.approx(0.68)
    assert v.method == "one-sample t" and v.reason == ""
    assert evaluate_claim(runs, {**claim, "range": [0.9, 0.95]}).verdict == "not reproduced"
    straddles = evaluate_claim(runs, {**claim, "range": [0.675, 0.7]})
    assert straddles.verdict == "inconclusive" and "neither wholly inside nor wholly outside" in straddles.reason


def test_paired_seeds_remove_the_shared_seed_variance():
    base = [0.5, 0.9, 0.6, 0.8, 0.7]  # large seed-to-seed spread, shared by both arms
    bn = [b + 0.01 for b in base]
    paired = evaluate_claim(runs_frame({"bn": bn, "none": base}), {**CLAIM, "expect": "greater"})
    assert paired.verdict == "reproduced" and paired.lo == pytest.approx(0.01) and paired.hi == pytest.approx(0.01)
    assert paired.method == "paired t" and paired.half_width == pytest.approx(0.0, abs=1e-12)
    # the same numbers on disjoint seeds cannot be paired: Welch's interval, and the spread dominates
    unpaired = evaluate_claim(runs_frame({"bn": bn, "none": base}, {"bn": [0, 1, 2, 3, 4], "none": [5, 6, 7, 8, 9]}),
                              {**CLAIM, "expect": "greater"})
    assert unpaired.verdict == "inconclusive" and unpaired.method == "Welch t"
    assert unpaired.effect == pytest.approx(0.01) and unpaired.hi - unpaired.lo > 0.1
    assert unpaired.half_width == pytest.approx((unpaired.hi - unpaired.lo) / 2)


def test_the_interval_is_the_t_interval_not_the_seed_range():
    diffs = [0.01, 0.03, 0.02, 0.05, 0.04]
    v = evaluate_claim(runs_frame({"bn": [0.9 + d for d in diffs], "none": [0.9] * 5}), {**CLAIM, "expect": "greater"})
    half = 2.776445 * np.std(diffs, ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert v.half_width == pytest.approx(half, rel=1e-5)
    assert (v.lo, v.hi) == pytest.approx((0.03 - half, 0.03 + half), rel=1e-5)


def test_enough_seeds_switch_to_bca():
    from normrepro.analysis.intervals import BCA_MIN_N

    rng = np.random.default_rng(0)
    bn, none = 0.9 + rng.normal(0, 0.01, BCA_MIN_N), 0.8 + rng.normal(0, 0.01, BCA_MIN_N)
    v = evaluate_claim(runs_frame({"bn": list(bn), "none": list(none)}), {**CLAIM, "expect": "greater"})
    assert v.method == "BCa bootstrap (paired)" and v.verdict == "reproduced" and v.lo < v.effect < v.hi


def test_too_few_seeds_is_inconclusive_by_rule():
    one = evaluate_claim(runs_frame({"bn": [0.99], "none": [0.1]}), {**CLAIM, "expect": "greater"})
    assert one.verdict == "inconclusive" and math.isnan(one.lo) and (one.n_a, one.n_b) == (1, 1)
    assert one.effect == pytest.approx(0.89) and "n < 5" in one.reason
    # four seeds, clearly separated: the interval alone would decide, the seeds rule does not let it
    four = evaluate_claim(runs_frame({"bn": [0.99, 0.98, 0.99, 0.97], "none": [0.1, 0.12, 0.11, 0.1]}),
                          {**CLAIM, "expect": "greater"})
    assert four.verdict == "inconclusive" and four.lo > 0.8
    assert four.reason == "n < 5 seeds per arm (4 in a, 4 in b): too few to decide; the interval alone would say reproduced"
    five = evaluate_claim(runs_frame({"bn": [0.99, 0.98, 0.99, 0.97, 0.98], "none": [0.1, 0.12, 0.11, 0.1, 0.1]}),
                          {**CLAIM, "expect": "greater"})
    assert five.verdict == "reproduced"
    # every arm counts: five in a, four in b
    lopsided = evaluate_claim(runs_frame({"bn": [0.99, 0.98, 0.99, 0.97, 0.98], "none": [0.1, 0.12, 0.11, 0.1]}),
                              {**CLAIM, "expect": "greater"})
    assert lopsided.verdict == "inconclusive" and "4 in b" in lopsided.reason


def test_several_runs_of_a_seed_are_averaged_and_where_filters_first():
    runs = pd.DataFrame([
        {"norm.kind": k, "model.arch": arch, "seed": s, "final_test_acc": acc + 0.001 * s, "status": "done"}
        for s in range(5)
        for k, arch, acc in (("bn", "mlp", 0.9), ("bn", "mlp", 0.8), ("none", "mlp", 0.7), ("bn", "vgg", 0.1),
                             ("none", "vgg", 0.9))
    ])
    v = evaluate_claim(runs, {**CLAIM, "where": {"model.arch": "mlp"}, "expect": "greater"})
    assert v.a == pytest.approx(0.852) and v.b == pytest.approx(0.702) and v.verdict == "reproduced"
    with pytest.raises(ClaimSpecError, match="claim c: filter on 'norm.placement'"):
        evaluate_claim(runs, {**CLAIM, "a": {"norm.placement": "x"}, "expect": "greater"})
    with pytest.raises(ClaimSpecError, match="claim c: metric 'final_acc' is not a column"):
        evaluate_claim(runs, {**CLAIM, "metric": "final_acc", "expect": "greater"})


def test_exclude_diverged_and_two_metrics():
    runs = runs_frame({"bn": [0.9, 0.91, 0.92, 0.9, 0.91], "none": [0.5, 0.52, 0.51, 0.5, 0.52]})
    runs["pre"] = [0.1, 0.12, 0.11, 0.1, 0.12, 0.2, 0.22, 0.21, 0.2, 0.22]
    runs["post"] = [0.5, 0.52, 0.51, 0.5, 0.52, 0.6, 0.62, 0.61, 0.6, 0.62]
    two = evaluate_claim(runs, {"id": "pre_vs_post", "metric_a": "pre", "metric_b": "post", "expect": "less"})
    assert two.verdict == "reproduced" and two.metric == "pre vs post" and two.method == "paired t"
    assert two.effect == pytest.approx(-0.4)
    runs.loc[runs["norm.kind"] == "none", "status"] = "diverged"
    v = evaluate_claim(runs, {**CLAIM, "expect": "greater", "exclude_diverged": True})
    assert v.n_b == 0 and v.verdict == "inconclusive" and "0 in b" in v.reason
    # kept in, the diverged arm makes the claim untestable
    kept = evaluate_claim(runs, {**CLAIM, "expect": "greater"})
    assert kept.verdict == "not testable here" and "arm b (norm.kind=none): diverged in 5 of 5 runs" in kept.reason


def test_reduce_range_and_minus_arms():
    """`reduce: range` over a seed's runs (spread across init scales); `a_minus` turns an arm into a difference."""
    rows = []
    for seed in range(5):
        for std, bn_acc, none_acc in ((0.01, 0.95, 0.90), (1.0, 0.94 + 0.001 * seed, 0.30 + 0.001 * seed ** 2)):
            rows += [{"norm.kind": "bn", "model.init_std": std, "seed": seed, "acc": bn_acc},
                     {"norm.kind": "none", "model.init_std": std, "seed": seed, "acc": none_acc}]
    runs = pd.DataFrame(rows).assign(status="done")
    spread = evaluate_claim(runs, {"id": "flat", "metric": "acc", "reduce": "range", "a": {"norm.kind": "bn"},
                                   "b": {"norm.kind": "none"}, "expect": "less"})
    assert spread.verdict == "reproduced" and spread.b == pytest.approx(np.mean([0.6 - 0.001 * s ** 2
                                                                                 for s in range(5)]))
    assert spread.a == pytest.approx(np.mean([0.01 - 0.001 * s for s in range(5)]))
    gain = evaluate_claim(runs, {"id": "gain", "metric": "acc", "a": {"norm.kind": "bn", "model.init_std": 1.0},
                                 "a_minus": {"norm.kind": "none"}, "b": {"norm.kind": "bn", "model.init_std": 0.01},
                                 "b_minus": {"norm.kind": "none"}, "expect": "greater"})
    assert gain.b == pytest.approx(0.05) and gain.verdict == "reproduced"
    assert gain.a == pytest.approx(np.mean([0.64 + 0.001 * s - 0.001 * s ** 2 for s in range(5)]))


def test_claim_spec_errors_are_one_line_user_errors():
    runs = runs_frame({"bn": [0.9] * 5, "none": [0.5] * 5})
    cases = [({**CLAIM, "expect": "bigger"}, "claim c: unknown expect 'bigger'; valid: " + ", ".join(EXPECTS)),
             ({**CLAIM, "expect": "greater", "reduce": "median"}, "claim c: unknown reduce 'median'"),
             ({**CLAIM, "expect": "between"}, "claim c: expect between needs range"),
             ({**CLAIM, "expect": "greater", "about_divergence": "yes"}, "about_divergence must be true or false"),
             ({**CLAIM, "expect": "greater", "requires_reached": "steps_to_97"},
              "requires_reached: 'steps_to_97' is not a steps_to derived metric")]
    for claim, message in cases:
        with pytest.raises(UserError) as err:
            evaluate_claim(runs, claim)
        assert message in str(err.value) and "\n" not in str(err.value)


def test_no_claims_gives_an_empty_table_that_indexes(tmp_path):
    verdicts = evaluate_claims(pd.DataFrame({"seed": [0]}), [])
    assert verdicts.empty and {"verdict", "reason", "method", "half_width"} <= set(verdicts.columns)
    (tmp_path / "sweep").mkdir()
    verdicts.to_csv(tmp_path / "sweep" / "verdicts.csv", index=False)
    (tmp_path / "exp").mkdir()
    evaluate_claims(runs_frame({"bn": [0.9, 0.91], "none": [0.5, 0.5]}), [{**CLAIM, "expect": "greater"}]).to_csv(
        tmp_path / "exp" / "verdicts.csv", index=False)
    index = write_index(tmp_path).read_text()
    assert "| [`sweep`](sweep/REPORT.md) | 0 | - | - | - | - |" in index
    assert "| [`exp`](exp/REPORT.md) | 1 | 0 | 0 | 1 | 0 |" in index
    assert "| [`exp`](exp/REPORT.md) | c | BN is better | **inconclusive** | n < 5" in index
    assert "| experiment | claims | reproduced | not reproduced | inconclusive | not testable here |" in index


# ------------------------------------------------------------------------------------------ derive
def metrics_frame():
    rows = []
    for step, acc in ((0, 0.1), (6, 0.5), (12, 0.8), (18, 0.95), (24, 0.93)):
        rows.append({"step": step, "split": "test", "metric": "acc", "value": acc})
    for step in (0, 6, 12):
        for unit, scale in ((0, 1.0), (1, 2.0)):
            rows.append({"step": step, "split": "probe", "metric": "preact_p50", "value": scale * step,
                         "layer": "3", "unit": unit})
        rows.append({"step": step, "split": "probe", "metric": "frac_mid68", "value": 0.1 * step, "layer": "1"})
        rows.append({"step": step, "split": "probe", "metric": "frac_mid68", "value": 0.1 * step + 1, "layer": "2"})
    frame = pd.DataFrame(rows)
    frame["run"] = "r"
    return frame


@pytest.mark.parametrize("spec,expected", [
    ({"kind": "final", "split": "test", "metric": "acc"}, 0.93),
    ({"kind": "max", "split": "test", "metric": "acc"}, 0.95),
    ({"kind": "min", "split": "test", "metric": "acc"}, 0.1),
    ({"kind": "mean", "split": "test", "metric": "acc", "from_step": 12}, (0.8 + 0.95 + 0.93) / 3),
    ({"kind": "at_step", "split": "test", "metric": "acc", "step": 6}, 0.5),
    ({"kind": "at_step", "split": "test", "metric": "acc", "step": 7}, 0.8),  # the next logged step
    ({"kind": "at_step", "split": "test", "metric": "acc", "step": 30}, float("nan")),
    ({"kind": "final", "split": "probe", "metric": "frac_mid68"}, 1.7),  # mean over layers
    ({"kind": "final", "split": "probe", "metric": "frac_mid68", "layer": 2}, 2.2),
    ({"kind": "range", "split": "probe", "metric": "preact_p50"}, (12 + 24) / 2),  # per unit, then mean
    ({"kind": "range", "split": "probe", "metric": "preact_p50", "from_step": 6}, (6 + 12) / 2),
    ({"kind": "range", "split": "probe", "metric": "preact_p50", "unit": 1}, 24),
    ({"kind": "final", "split": "val", "metric": "acc"}, float("nan")),  # nothing selected
])
def test_derive_kinds(spec, expected):
    value = derive_one(metrics_frame(), {"name": "x", **spec}, budget=24)["x"]
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == pytest.approx(expected)


def test_steps_to_with_censoring():
    frame = metrics_frame()
    spec = {"name": "t", "kind": "steps_to", "split": "test", "metric": "acc"}
    assert derive_one(frame, {**spec, "threshold": 0.5}, 24) == {"t": 6.0, "t_reached": True}
    assert derive_one(frame, {**spec, "threshold": 0.94}, 24) == {"t": 18.0, "t_reached": True}
    assert derive_one(frame, {**spec, "threshold": 0.99}, 500) == {"t": 500.0, "t_reached": False}
    assert derive_one(frame, {**spec, "threshold": 0.6, "below": True}, 24) == {"t": 0.0, "t_reached": True}


def test_derive_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown kind 'median'"):
        derive_one(metrics_frame(), {"name": "x", "kind": "median", "split": "test", "metric": "acc"}, 1)


def test_add_derived_per_run_budget_and_expressions():
    m1, m2 = metrics_frame(), metrics_frame()
    m2["run"] = "s"
    m2.loc[m2["metric"] == "acc", "value"] = 0.2
    runs = pd.DataFrame({"run": ["r", "s"], "train.steps": [24, 100], "final_test_acc": [0.93, 0.2],
                         "final_train_eval_acc": [0.99, 0.3]})
    specs = [{"name": "t90", "kind": "steps_to", "split": "test", "metric": "acc", "threshold": 0.9},
             {"name": "gap", "kind": "expr", "expr": "final_train_eval_acc - final_test_acc"}]
    out = add_derived(runs, pd.concat([m1, m2]), specs, "train.steps", 0)
    assert out["t90"].tolist() == [18.0, 100.0]  # run s never gets there: censored at its own budget
    assert out["t90_reached"].tolist() == [True, False]
    assert out["gap"].tolist() == pytest.approx([0.06, 0.1])


def test_unit_and_layer_filters_work_on_frames_read_back_from_disk(tmp_path):
    """read_metrics gives `unit` as float (NaN where absent): a `unit: 0` filter must still match."""
    writer = MetricsWriter(tmp_path / "m.jsonl")
    for step in (0, 6):
        writer.write(step, 0, "test", "acc", 0.5)
        for unit in (0, 1):
            writer.write(step, 0, "probe", "preact_p50", step + 10 * unit, layer="3", unit=unit)
    writer.close()
    frame = read_metrics(tmp_path / "m.jsonl").assign(run="r", seed=0, **{"norm.kind": "bn"})
    spec = {"name": "x", "kind": "final", "split": "probe", "metric": "preact_p50", "unit": 0, "layer": 3}
    assert derive_one(frame, spec, 6)["x"] == 6.0
    fig = make_figure(frame, {"name": "p", "kind": "line", "where": {"split": "probe", "unit": 0}, "x": "step",
                              "y": "value", "hue": "norm.kind"})
    assert len(fig.axes[0].lines[0].get_xdata()) == 2


# ------------------------------------------------------------------------------------------- plots
def curves():
    rows = []
    for norm, seeds in (("bn", (0, 1)), ("none", (0, 1, 2))):
        for seed in seeds:
            for step in (0, 6, 12):
                rows.append({"norm.kind": norm, "seed": seed, "step": step, "split": "test", "metric": "acc",
                             "value": 0.1 + 0.05 * step + 0.01 * seed, "model.placement": "before_act"})
    return pd.DataFrame(rows)


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()] + \
        [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_line_figure_has_n_in_the_legend_and_spread_bands(tmp_path):
    spec = {"name": "acc", "kind": "line", "where": {"split": "test", "metric": "acc"}, "x": "step",
            "y": "value", "hue": "norm.kind", "ylabel": "test accuracy", "ylim": [0, 1]}
    fig = make_figure(curves(), spec)
    assert sorted(legend_texts(fig)) == ["bn (n=2)", "none (n=3)"]
    ax = fig.axes[0]
    assert ax.get_ylabel() == "test accuracy" and ax.get_ylim() == (0.0, 1.0)
    assert len(ax.lines) >= 2 and len(ax.collections) >= 2  # a mean line and a min-max band per arm
    paths = save_figure(fig, tmp_path / "figures", "acc")
    assert [p.name for p in paths] == ["acc.png", "acc.pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_point_figure_from_runs_and_combined_hue():
    runs = curves().query("step == 12")
    fig = make_figure(runs, {"name": "final", "kind": "point", "source": "runs", "x": "norm.kind",
                             "y": "value", "hue": ["norm.kind", "model.placement"]})
    assert sorted(legend_texts(fig)) == ["bn / before_act (n=2)", "none / before_act (n=3)"]


def test_point_figure_with_a_single_hue_level():
    # seaborn divides the dodge width by (levels - 1): one level must not crash (ln_vs_bn's BN-only plot)
    runs = curves().query("step == 12 and `norm.kind` == 'bn'")
    fig = make_figure(runs, {"name": "final", "kind": "point", "source": "runs", "x": "model.placement",
                             "y": "value", "hue": "norm.kind"})
    assert legend_texts(fig) == ["bn (n=2)"]


def test_figure_raises_when_the_filter_selects_nothing():
    with pytest.raises(ValueError, match="no rows match"):
        make_figure(curves(), {"name": "empty", "where": {"split": "val"}, "x": "step", "y": "value"})
    with pytest.raises(ValueError, match="unknown kind 'pie'"):
        make_figure(curves(), {"name": "pie", "kind": "pie", "x": "step", "y": "value"})
