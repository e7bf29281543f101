"""Orthogonal Weight Normalization ([OWN]) and Weight Normalization ([WN]) as weight reparameterizations:
orthonormal groups of rows, invariance to V's scale, shapes, the autograd backward (gradcheck in float64),
the fan_in - 1 cap, which layers are reparameterized, cached evaluation and the orthogonality probe."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn.utils import parametrize

from normrepro.config import ModelConfig, NormConfig
from normrepro.measure.orthogonality import orthogonality_rows
from normrepro.models import build_model
from normrepro.norms.own import (
    OrthogonalWeight,
    effective_group_size,
    orthonormal_rows,
    row_groups,
    whiten_rows,
)
from normrepro.norms.weight_param import apply_weight_param, own_parametrization, reparameterized_layers
from normrepro.optim import build_schedule


def _group_grams(w: torch.Tensor, size: int) -> list[torch.Tensor]:
    w = w.reshape(w.shape[0], -1)
    return [w[a:b] @ w[a:b].T for a, b in row_groups(w.shape[0], size)]


@pytest.mark.parametrize("rows,fan_in,group", [(16, 27, 64), (64, 144, 64), (40, 50, 16), (70, 300, 32)])
def test_each_group_of_rows_is_orthonormal(rows, fan_in, group):
    torch.manual_seed(0)
    v = torch.randn(rows, fan_in)
    size = effective_group_size(group, fan_in)
    w = orthonormal_rows(v, size, eps=1e-7)
    for gram in _group_grams(w, size):
        assert (gram - torch.eye(len(gram))).abs().max().item() < 1e-4
    # and rows are centered (W = P V_c is a combination of centered rows)
    assert w.mean(dim=1).abs().max().item() < 1e-5


def test_conv_filter_bank_is_read_as_out_by_fan_in_and_scaled():
    torch.manual_seed(0)
    v = torch.randn(32, 16, 3, 3)
    own = OrthogonalWeight(fan_in=16 * 9, group_size=64, eps=1e-7, scale=math.sqrt(2))
    w = own(v)
    assert w.shape == v.shape
    gram = w.reshape(32, -1) @ w.reshape(32, -1).T
    assert torch.allclose(gram, 2 * torch.eye(32), atol=2e-4)  # rows orthogonal, squared norm s^2 = 2


@pytest.mark.parametrize("factor", [1e-3, 0.1, 10.0, 1e3])
def test_invariant_to_the_scale_of_v(factor):
    torch.manual_seed(1)
    v = torch.randn(12, 40, dtype=torch.float64)
    own = OrthogonalWeight(fan_in=40, group_size=64, eps=1e-12, scale=1.0)
    assert torch.allclose(own(v * factor), own(v), atol=1e-8)


def test_group_size_is_capped_at_fan_in_minus_one():
    assert effective_group_size(64, 27) == 26
    assert effective_group_size(16, 27) == 16
    assert OrthogonalWeight(fan_in=4, group_size=64).group_size == 3
    with pytest.raises(ValueError):
        effective_group_size(64, 1)
    # 64 rows of fan_in 27: groups of 26, 26 and 12 rows, each orthonormal
    assert row_groups(64, 26) == [(0, 26), (26, 52), (52, 64)]
    w = orthonormal_rows(torch.randn(64, 27), 26, eps=1e-7)
    assert all((g - torch.eye(len(g))).abs().max() < 1e-4 for g in _group_grams(w, 26))


def test_a_full_rank_group_cannot_be_orthonormal_after_centering():
    """Why the cap: g = fan_in centered rows span at most fan_in - 1 dimensions, so W W^T is a projection."""
    torch.manual_seed(0)
    w = whiten_rows(torch.randn(6, 6, dtype=torch.float64), eps=1e-10)
    evals = torch.linalg.eigvalsh(w @ w.T)
    assert evals[0].item() < 1e-6 and torch.allclose(evals[1:], torch.ones(5, dtype=torch.float64), atol=1e-6)


def test_gradcheck_float64():
    """The backward through eigh (autograd) matches finite differences on a well-conditioned V."""
    torch.manual_seed(0)
    # rows with clearly different norms: well separated eigenvalues of V_c V_c^T
    v = (torch.randn(4, 7, dtype=torch.float64) * torch.tensor([[1.0], [2.0], [3.5], [5.0]], dtype=torch.float64))
    v.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: orthonormal_rows(x, 4, 1e-5), (v,), eps=1e-6, atol=1e-6)
    # two groups, the second a remainder, with the scale
    v2 = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    own = OrthogonalWeight(fan_in=9, group_size=3, eps=1e-5, scale=1.5)
    assert torch.autograd.gradcheck(own, (v2,), eps=1e-6, atol=1e-6)


def test_the_gradient_reaching_v_is_orthogonal_to_v():
    """Scale invariance W(aV) = W(V) means dL/dV . V = 0 (eps -> 0): the gradient never changes V's scale."""
    torch.manual_seed(0)
    v = torch.randn(8, 20, dtype=torch.float64, requires_grad=True)
    w = orthonormal_rows(v, 8, 1e-12)
    (w * torch.randn_like(w)).sum().backward()
    assert abs((v.grad * v).sum().item()) < 1e-8


