"""The verdict intervals cover the true mean effect about 95% of the time: samples drawn many times from
distributions whose mean is known (normal, and skewed: exponential), with a fixed RNG. The old interval (a
percentile bootstrap over 3 seeds) is shown to cover far less, so these tests would have failed it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normrepro.analysis.intervals import (
    BCA_MIN_N,
    Interval,
    bca,
    mean_effect_interval,
    one_sample_t,
    paired_t,
    welch_t,
)

REPS = 2000  # repetitions of the t intervals (vectorized: one call each)
BCA_REPS = 300  # the bootstrap is one call per repetition: fewer, with a wider tolerance


def coverage(lo, hi, truth) -> float:
    return float(np.mean((lo <= truth) & (truth <= hi)))


@pytest.mark.parametrize("n", [5, 10])
def test_one_sample_t_covers_95_percent_of_normal_means(n):
    x = np.random.default_rng(n).normal(3.0, 2.0, (REPS, n))
    _, lo, hi = one_sample_t(x)
    assert 0.93 <= coverage(lo, hi, 3.0) <= 0.97


@pytest.mark.parametrize("n", [5, 10])
def test_paired_t_covers_95_percent_of_normal_differences(n):
    rng = np.random.default_rng(10 + n)
    shared = rng.normal(0.0, 5.0, (REPS, n))  # a large per-seed effect shared by both arms
    a = shared + 0.3 + rng.normal(0.0, 0.2, (REPS, n))
    b = shared + rng.normal(0.0, 0.2, (REPS, n))
    _, lo, hi = paired_t(a, b)
    assert 0.93 <= coverage(lo, hi, 0.3) <= 0.97


@pytest.mark.parametrize("n_a,n_b", [(5, 5), (10, 10), (5, 10)])
def test_welch_t_covers_95_percent_with_unequal_variances(n_a, n_b):
    rng = np.random.default_rng(100 + n_a + n_b)
    a, b = rng.normal(0.0, 1.0, (REPS, n_a)), rng.normal(1.0, 3.0, (REPS, n_b))
    _, lo, hi = welch_t(a, b)
    assert 0.93 <= coverage(lo, hi, -1.0) <= 0.97


@pytest.mark.parametrize("n", [5, 10])
def test_t_intervals_on_skewed_data_stay_near_95_percent(n):
    """Exponential data (mean 1): the t interval undercovers a little at small n (measured ~0.88-0.89 one-sample,
    ~0.94 Welch), it does not collapse."""
    rng = np.random.default_rng(200 + n)
    _, lo, hi = one_sample_t(rng.exponential(1.0, (REPS, n)))
    assert 0.85 <= coverage(lo, hi, 1.0) <= 0.97
    _, lo, hi = welch_t(rng.exponential(1.0, (REPS, n)), rng.exponential(2.0, (REPS, n)))
    assert 0.90 <= coverage(lo, hi, -1.0) <= 0.97


@pytest.mark.parametrize("dist,truth", [("normal", 0.0), ("exponential", 1.0)])
def test_bca_covers_near_95_percent_from_its_minimum_seeds(dist, truth):
    """BCa at n = BCA_MIN_N (30), one-sample and two-sample (measured: ~0.93 normal, ~0.92 exponential; at
    n = 10 it was ~0.89 / ~0.88, which is why the t interval is used below 30 seeds)."""
    rng = np.random.default_rng(7)
    draw = (lambda size: rng.normal(0.0, 1.0, size)) if dist == "normal" else (lambda size: rng.exponential(1.0, size))
    one = two = 0
    for rep in range(BCA_REPS):
        _, lo, hi = bca(draw(BCA_MIN_N), n_resamples=1000, seed=rep)
        one += lo <= truth <= hi
        _, lo, hi = bca(draw(BCA_MIN_N), draw(BCA_MIN_N), n_resamples=1000, seed=rep)
        two += lo <= 0.0 <= hi
    assert 0.88 <= one / BCA_REPS <= 0.98
    assert 0.88 <= two / BCA_REPS <= 0.98


def old_percentile_bootstrap(x: np.ndarray, rng, n_boot: int = 2000):
    """The interval the verdicts used to take: 2.5/97.5 percentiles of resampled means (one row per sample)."""
    reps, n = x.shape
    idx = rng.integers(0, n, (reps, n_boot, n))
    means = np.take_along_axis(x[:, None, :].repeat(n_boot, 1), idx, axis=2).mean(-1)
    return np.percentile(means, 2.5, axis=1), np.percentile(means, 97.5, axis=1)


def test_the_old_percentile_bootstrap_at_three_seeds_covers_far_less():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (500, 3))
    lo, hi = old_percentile_bootstrap(x, rng)
    old = coverage(lo, hi, 0.0)
    _, lo, hi = one_sample_t(x)
    new = coverage(lo, hi, 0.0)
    assert old < 0.85  # measured ~0.75: the old rule called a claim from an interval this narrow
    assert 0.93 <= new <= 0.97


# ---------------------------------------------------------------------------------- degenerate cases
def test_zero_variance_gives_a_zero_width_interval_at_the_mean():
    for interval in (mean_effect_interval([0.2, 0.2, 0.2]), mean_effect_interval([0.1] * 12),
                     mean_effect_interval([0.0] * 5, [0.0] * 5), mean_effect_interval([1.0] * 5, [0.0] * 6),
                     mean_effect_interval([0.5, 0.9, 0.6], [0.49, 0.89, 0.59], paired=True)):
        assert interval.lo == pytest.approx(interval.effect) and interval.hi == pytest.approx(interval.effect)
        assert interval.half_width == pytest.approx(0.0, abs=1e-12)
    assert mean_effect_interval([1.0] * 5, [0.0] * 6).effect == 1.0


def test_fewer_than_two_values_give_nan_bounds():
    for interval in (mean_effect_interval([0.3]), mean_effect_interval([0.3], [0.1, 0.2]),
                     mean_effect_interval([0.3], [0.1], paired=True), mean_effect_interval([])):
        assert math.isnan(interval.lo) and math.isnan(interval.hi) and math.isnan(interval.half_width)
    assert mean_effect_interval([0.3], [0.1], paired=True).effect == pytest.approx(0.2)


def test_the_method_follows_pairing_and_size():
    rng = np.random.default_rng(0)
    five, ten, big = rng.normal(size=5), rng.normal(size=10), rng.normal(size=BCA_MIN_N)
    assert mean_effect_interval(five).method == "one-sample t"
    assert mean_effect_interval(five, five + 1, paired=True).method == "paired t"
    assert mean_effect_interval(ten).method == "one-sample t"  # t below BCA_MIN_N (30)
    assert mean_effect_interval(five, big).method == "Welch t"  # BCa only when every arm has >= BCA_MIN_N
    assert mean_effect_interval(big).method == "BCa bootstrap (one-sample)"
    assert mean_effect_interval(big, big[::-1] + 1, paired=True).method == "BCa bootstrap (paired)"
    assert mean_effect_interval(big, rng.normal(size=BCA_MIN_N + 2)).method == "BCa bootstrap (unpaired)"


def test_t_interval_matches_the_textbook_numbers():
    # mean 2, s = 1, n = 4: t_{0.975, 3} = 3.182446, half-width 3.182446 * 1 / 2
    interval = mean_effect_interval([1.0, 2.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0], paired=True)
    s = np.std([1.0, 2.0, 2.0, 3.0], ddof=1)
    assert isinstance(interval, Interval) and interval.effect == 2.0
    assert interval.half_width == pytest.approx(3.182446 * s / 2, rel=1e-6)
    # Welch: a = [1, 2, 3] (var 1), b = [0, 0, 0, 0, 1] (var 0.2); df = (1/3 + 0.04)^2 / ((1/3)^2/2 + 0.04^2/4)
    df = (1 / 3 + 0.04) ** 2 / ((1 / 3) ** 2 / 2 + 0.04 ** 2 / 4)
    from scipy import stats

    welch = mean_effect_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 0.0, 1.0])
    assert welch.effect == pytest.approx(1.8)
    assert welch.half_width == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(1 / 3 + 0.04))


def test_bca_is_reproducible_and_brackets_the_mean():
    x = np.random.default_rng(5).exponential(1.0, 12)
    first, second = bca(x), bca(x)
    assert first == second
    effect, lo, hi = first
    assert lo < effect < hi and effect == pytest.approx(x.mean())
