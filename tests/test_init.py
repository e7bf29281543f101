"""The init experiment's pieces against answers computable by hand: the new inits, the numerical rank, the
per-layer signal statistics, and the constant init's symmetry surviving training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import compose_cfg
from normrepro.measure.layer_stats import layer_stats
from normrepro.measure.weight_rank import numerical_rank, weight_rank_rows
from normrepro.models import build_model
from normrepro.models.common import init_weights
from normrepro.models.mlp import MLP


def _mlp(widths, activation="linear"):
    return MLP((4,), 3, widths, activation, "before_act", lambda w, d: nn.Identity())


def test_rank_of_outer_product_is_1_and_of_identity_is_full():
    u, v = torch.randn(6, 1), torch.randn(1, 9)
    assert numerical_rank(u @ v) == 1
    assert numerical_rank(torch.eye(7)) == 7
    assert numerical_rank(torch.diag(torch.tensor([1.0, 1e-3, 1e-6]))) == 2  # 1e-6 < 1e-4 * 1: not counted


def test_constant_init_gives_rank_1_and_sv_ratio_0():
    net = _mlp([5, 5])
    init_weights(net, "constant", 0.3)
    rows = {(r["metric"], r["layer"]): r["value"] for r in weight_rank_rows(net)}
    assert rows[("weight_rank", "layers.0.linear")] == 1 and rows[("weight_rank", "head")] == 1
    assert rows[("weight_sv_ratio", "layers.1.linear")] == pytest.approx(0.0, abs=1e-12)
    assert all(float(m.weight.unique().item()) == pytest.approx(0.3) for m in net.modules() if isinstance(m, nn.Linear))


def test_uniform_naive_bound_and_variance():
    lin = nn.Linear(900, 400)
    init_weights(lin, "uniform_naive", 0.0)
    w = lin.weight
    assert w.abs().max() <= 1 / 30 + 1e-7  # 1 / sqrt(fan_in = 900)
    assert (900 * w.var()).item() == pytest.approx(1 / 3, rel=0.02)  # Glorot: n Var(w) = 1/3


@pytest.mark.parametrize("activation,gain", [("linear", 1.0), ("tanh", 5 / 3), ("relu", math.sqrt(2))])
def test_orthogonal_act_uses_the_activation_gain(activation, gain):
    lin = nn.Linear(16, 16)
    init_weights(lin, "orthogonal_act", 0.0, activation)
    torch.testing.assert_close(lin.weight @ lin.weight.T, gain ** 2 * torch.eye(16), atol=1e-5, rtol=1e-5)


def test_layer_stats_of_a_scaled_identity_linear_net_by_hand():
    # W_l = a I, zero biases, linear units: s_l = a^l x, so std(s_l) = a^l std(x); dC/ds_l = a^(L-l) dC/ds_L
    a, net = 2.0, _mlp([4, 4, 4])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.bias.zero_()
        for layer in net.layers:
            layer.linear.weight.copy_(a * torch.eye(4))
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    rows = {(r["metric"], r["layer"]): r["value"] for r in layer_stats(net, x, y)}
    for layer in ("1", "2", "3"):
        assert rows[("layer_preact_std", layer)] == pytest.approx(a ** int(layer) * x.std().item(), rel=1e-5)
        assert rows[("layer_act_std", layer)] == pytest.approx(rows[("layer_preact_std", layer)])
    assert rows[("layer_grad_std", "1")] == pytest.approx(a ** 2 * rows[("layer_grad_std", "3")], rel=1e-5)
    assert rows[("layer_grad_std", "2")] == pytest.approx(a * rows[("layer_grad_std", "3")], rel=1e-5)


def test_layer_stats_grad_is_per_example_summed_loss():
    # the summed loss: one example's gradient does not depend on how many others share the batch
    net = _mlp([4], "tanh")
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    once = {(r["metric"], r["layer"]): r["value"] for r in layer_stats(net, x, y)}
    twice = {(r["metric"], r["layer"]): r["value"] for r in layer_stats(net, x.repeat(2, 1), y.repeat(2))}
    assert twice[("layer_grad_std", "1")] == pytest.approx(once[("layer_grad_std", "1")], rel=0.1)


def test_constant_init_symmetry_survives_sgd_training():
    cfg = compose_cfg(["norm=none", "model.init=constant", "model.init_std=0.05", "model.activation=tanh",
                       "model.widths=[8]", "model.mlp_depth=3"])
    net = build_model(cfg.model, cfg.norm, (12,), 4)
    assert len(net.layers) == 3  # mlp_depth repeats widths[0]
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        x, y = torch.randn(16, 12, generator=gen), torch.randint(0, 4, (16,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    ranks = {r["layer"]: r["value"] for r in weight_rank_rows(net) if r["metric"] == "weight_rank"}
    assert ranks == {"layers.0.linear": 1, "layers.1.linear": 1, "layers.2.linear": 1, "head": 1}
    init_weights(net, "xavier", 0.0)
    assert numerical_rank(net.layers[0].linear.weight) == 8
