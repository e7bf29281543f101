"""At one example per batch BN's output is its beta whatever the input; LN's is not. The engine refuses BN
on an MLP at batch 1 with that reason (ln_batch1's experiment has no BN arm because of it)."""

from __future__ import annotations

import pytest
import torch

from helpers import compose_cfg
from normrepro.config_check import validate_config
from normrepro.errors import ConfigError
from normrepro.norms.manual_bn import bn_normalize


def test_batch_norm_over_one_example_returns_beta_for_any_input():
    x = torch.randn(1, 8) * 5 + 3
    gamma, beta = torch.rand(8) + 0.5, torch.randn(8)
    mean, var = x.mean(0), x.var(0, unbiased=False)  # the batch's statistics: the example itself, 0
    out, _, _ = bn_normalize(x, mean, var, gamma, beta, eps=1e-5)
    torch.testing.assert_close(out, beta.expand(1, 8))
    ln = torch.nn.LayerNorm(8)
    assert ln(x).std() > 0.5  # per example over its units: not constant


@pytest.mark.parametrize("kind", ["bn", "bn_manual", "bn_detached"])
def test_bn_on_an_mlp_at_batch_1_is_refused_with_the_reason(kind):
    cfg = compose_cfg([f"norm={kind}", "train.batch_size=1"])
    with pytest.raises(ConfigError, match=r"1 example .*beta"):
        validate_config(cfg)
    validate_config(compose_cfg(["norm=ln", "train.batch_size=1"]))  # LN is fine