def _model_cfgs(weight_param: str, norm: str = "none", **extra):
    m = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"arch": "vgg", "stages": [8, 16],
                                                            "convs_per_stage": 1, "width_mult": 1.0,
                                                            "weight_param": weight_param, **extra})
    return m, OmegaConf.merge(OmegaConf.structured(NormConfig), {"kind": norm})


@pytest.mark.parametrize("weight_param", ["none", "wn", "own"])
def test_models_with_every_weight_param(weight_param):
    torch.manual_seed(0)
    m, n = _model_cfgs(weight_param)
    net = build_model(m, n, (3, 16, 16), 10)
    out = net(torch.randn(4, 3, 16, 16))
    assert out.shape == (4, 10)
    convs = [mod for mod in net.modules() if isinstance(mod, nn.Conv2d)]
    assert all(parametrize.is_parametrized(c, "weight") == (weight_param != "none") for c in convs)
    assert not parametrize.is_parametrized(net.head, "weight")  # the classifier stays plain
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_wn_starts_as_the_plain_function_and_own_is_orthonormal():
    m, n = _model_cfgs("none")
    torch.manual_seed(0)
    plain = build_model(m, n, (3, 16, 16), 10)
    torch.manual_seed(0)
    wn = build_model(_model_cfgs("wn")[0], n, (3, 16, 16), 10)
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(plain(x), wn(x), atol=1e-5)
    torch.manual_seed(0)
    own_net = build_model(_model_cfgs("own", own_scale=1.0)[0], n, (3, 16, 16), 10)
    rows = orthogonality_rows(own_net, 64)
    assert {r["layer"] for r in rows} == {"features.0.conv", "features.2.conv"}
    assert all(r["value"] < 1e-4 for r in rows)
    plain_rows = orthogonality_rows(plain, 64)
    assert all(r["value"] > 1e-2 for r in plain_rows if r["metric"] == "orth_err_rownorm")


def test_last_layer_option_and_unknown_kind():
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    assert [name for name, _ in reparameterized_layers(net)] == ["0"]
    assert [name for name, _ in reparameterized_layers(net, last=True)] == ["0", "2"]
    apply_weight_param(net, "own", last=True, own_group_size=4)
    assert own_parametrization(net[2]).group_size == 4 and own_parametrization(net[0]).group_size == 4
    with pytest.raises(ValueError):
        apply_weight_param(nn.Linear(3, 3), "qr")


def test_cached_evaluation_computes_w_once():
    """Under parametrize.cached() (as in Trainer.evaluate) W is computed once for many forward passes."""
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    apply_weight_param(net, "own")
    calls = []
    own_parametrization(net[0]).register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(5, 10)
    with torch.no_grad():
        for _ in range(3):
            net(x)
        assert len(calls) == 3
        with parametrize.cached():
            outs = [net(x) for _ in range(3)]
    assert len(calls) == 4 and all(torch.equal(o, outs[0]) for o in outs)


def test_exponential_schedule_ends_at_final_ratio():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05)
    cfg = OmegaConf.create({"kind": "exponential", "final_ratio": 0.01})
    sched = build_schedule(opt, cfg, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.05) and lrs[50] == pytest.approx(0.005)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0005)
