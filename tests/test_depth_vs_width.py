"""depth_vs_width: widths solved from a parameter budget (models/param_budget.py) and the offline MNIST-1D
source (data/sources.py), neither needing the real datasets nor the network."""

from __future__ import annotations

import functools
import random
import socket

import numpy as np
import pytest
import torch

from helpers import compose_cfg
from normrepro.config_check import validate_config
from normrepro.data import load_splits, sources
from normrepro.errors import ConfigError
from normrepro.models import build_model
from normrepro.models.param_budget import mlp_param_count, width_for_budget

# --------------------------------------------------------------------------------------- budget


def test_param_count_by_hand():
    # 4 -> 5 -> 6 -> 3 with 3 extra per hidden unit (bias, gamma, beta):
    # (4*5 + 3*5) + (5*6 + 3*6) + (6*3 + 3) = 35 + 48 + 21 = 104
    assert mlp_param_count(4, 3, [5, 6], per_unit=3) == 104
    assert mlp_param_count(4, 3, [], per_unit=3) == 4 * 3 + 3  # no hidden layer: logistic regression


def test_width_hits_an_exact_budget_by_hand():
    # input 40, 10 classes, u = 3: one layer P(w) = 53 w + 10; two layers P(w) = w^2 + 56 w + 10.
    # 5310 parameters is exactly width 100 with one layer and width 50 with two.
    assert width_for_budget(5310, 1, 40, 10, per_unit=3) == 100
    assert width_for_budget(5310, 2, 40, 10, per_unit=3) == 50
    assert width_for_budget(5311, 2, 40, 10, per_unit=3) == 50  # the nearest integer width


def test_impossible_budget_is_refused():
    # one unit already costs 784 + 3 + 10 weights and the head 10 biases: 807 >> 100
    with pytest.raises(ValueError, match="within 2%"):
        width_for_budget(100, 1, 784, 10, per_unit=3)


@pytest.mark.parametrize("setting", ["dvw_mnist1d_10k", "dvw_mnist1d_40k", "dvw_mnist_25k", "dvw_mnist_100k"])
@pytest.mark.parametrize("layers", [1, 2, 4, 8])
def test_built_networks_match_the_budget_within_2_percent(setting, layers):
    cfg = compose_cfg(["experiment=depth_vs_width", f"setting={setting}", f"model.hidden_layers={layers}"])
    validate_config(cfg)
    d_in = 40 if cfg.data.name == "mnist1d" else 784
    net = build_model(cfg.model, cfg.norm, (1, 1, d_in) if d_in == 40 else (1, 28, 28), 10)
    count = sum(p.numel() for p in net.parameters())
    hidden = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][:-1]
    assert len(hidden) == layers and len({m.out_features for m in hidden}) == 1  # uniform width
    assert count == mlp_param_count(d_in, 10, [hidden[0].out_features] * layers, per_unit=3)  # bias + BN
    assert abs(count - cfg.model.param_budget) <= 0.02 * cfg.model.param_budget


def test_budget_without_bn_counts_bias_only():
    cfg = compose_cfg(["model.widths=[]", "model.param_budget=5310", "model.hidden_layers=2", "norm=none"])
    net = build_model(cfg.model, cfg.norm, (1, 1, 40), 10)
    # u = 1: P(w) = w^2 + 52 w + 10; P(51) = 5263 (-0.9%), P(52) = 5418 (+2.0%): width 51
    assert net.layers[0].linear.out_features == 51
    assert sum(p.numel() for p in net.parameters()) == 5263


def test_budget_needs_empty_widths():
    with pytest.raises(ConfigError, match="param_budget"):
        validate_config(compose_cfg(["model.param_budget=10000"]))  # widths still [100, 100, 100]
    validate_config(compose_cfg(["model.param_budget=10000", "model.widths=[]"]))


# -------------------------------------------------------------------------------------- MNIST-1D


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MNIST-1D generation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_mnist1d_tiny_shapes_and_determinism(no_network):
    np.random.seed(7)
    random.seed(7)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()
    x, y, x_test, y_test = sources.read_mnist1d(num_samples=100)  # 10 per class, 80 / 20
    assert x.shape == (80, 1, 1, 40) and x_test.shape == (20, 1, 1, 40)
    assert x.dtype == np.float32 and y.dtype == np.int64 and y_test.shape == (20,)
    assert set(np.concatenate([y, y_test])) == set(range(10))
    assert np.bincount(np.concatenate([y, y_test])).tolist() == [10] * 10
    again = sources.read_mnist1d(num_samples=100)
    for a, b in zip((x, y, x_test, y_test), again):
        np.testing.assert_array_equal(a, b)  # the package's fixed seed: the same set every time
    # the package seeds the global generators; the reader restores them
    np.testing.assert_array_equal(np.random.get_state()[1], before_np)
    assert random.getstate() == before_py


def test_mnist1d_splits_through_the_cache(tmp_path, monkeypatch, no_network):
    monkeypatch.setattr(sources, "read_mnist1d", functools.partial(sources.read_mnist1d, num_samples=200))
    s = load_splits("mnist1d", str(tmp_path), str(tmp_path / "cache"), val_size=20)
    assert (len(s.train), len(s.val), len(s.test)) == (140, 20, 40)
    assert s.input_shape == (1, 1, 40) and s.num_classes == 10
    assert abs(s.train.x.mean().item()) < 1e-5 and abs(s.train.x.std(correction=0).item() - 1) < 1e-4
    assert (tmp_path / "cache" / "mnist1d.pt").is_file()
    monkeypatch.setattr(sources, "read_mnist1d", lambda: pytest.fail("decoded again instead of read from cache"))
    cached = load_splits("mnist1d", str(tmp_path), str(tmp_path / "cache"), val_size=20)
    torch.testing.assert_close(cached.train.x, s.train.x)
