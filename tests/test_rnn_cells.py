"""The recurrent cells (normrepro.rnn) and the per-time-step BN (norms/stepwise_bn.py): the plain cell equals
nn.LSTM, the gains start at gamma_init, inference uses each step's own population statistics, steps beyond the
training length reuse the last step's, shared statistics are one average, and batch_stats_mode applies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normrepro.norms import BATCH_NORM_TYPES
from normrepro.norms.modes import batch_statistics as batch_stats_mode
from normrepro.norms.modes import shared_statistics as shared_stats_mode
from normrepro.norms.stepwise_bn import StepwiseBatchNorm
from normrepro.rnn import CELLS, make_cell

T, N, D, H = 6, 16, 3, 5


def _xs(t=T, seed=0):
    return torch.randn(t, N, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("init", ["default", "identity", "orthogonal"])
def test_plain_cell_equals_nn_lstm(init):
    torch.manual_seed(0)
    cell = make_cell("lstm", D, H, T, recurrent_init=init).double()
    ref = nn.LSTM(D, H).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(cell.wx.weight)
        ref.weight_hh_l0.copy_(cell.wh.weight)
        ref.bias_ih_l0.copy_(cell.bias)
        ref.bias_hh_l0.zero_()
    xs = _xs().double().requires_grad_()
    h0, c0 = torch.randn(N, H, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    ours = torch.stack(cell(xs, h0, c0))
    theirs, _ = ref(xs, (h0[None], c0[None]))
    assert torch.allclose(ours, theirs, atol=1e-12)
    g_ours, = torch.autograd.grad(ours.sum(), xs)
    g_theirs, = torch.autograd.grad(theirs.sum(), xs)
    assert torch.allclose(g_ours, g_theirs, atol=1e-12)


def test_init_identity_recurrence_and_forget_bias():
    cell = make_cell("bn_lstm", D, H, T, forget_bias=1.0)
    for block in cell.wh.weight.split(H, 0):
        assert torch.equal(block, torch.eye(H))
    assert torch.equal(cell.bias[H:2 * H], torch.ones(H)) and cell.bias[:H].abs().sum() == 0


@pytest.mark.parametrize("gamma", [0.1, 0.7])
def test_gamma_init(gamma):
    cell = make_cell("bn_lstm", D, H, T, gamma_init=gamma)
    for bn in (cell.bn_x, cell.bn_h, cell.bn_c):
        assert torch.allclose(bn.weight, torch.full_like(bn.weight, gamma))
    assert cell.bn_x.bias is None and cell.bn_h.bias is None  # b is the shift of the gates
    assert torch.equal(cell.bn_c.bias, torch.zeros(H))
    ln = make_cell("ln_lstm", D, H, T, gamma_init=gamma)
    assert torch.allclose(ln.alpha_h, torch.full((4 * H,), gamma))


def test_training_normalizes_each_step_with_its_own_batch_statistics():
    bn = StepwiseBatchNorm(4, T, gamma_init=1.0)
    xs = torch.randn(T, N, 4) * torch.arange(1, T + 1).view(T, 1, 1) + 3.0
    ys = bn.forward_all(xs)
    assert torch.allclose(ys.mean(1), torch.zeros(T, 4), atol=1e-5)
    assert torch.allclose(ys.var(1, correction=0), torch.ones(T, 4), atol=1e-3)
    # the per-step call agrees with the all-steps call, and both update the same per-step rows
    bn2 = StepwiseBatchNorm(4, T, gamma_init=1.0)
    ys2 = torch.stack([bn2(x, t) for t, x in enumerate(xs.unbind(0))])
    bn2.flush()
    assert torch.allclose(ys, ys2, atol=1e-6)
    assert torch.allclose(bn.running_mean, bn2.running_mean) and torch.allclose(bn.running_var, bn2.running_var)
    assert torch.allclose(bn.running_mean, 0.1 * xs.mean(1), atol=1e-6)  # momentum 0.1 from 0
    assert int(bn.steps_trained) == T and int(bn.num_batches_tracked) == 1


def _trained_bn(shared=False):
    """Running statistics that differ by step: step t's inputs have mean t and std t + 1."""
    bn = StepwiseBatchNorm(2, T, momentum_pytorch=1.0, shared=shared, gamma_init=1.0)
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(T, 1000, 2, generator=g) * torch.arange(1, T + 1).view(T, 1, 1) \
        + torch.arange(T).view(T, 1, 1)
    bn.forward_all(xs)
    return bn, xs


