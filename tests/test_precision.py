"""train.precision and train.channels_last (precision.py): what runs in bfloat16, what stays float32, and
which combinations the config check refuses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import evaluated
from normrepro.errors import ConfigError
from normrepro.norms.own import OrthogonalWeight
from normrepro.precision import autocast, use_channels_last
from normrepro.train import run


def test_fp32_is_no_autocast_and_bf16_runs_products_in_bfloat16():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32
    with autocast("bf16", "cpu"):
        out = lin(x)
        assert out.dtype == torch.bfloat16
        assert F.cross_entropy(out.float(), torch.tensor([0, 1, 2])).dtype == torch.float32


def test_own_orthogonalizes_in_float32_inside_a_bf16_forward():
    own = OrthogonalWeight(fan_in=16, group_size=8)
    v = torch.randn(8, 16)
    with autocast("bf16", "cpu"):
        w = own(v)
    assert w.dtype == torch.float32
    expected = own(v)  # the same computation outside autocast
    torch.testing.assert_close(w, expected, rtol=0, atol=0)


def test_channels_last_changes_the_layout_not_the_function():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    x = torch.randn(2, 3, 10, 10)
    before = conv(x)
    use_channels_last(conv)
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), before, rtol=1e-5, atol=1e-6)
    assert conv(x).is_contiguous(memory_format=torch.channels_last)


def test_a_bf16_run_trains_and_evaluates(engine_env):
    summary = run(engine_env.cfg("norm=bn", "train.precision=bf16"), engine_env.tmp / "bf16", "bf16")
    assert summary["status"] == "done"
    rows = evaluated(engine_env.tmp / "bf16", "final")
    fp32 = run(engine_env.cfg("norm=bn"), engine_env.tmp / "fp32", "fp32")
    assert fp32["status"] == "done"
    # bf16 changes the numbers (it is not silently fp32) but not the outcome of 12 steps on the fakes
    rows32 = evaluated(engine_env.tmp / "fp32", "final")
    assert rows["test/loss"] != rows32["test/loss"]
    assert abs(rows["test/loss"] - rows32["test/loss"]) < 0.05 * rows32["test/loss"]


@pytest.mark.parametrize("overrides, message", [
    (("train.precision=fp16",), "train.precision='fp16'"),
    (("train.precision=bf16", "norm=bn_manual"), "norm.kind=bn_manual computes them by hand"),
    (("train.channels_last=true",), "train.channels_last applies to convolutional models"),
])
def test_refused_combinations_name_the_reason(engine_env, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(engine_env.cfg(*overrides), engine_env.tmp / "refused", "refused")
