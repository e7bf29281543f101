"""[BN] Sec. 3.3: BN makes a layer invariant to the scale of its weights (norms/scale_check.py)."""

from __future__ import annotations

import pytest

from normrepro.norms.scale_check import measure_scale_invariance

SCALES = (0.1, 1, 10, 100)


@pytest.fixture(scope="module")
def rows():
    return measure_scale_invariance(SCALES)


def test_one_row_per_scale(rows):
    assert [r["scale"] for r in rows] == [float(a) for a in SCALES]
    assert set(rows[0]) >= {"scale", "max_abs_output_diff", "grad_ratio_times_a", "input_grad_max_diff"}


@pytest.mark.parametrize("i", range(len(SCALES)))
def test_output_input_jacobian_and_weight_gradient_scaling(rows, i):
    r = rows[i]
    assert r["max_abs_output_diff"] < 1e-8, r  # BN(aWu) = BN(Wu)
    assert abs(r["grad_ratio_times_a"] - 1) < 1e-6, r  # dL/d(aW) = dL/dW / a
    assert r["input_grad_max_diff"] < 1e-8, r  # d BN(aWu)/du = d BN(Wu)/du


def test_larger_weights_get_smaller_gradients(rows):
    norms = [r["weight_grad_norm"] for r in rows]
    assert norms == sorted(norms, reverse=True)
    assert norms[0] / norms[-1] == pytest.approx(SCALES[-1] / SCALES[0], rel=1e-6)


def test_epsilon_breaks_exact_invariance_slightly():
    """With torch's default eps = 1e-5 the identities hold only approximately, worst for small a."""
    r = {row["scale"]: row for row in measure_scale_invariance((0.1, 1, 10), batch=64, eps=1e-5)}
    assert 1e-8 < r[0.1]["max_abs_output_diff"] < 1e-1
    assert r[10.0]["max_abs_output_diff"] < r[0.1]["max_abs_output_diff"]