def test_eval_uses_per_step_population_statistics():
    bn, xs = _trained_bn()
    bn.eval()
    probe = torch.full((T, 3, 2), 2.0)
    ys = bn.forward_all(probe)
    for t in range(T):
        expected = (2.0 - bn.running_mean[t]) / torch.sqrt(bn.running_var[t] + bn.eps)
        assert torch.allclose(ys[t], expected.expand(3, 2), atol=1e-6)
        assert torch.allclose(bn(probe[t], t), ys[t], atol=1e-6)
    assert not torch.allclose(ys[0], ys[-1])  # different steps, different statistics
    assert torch.allclose(bn.running_mean[:, 0], torch.arange(T).float(), atol=0.3)


def test_steps_beyond_the_training_length_reuse_the_last_step():
    bn, _ = _trained_bn()
    bn.eval()
    extra = 4
    probe = torch.randn(T + extra, 3, 2)
    ys = bn.forward_all(probe)
    last = (probe[T:] - bn.running_mean[T - 1]) / torch.sqrt(bn.running_var[T - 1] + bn.eps)
    assert torch.allclose(ys[T:], last, atol=1e-6)
    assert torch.allclose(bn(probe[T + 2], T + 2), last[2], atol=1e-6)
    with pytest.raises(ValueError, match="max_steps"):
        bn.train()
        bn.forward_all(torch.randn(T + 1, 3, 2))


def test_cell_trained_on_t_steps_evaluates_on_longer_sequences():
    torch.manual_seed(0)
    cell = make_cell("bn_lstm", D, H, T)
    cell(_xs())  # one training sequence of T steps
    cell.eval()
    long = _xs(T + 5, seed=2)
    hs = cell(long)
    assert len(hs) == T + 5 and all(torch.isfinite(h).all() for h in hs)
    assert int(cell.bn_h.steps_trained) == T
    # the prefix does not depend on what follows (causal), and the tail used step T-1's statistics
    assert torch.allclose(torch.stack(cell(long[:T])), torch.stack(hs[:T]))


def test_shared_statistics_pool_every_step():
    bn, xs = _trained_bn(shared=True)
    assert bn.running_mean.shape == (1, 2)
    # momentum 1: the statistics of all (step, example) values of the last sequence together
    flat = xs.reshape(-1, 2)
    assert torch.allclose(bn.running_mean[0], flat.mean(0), atol=1e-4)
    assert torch.allclose(bn.running_var[0], flat.var(0, correction=0) * 1000 / 999, rtol=1e-3)
    bn.eval()
    probe = torch.ones(T, 3, 2)
    ys = bn.forward_all(probe)
    assert torch.allclose(ys[0], ys[-1])


def test_shared_stats_mode_pools_the_per_step_statistics():
    bn, xs = _trained_bn()
    mean, var = bn.pooled_stats()
    flat = xs.reshape(-1, 2)
    assert torch.allclose(mean, flat.mean(0), atol=1e-4)
    assert torch.allclose(var, flat.var(0, correction=0), rtol=2e-3)
    holder = nn.Sequential(bn)
    probe = torch.randn(T, 3, 2)
    with shared_stats_mode(holder):
        ys = bn.forward_all(probe)
        assert torch.allclose(bn(probe[1], 1), ys[1], atol=1e-6)
    assert torch.allclose(ys, (probe - mean) / torch.sqrt(var + bn.eps), atol=1e-6)
    assert holder.training and not bn.pooled_eval


@pytest.mark.parametrize("kind", ["bn_sum", "bn_input", "bn_lstm", "bn_tanh_rnn"])
def test_batch_stats_mode_uses_batch_statistics_and_keeps_the_running_ones(kind):
    torch.manual_seed(0)
    cell = make_cell(kind, D, H, T)
    norms = [m for m in cell.modules() if isinstance(m, BATCH_NORM_TYPES)]
    assert norms and all(isinstance(m, StepwiseBatchNorm) for m in norms)
    cell(_xs())
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    xs = _xs(seed=3)
    with batch_stats_mode(cell):
        batch = torch.stack(cell(xs))
    cell.train()
    train_out = torch.stack(cell(xs))
    assert torch.allclose(batch, train_out, atol=1e-6)  # the same batch statistics as training uses
    cell.load_state_dict(before)
    with batch_stats_mode(cell):
        cell(xs)
    after = cell.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before), "batch_stats_mode changed running statistics"
    cell.eval()
    population = torch.stack(cell(xs))
    assert not torch.allclose(batch, population, atol=1e-3)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_every_cell_trains_a_step(kind):
    torch.manual_seed(0)
    cell = make_cell(kind, D, H, T)
    hs = cell(_xs())
    hs[-1].pow(2).sum().backward()
    grads = [p.grad for p in cell.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert cell.wh.weight.grad.abs().sum() > 0


def test_ln_cell_is_batch_independent():
    torch.manual_seed(0)
    cell = make_cell("ln_lstm", D, H, T)
    xs = _xs()
    full = torch.stack(cell(xs))
    alone = torch.stack(cell(xs[:, :1]))
    assert torch.allclose(full[:, :1], alone, atol=1e-6)
