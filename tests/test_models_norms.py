"""Norm registry, the three architectures with every norm, NormAct placement, and the probes."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from normrepro.config import ModelConfig, NormConfig
from normrepro.measure.activations import ActivationProbe
from normrepro.measure.grad_norms import grad_norms
from normrepro.models import build_model
from normrepro.models.common import NormAct
from normrepro.models.mlp import MLP
from normrepro.norms import NORM_KINDS, make_norm
from normrepro.norms.modes import batch_statistics as batch_stats_mode

torch.set_num_threads(1)
# (kind, dims) pairs that exist: instance norm needs spatial dims.
NORM_CASES = [(k, d) for k in NORM_KINDS for d in (0, 2) if not (k == "in" and d == 0)]


def _input(dims: int, c: int = 12, n: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (n, c) if dims == 0 else (n, c, 5, 5)
    return 3.0 + 2.0 * torch.randn(shape, generator=g)


# ------------------------------------------------------------------------------------------- norms
@pytest.mark.parametrize("kind,dims", NORM_CASES)
def test_make_norm_normalizes_over_the_documented_axes(kind, dims):
    norm = make_norm(kind, 12, dims, groups=4)
    norm.train()
    x = _input(dims)
    y = norm(x)
    assert y.shape == x.shape
    if kind == "none":
        assert torch.equal(y, x)
        return
    if kind.startswith("bn") or kind in ("syncbn", "pca", "zca", "iternorm"):
        axes = (0,) if dims == 0 else (0, 2, 3)  # per channel over the batch (and positions)
        z = y
        if kind == "iternorm":  # T = 5 Newton steps whiten partly: centered, variance not yet 1 (test_whitening.py)
            torch.testing.assert_close(z.mean(axes), torch.zeros_like(z.mean(axes)), atol=1e-4, rtol=0)
            return
    elif kind == "ln":
        axes = (1,) if dims == 0 else (1, 2, 3)  # per example over all features
        z = y
    else:  # gn / in: per example and group
        groups = 4 if kind == "gn" else 12
        z = y.reshape(y.shape[0], groups, -1)
        axes = (2,)
    torch.testing.assert_close(z.mean(axes), torch.zeros_like(z.mean(axes)), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.var(axes, unbiased=False), torch.ones_like(z.mean(axes)), atol=2e-3, rtol=0)


def test_instance_norm_needs_spatial_dims():
    with pytest.raises(ValueError, match="conv layers only"):
        make_norm("in", 8, 0)
    with pytest.raises(ValueError, match="dims must be 0"):
        make_norm("bn", 8, 1)
    with pytest.raises(ValueError, match="valid kinds"):
        make_norm("wn2", 8, 0)


@pytest.mark.parametrize("channels,cap,groups", [(64, 32, 32), (48, 32, 24), (100, 32, 25), (7, 32, 7),
                                                 (13, 4, 1), (16, 4, 4)])
def test_group_count_divides_the_channels(channels, cap, groups):
    norm = make_norm("gn", channels, 2, groups=cap)
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == groups and channels % norm.num_groups == 0 and norm.num_groups <= cap


def test_norm_options_are_passed_through():
    bn = make_norm("bn", 6, 0, momentum_pytorch=0.25, eps=1e-3, affine=False)
    assert isinstance(bn, nn.BatchNorm1d) and bn.momentum == 0.25 and bn.eps == 1e-3 and bn.weight is None
    assert isinstance(make_norm("bn", 6, 2), nn.BatchNorm2d)
    assert isinstance(make_norm("ln", 6, 2), nn.GroupNorm) and make_norm("ln", 6, 2).num_groups == 1


# ------------------------------------------------------------------------------------------ models
def model_cfg(arch: str, norm: str, **extra):
    """Small versions of the architectures, on top of the schema's defaults."""
    model = {"arch": arch, "widths": [16, 8], "stages": [8, 16], "convs_per_stage": 1, "width_mult": 1.0,
             "depth": 8, "base_width": 4, **extra}
    return (OmegaConf.merge(OmegaConf.structured(ModelConfig), model),
            OmegaConf.merge(OmegaConf.structured(NormConfig), {"kind": norm}))


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 8, 8)), ("vgg", (3, 16, 16)), ("resnet", (3, 16, 16))])
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_architectures_with_every_norm(arch, shape, norm):
    m, n = model_cfg(arch, norm)
    if arch == "mlp" and norm == "in":
        with pytest.raises(ValueError, match="instance norm"):
            build_model(m, n, shape, 10)
        return
    net = build_model(m, n, shape, 10)
    x = torch.randn(4, *shape)
    assert net(x).shape == (4, 10)
    blocks = [b for b in net.modules() if isinstance(b, NormAct)]
    expected_blocks = {"mlp": 2, "vgg": 2, "resnet": 1 + 3}[arch]  # resnet 8: stem + one block per stage
    assert len(blocks) == expected_blocks
    norm_types = {type(b.norm) for b in blocks}
    assert (norm_types == {nn.Identity}) == (norm == "none")


def test_resnet_depth_and_placement_are_checked():
    m, n = model_cfg("resnet", "bn", depth=10)
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model(m, n, (3, 16, 16), 10)
    m, n = model_cfg("resnet", "bn", placement="after_act")
    with pytest.raises(ValueError, match="before_act"):
        build_model(m, n, (3, 16, 16), 10)


def test_resnet8_counts_and_projection_shortcuts():
    m, n = model_cfg("resnet", "bn", base_width=16)
    net = build_model(m, n, (3, 32, 32), 10)
    convs = [mod for mod in net.modules() if isinstance(mod, nn.Conv2d)]
    assert len([c for c in convs if c.kernel_size == (3, 3)]) == 7  # 6n + 1 3x3 convs, n = 1
    assert len([c for c in convs if c.kernel_size == (1, 1)]) == 2  # stage transitions 16->32, 32->64
    assert net.head.in_features == 64


