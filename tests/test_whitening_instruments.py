"""The whitening instruments against answers known by hand: the covariance error of white and of correlated
samples, the spread of identical and of two opposite outputs, no disturbance when every batch holds the same
examples, whitening's identity covariance in training batches, and the layer timing rows."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.measure.decorrelation import Decorrelation, covariance_error
from normrepro.measure.disturbance import Disturbance, random_batches, spread
from normrepro.measure.norm_outputs import normalized_output
from normrepro.measure.norm_timing import NormTiming
from normrepro.models.mlp import MLP
from normrepro.norms import make_norm


def white(m: int, c: int) -> torch.Tensor:
    """m samples of c features with covariance exactly I (orthonormal centered columns times sqrt(m))."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(m, c, generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    q, _ = torch.linalg.qr(z)
    return q * math.sqrt(m)


def test_covariance_error_of_white_and_of_correlated_samples():
    z = white(200, 4)
    per_group, whole = covariance_error(z, [(0, 2), (2, 4)])
    assert per_group < 1e-10 and whole < 1e-10
    # units 0 and 1 with correlation rho (unit variances): ||C - I||_F = sqrt(2) rho in their group
    rho = 0.6
    mixed = z.clone()
    mixed[:, 1] = rho * z[:, 0] + math.sqrt(1 - rho ** 2) * z[:, 1]
    per_group, whole = covariance_error(mixed, [(0, 2), (2, 4)])
    assert abs(per_group - math.sqrt(2) * rho / 2) < 1e-9  # mean over the two groups, the second is white
    assert abs(whole - math.sqrt(2) * rho) < 1e-9


def test_spread_of_identical_and_of_opposite_outputs():
    assert spread(torch.ones(5, 3)) == 0.0
    a = 2.0
    out = torch.tensor([[a, 0.0, 0.0, 0.0], [-a, 0.0, 0.0, 0.0]])
    assert abs(spread(out) - a / math.sqrt(4)) < 1e-12  # each is a from the mean, RMS over 4 units


def test_random_batches_hold_the_example_first_and_distinct_others():
    batches = random_batches(10, 3, 5, 4, torch.Generator().manual_seed(0))
    assert len(batches) == 4
    for b in batches:
        assert b[0] == 3 and len(set(b.tolist())) == 5


def test_bn_normalized_output_is_batch_norm_without_affine():
    bn = nn.BatchNorm1d(6)
    x = torch.randn(32, 6) * 3 + 1
    torch.testing.assert_close(normalized_output(bn, x, batch=True),
                               F.batch_norm(x, None, None, training=True, eps=bn.eps))
    assert normalized_output(nn.Identity(), x, batch=True) is None


def tiny_mlp(kind: str) -> MLP:
    torch.manual_seed(0)
    return MLP((12,), 3, [8, 8], "relu", "before_act", lambda c, d: make_norm(kind, c, d, group_size=4)).double()


def test_decorrelation_rows_whitening_is_white_in_batches_and_bn_is_not():
    x = torch.randn(64, 12, dtype=torch.float64) @ torch.randn(12, 12, dtype=torch.float64)
    rows = {}
    for kind in ("zca", "bn"):
        m = tiny_mlp(kind)
        rows[kind] = Decorrelation(m, x, 32, 4).rows(m)
    zca_batch = [r["value"] for r in rows["zca"] if r["metric"] == "decor_err" and r["bn_mode"] == "batch@32"]
    bn_batch = [r["value"] for r in rows["bn"] if r["metric"] == "decor_err" and r["bn_mode"] == "batch@32"]
    assert len(zca_batch) == 2 and max(zca_batch) < 1e-3  # eps = 1e-5 only
    assert min(bn_batch) > 0.05
    assert {r["bn_mode"] for r in rows["zca"]} == {"population", "batch@32"}
    none = tiny_mlp("none")
    assert Decorrelation(none, x, 32, 4).rows(none) == []  # nothing normalizes over a batch


def test_no_disturbance_when_every_batch_holds_the_same_examples():
    x = torch.randn(16, 12, dtype=torch.float64)
    for kind in ("bn", "zca", "pca", "iternorm"):
        m = tiny_mlp(kind)
        rows = Disturbance(m, x, [16, 4], batches=5, examples=2).rows(m)
        full = [r["value"] for r in rows if r["bn_mode"] == "batch@16"]
        small = [r["value"] for r in rows if r["bn_mode"] == "batch@4"]
        assert len(full) == 2 and max(full) < 1e-9, (kind, full)  # the same 16 examples in another order
        assert min(small) > 1e-3, (kind, small)  # random companions: the output moves
        before = [b.clone() for b in m.buffers()]
        Disturbance(m, x, [4], batches=2, examples=1).rows(m)
        assert all(torch.equal(a, b) for a, b in zip(before, m.buffers()))  # running statistics untouched


def test_norm_timing_writes_one_positive_row_per_group_size():
    from types import SimpleNamespace

    nc = SimpleNamespace(kind="zca", eps=1e-5, momentum_pytorch=0.1, affine=True, iter_T=5)
    rows = []
    ctx = SimpleNamespace(model=nn.Linear(2, 2),
                          write=lambda step, split, metric, value, layer=None: rows.append((metric, layer, value)))
    NormTiming(nc, 16, 8, [4, 16]).at_end(ctx, 10)
    assert [(m, layer) for m, layer, _ in rows] == [("norm_step_ms", "g=4"), ("norm_step_ms", "g=16")]
    assert all(v > 0 for *_, v in rows)
