"""The activations experiment's pieces against answers computable by hand: the ReLU variants, the dead-unit
share and mean activation, and the born-dead test and its Monte Carlo (width-1 ReLU nets, P(alive) = 2^-L)."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from helpers import read_rows
from normrepro.config import ModelConfig, NormConfig
from normrepro.measure.dead_at_init import born_dead, cell_seed, count_born_dead, reinit, wilson_interval
from normrepro.measure.dead_units import dead_fraction, dead_unit_rows
from normrepro.models import build_model
from normrepro.models.common import make_activation
from normrepro.train import run


def _mlp(widths, activation="relu", d_in=1, init="kaiming", bias=True):
    m = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"widths": widths, "activation": activation,
                                                             "init": init, "bias": bias})
    return build_model(m, OmegaConf.structured(NormConfig(kind="none")), (d_in,), 2)


@pytest.mark.parametrize("name, negative_out", [("lrelu", -0.02), ("prelu", -0.5), ("elu", math.expm1(-2.0))])
def test_relu_variants_pass_negative_inputs(name, negative_out):
    act = make_activation(name)
    out = act(torch.tensor([-2.0, 3.0]))
    torch.testing.assert_close(out, torch.tensor([negative_out, 3.0]))


def test_dead_fraction_counts_units_negative_on_every_input():
    pre = torch.tensor([[-1.0, 2.0, 0.0, -3.0],
                        [-2.0, -1.0, 0.0, 1.0]])  # unit 0 and unit 2 (exactly 0) are never positive
    assert dead_fraction(pre) == 0.5


def test_dead_unit_rows_on_a_hand_set_net():
    net = _mlp([2], d_in=1)
    with torch.no_grad():
        net.layers[0].linear.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net.layers[0].linear.bias.copy_(torch.tensor([0.0, -10.0]))  # unit 2: -x - 10 < 0 for x in [1, 3]
    rows = dead_unit_rows(net, torch.tensor([[1.0], [2.0], [3.0]]))
    by = {r["metric"]: r["value"] for r in rows}
    assert by["frac_dead"] == 0.5
    assert by["postact_mean"] == pytest.approx((1 + 2 + 3 + 0 + 0 + 0) / 6)


def test_born_dead_on_hand_set_nets():
    x = torch.tensor([[1.0], [2.0]])
    alive = _mlp([1, 1], d_in=1)
    with torch.no_grad():
        for layer in alive.layers:
            layer.linear.weight.fill_(1.0)
        alive.head.weight.fill_(1.0)
    assert not born_dead(alive, x)
    with torch.no_grad():
        alive.layers[1].linear.weight.fill_(-1.0)  # layer 2 is -h1 < 0 on both inputs
    assert born_dead(alive, x)
    tanh = _mlp([1], activation="tanh", d_in=1)
    with torch.no_grad():
        tanh.layers[0].linear.weight.fill_(1.0)
        tanh.head.weight.fill_(1.0)
    assert not born_dead(tanh, x)
    with torch.no_grad():
        tanh.head.weight.fill_(0.0)  # the output is the head's bias whatever the input: constant
    assert born_dead(tanh, x)


def test_a_tiny_but_input_dependent_output_is_not_dead():
    """A deep leaky net can shrink its signal to 1e-17 and still compute a non-constant function (the first
    run's constant test had an absolute floor and counted such nets as dead)."""
    x = torch.tensor([[1.0], [2.0]])
    net = _mlp([1], activation="lrelu", d_in=1)
    with torch.no_grad():
        net.layers[0].linear.weight.fill_(-1e-15)  # negative regime: output 0.01 * -1e-15 * x
        net.head.weight.fill_(1.0)
    assert not born_dead(net, x)


@pytest.mark.parametrize("inputs, exponent", [([[1.0], [2.0], [3.0]], 0), ([[-1.0], [2.0]], 1)])
def test_width_one_relu_nets_are_alive_with_probability_two_to_the_minus_depth(inputs, exponent):
    """Zero biases (kaiming init), symmetric weights: each layer's unit lives with probability 1/2, except the
    first one when the inputs have both signs. P(dead) = 1 - 2^-(L - exponent)."""
    x, n, depth = torch.tensor(inputs), 2000, 3
    k = count_born_dead(lambda: _mlp([1] * depth, d_in=1), x, n, seed=0)
    p = 1 - 2.0 ** -(depth - exponent)
    assert abs(k / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_the_monte_carlo_leaves_the_global_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    count_born_dead(lambda: _mlp([1, 1]), torch.ones(2, 1), 10, seed=1)
    torch.testing.assert_close(torch.rand(3), expected)
    assert cell_seed(0, 10, 4) != cell_seed(0, 4, 10) != cell_seed(1, 10, 4)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)  # 0 of 10: [0, z^2 / (n + z^2)]
    assert lo == 0.0 and hi == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-6)
    lo, hi = wilson_interval(50, 100)  # symmetric about 1/2
    assert lo == pytest.approx(1 - hi) and lo == pytest.approx(0.4038, abs=1e-3)


def test_the_instruments_write_their_rows_in_a_run(engine_env):
    cfg = engine_env.cfg("norm=none", "model.activation=relu", "model.init=kaiming", "train.steps=4",
                         "train.eval_every=2", "probes.dead_units=true", "probes.dead_init_nets=5",
                         "probes.dead_init_depths=[1,3]", "probes.dead_init_widths=[2]")
    run(cfg, engine_env.tmp / "r", "r")
    rows = read_rows(engine_env.tmp / "r")
    dead = [r for r in rows if r["metric"] == "frac_dead"]
    assert sorted({r["step"] for r in dead}) == [0, 2, 4] and {r["layer"] for r in dead} == {"1", "2", "3"}
    cells = [(r["layer"], r["unit"], r["value"]) for r in rows if r["metric"] == "p_dead_init"]
    assert [(w, d) for w, d, _ in cells] == [("2", 1), ("2", 3)] and all(0 <= v <= 1 for *_, v in cells)


def test_reinit_in_place_draws_what_a_fresh_build_draws():
    torch.manual_seed(3)
    fresh = _mlp([3, 3], d_in=2)
    net = _mlp([3, 3], d_in=2)
    torch.manual_seed(3)
    reinit(net, "kaiming", 0.01)
    for a, b in zip(fresh.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b)
