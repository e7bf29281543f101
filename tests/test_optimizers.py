"""The optimizers experiments' pieces against answers computable by hand: GD and heavy ball on quadratics
(closed-form rates), the deep linear net's saddle at the origin, Adagrad's first step, the plain tanh RNN
against nn.RNN."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from normrepro.optim import build_optimizer
from normrepro.rnn import make_cell
from normrepro.toys.deep_linear import escape_steps, loss, teacher
from normrepro.toys.quadratic import (
    loglog_slope,
    optimal_hyperparameters,
    spectrum,
    steps_to_tol,
    theory_rate,
)


def test_optimal_hyperparameters_by_hand():
    assert optimal_hyperparameters("gd", 100.0) == (pytest.approx(2 / 1.01), 0.0)
    lr, beta = optimal_hyperparameters("heavy_ball", 100.0)
    assert lr == pytest.approx(4 / 1.1 ** 2) and beta == pytest.approx((9 / 11) ** 2)
    assert theory_rate("gd", 100.0) == pytest.approx(99 / 101)
    assert theory_rate("heavy_ball", 100.0) == pytest.approx(9 / 11)


def test_spectrum_spans_one_to_one_over_kappa():
    s = spectrum(1000.0, 7)
    assert s[0].item() == pytest.approx(1.0) and s[-1].item() == pytest.approx(1e-3)


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_gd_steps_match_the_closed_form_on_the_flat_direction(kappa):
    # x0 on the eigenvector of mu: each step multiplies the error by |1 - 2 mu / (L + mu)| = (k-1)/(k+1)
    a = torch.diag(torch.tensor([1.0, 1.0 / kappa], dtype=torch.float64))
    x0 = torch.tensor([0.0, 1.0], dtype=torch.float64)
    tol = 1e-6
    expected = math.ceil(math.log(tol) / math.log(theory_rate("gd", kappa)))
    assert steps_to_tol(a, x0, "gd", kappa, tol, 10 ** 6) in (expected - 1, expected, expected + 1)


@pytest.mark.parametrize("kappa", [100.0, 1000.0])
def test_heavy_ball_contracts_at_the_closed_form_rate(kappa):
    # on the extreme eigenvalues the characteristic roots are double, error ~ (1 + c t) rho^t: the ratio of
    # the steps to two tolerances 1e-4 and 1e-8 gives -ln(1e4) / ln(rho) up to the slow polynomial factor
    a = torch.diag(spectrum(kappa, 8))
    x0 = torch.ones(8, dtype=torch.float64)
    t4, t8 = (steps_to_tol(a, x0, "heavy_ball", kappa, tol, 10 ** 6) for tol in (1e-4, 1e-8))
    rate = math.exp(math.log(1e-4) / (t8 - t4))
    assert rate == pytest.approx(theory_rate("heavy_ball", kappa), rel=0.02)
    assert t8 < steps_to_tol(a, x0, "gd", kappa, 1e-8, 10 ** 6) / 3  # far faster than GD


def test_loglog_slope_of_exact_power_laws():
    k = [10.0, 100.0, 1000.0]
    assert loglog_slope(k, [3 * x for x in k]) == pytest.approx(1.0)
    assert loglog_slope(k, [5 * math.sqrt(x) for x in k]) == pytest.approx(0.5)


def test_deep_linear_origin_is_a_stationary_point_neither_method_leaves():
    gen = torch.Generator().manual_seed(0)
    m = teacher(4, [2.0, 1.0], gen)
    x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    y = x @ m.T
    zeros = [torch.zeros(4, 4, dtype=torch.float64) for _ in range(3)]
    assert loss(zeros, x, y).item() == pytest.approx(0.5 * (y ** 2).sum(1).mean().item())
    for batch in (None, 8):  # GD and SGD: every gradient is 0 at the origin, mini-batch or not
        steps, curve = escape_steps(zeros, x, y, 0.05, batch, 0.5, 50, gen)
        assert steps == 50 and curve[-1] == pytest.approx(curve[0])


def test_deep_linear_escapes_from_a_small_init():
    gen = torch.Generator().manual_seed(1)
    m = teacher(4, [2.0, 1.0], gen)
    x = torch.randn(128, 4, generator=gen, dtype=torch.float64)
    w0 = [0.05 * torch.randn(4, 4, generator=gen, dtype=torch.float64) for _ in range(3)]
    steps, curve = escape_steps(w0, x, x @ m.T, 0.05, None, 0.5, 5000, gen)
    assert steps < 5000 and curve[-1] <= 0.5 * curve[0]


def test_adagrad_first_step_is_lr_times_the_gradient_sign():
    # r = g^2 after one step, so the update is lr * g / (|g| + eps) = lr * sign(g)
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = build_optimizer([p], OmegaConf.create({"name": "adagrad", "lr": 0.1, "lr_mult": 1.0, "eps": 1e-10,
                                                 "weight_decay": 0.0}))
    p.grad = torch.tensor([0.5, -4.0, 0.01])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, -1.9, 2.9]))


def test_tanh_rnn_matches_torch_rnn():
    torch.manual_seed(0)
    cell = make_cell("tanh_rnn", 3, 5, 7, recurrent_init="orthogonal")
    ref = torch.nn.RNN(3, 5, nonlinearity="tanh")
    with torch.no_grad():
        ref.weight_ih_l0.copy_(cell.wx.weight)
        ref.weight_hh_l0.copy_(cell.wh.weight)
        ref.bias_ih_l0.copy_(cell.bias)
        ref.bias_hh_l0.zero_()
    xs = torch.randn(7, 2, 3)
    torch.testing.assert_close(torch.stack(cell(xs)), ref(xs)[0])