def _call_order(block: NormAct, x: torch.Tensor) -> list[str]:
    order = []
    hooks = [block.norm.register_forward_hook(lambda *_: order.append("norm")),
             block.act.register_forward_hook(lambda *_: order.append("act"))]
    block(x)
    for h in hooks:
        h.remove()
    return order


def test_placement_changes_the_order_of_norm_and_activation():
    x = _input(0, c=32, n=64)
    before = NormAct(nn.BatchNorm1d(32), nn.Sigmoid(), "before_act")
    after = NormAct(nn.BatchNorm1d(32), nn.Sigmoid(), "after_act")
    assert _call_order(before, x) == ["norm", "act"]
    assert _call_order(after, x) == ["act", "norm"]
    y_before, y_after = before(x), after(x)
    assert 0 < y_before.min() and y_before.max() < 1  # a sigmoid comes last
    torch.testing.assert_close(y_after.mean(0), torch.zeros(32), atol=1e-5, rtol=0)  # BN comes last
    # and through the model config
    m, n = model_cfg("mlp", "bn", placement="after_act")
    net = build_model(m, n, (1, 8, 8), 10)
    assert all(b.placement == "after_act" for b in net.modules() if isinstance(b, NormAct))
    with pytest.raises(ValueError, match="before_act, after_act"):
        NormAct(nn.Identity(), nn.ReLU(), "between")


@pytest.mark.parametrize("scheme", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_schemes(scheme):
    torch.manual_seed(0)
    m, n = model_cfg("mlp", "none", init=scheme, init_std=0.05, widths=[256, 256])
    net = build_model(m, n, (1, 16, 16), 10)
    w = net.layers[1].linear.weight
    expected_std = {"normal": 0.05, "xavier": (2 / 512) ** 0.5, "kaiming": (2 / 256) ** 0.5,
                    "orthogonal": (2 / 256) ** 0.5}[scheme]
    assert w.std().item() == pytest.approx(expected_std, rel=0.05)
    assert torch.count_nonzero(net.layers[1].linear.bias) == 0


# ------------------------------------------------------------------------------------------ probes
def sigmoid_bn_mlp():
    torch.manual_seed(0)
    return MLP((1, 28, 28), 10, [100, 100, 100], "sigmoid", "before_act", lambda c, d: nn.BatchNorm1d(c))


def _by(rows, metric, layer):
    return [r["value"] for r in rows if r["metric"] == metric and r["layer"] == layer]


@pytest.mark.parametrize("training", [True, False])
def test_bn_sigmoid_probe_fractions_and_no_side_effects(training):
    net = sigmoid_bn_mlp()
    net.train(training)
    x = 2.0 + torch.randn(1000, 1, 28, 28, generator=torch.Generator().manual_seed(1))  # off-centre on purpose
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    before = [(b.running_mean.clone(), b.running_var.clone(), b.num_batches_tracked.clone(), b.momentum)
              for b in bns]

    rows = ActivationProbe(net, [0, 1, 2]).measure(net, x)

    assert _by(rows, "frac_mid68", "3")[0] == pytest.approx(0.68, abs=0.05)
    assert _by(rows, "frac_mid95", "3")[0] == pytest.approx(0.95, abs=0.03)
    for layer in ("1", "2", "3"):  # batch statistics even in eval mode: standardized inputs
        assert _by(rows, "preact_mean", layer)[0] == pytest.approx(0.0, abs=1e-4)
        assert _by(rows, "preact_std", layer)[0] == pytest.approx(1.0, abs=1e-2)
    assert _by(rows, "preact_skew", "1")[0] < 0.2  # Wu is a sum of many terms: close to Gaussian
    units = sorted(r["unit"] for r in rows if r["metric"] == "preact_p50")
    assert units == [0, 1, 2] and not [r for r in rows if r["metric"] == "frac_active"]

    assert net.training is training and all(m.training is training for m in net.modules())
    for b, (mean, var, tracked, momentum) in zip(bns, before):
        assert torch.equal(b.running_mean, mean) and torch.equal(b.running_var, var)
        assert torch.equal(b.num_batches_tracked, tracked) and b.momentum == momentum


def test_batch_stats_mode_restores_state_after_an_error():
    net = sigmoid_bn_mlp().eval()
    with pytest.raises(RuntimeError), batch_stats_mode(net):
        assert all(b.training for b in net.modules() if isinstance(b, nn.BatchNorm1d))
        raise RuntimeError
    assert not any(m.training for m in net.modules())
    assert all(b.momentum == 0.1 for b in net.modules() if isinstance(b, nn.BatchNorm1d))


def test_relu_probe_and_grad_norms():
    torch.manual_seed(0)
    net = MLP((1, 8, 8), 10, [32, 32], "relu", "before_act", lambda c, d: nn.BatchNorm1d(c))
    x = torch.randn(256, 1, 8, 8)
    rows = ActivationProbe(net, [0]).measure(net, x)
    active = _by(rows, "frac_active", "1")[0]
    assert active == pytest.approx(0.5, abs=0.03)  # BN'd symmetric inputs: half the ReLUs fire
    assert not [r for r in rows if r["metric"].startswith("frac_mid")]

    nn.functional.cross_entropy(net(x), torch.randint(0, 10, (256,))).backward()
    norms = grad_norms(net)
    assert set(norms) == {"layers.0.linear", "layers.1.linear", "head", ""}
    total = sum(p.grad.pow(2).sum() for p in net.parameters()).sqrt().item()
    assert norms[""] == pytest.approx(total, rel=1e-5)
    assert norms["head"] == pytest.approx(net.head.weight.grad.norm().item())
