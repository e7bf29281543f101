"""Ghost-batch BN, the slow running average, precise population statistics and whole-test-batch statistics
(bn_inference's machinery, [WJ] Sec. 3-4), and their rows in a real run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import evaluated
from normrepro.config_check import validate_config
from normrepro.errors import ConfigError
from normrepro.norms import make_norm
from normrepro.norms.ghost_bn import GhostBatchNorm
from normrepro.norms.modes import population_statistics, whole_batch_statistics
from normrepro.norms.modes import slow_average as slow_average_swapped
from normrepro.norms.precise_stats import precise_statistics
from normrepro.store import SchemaError, read_metrics, validate_row
from normrepro.train import run

ROW = {"step": 0, "epoch": 0.0, "split": "test", "metric": "acc", "value": 0.5}


def test_ghost_batch_of_the_whole_batch_is_torch_bn():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    ours, ref = GhostBatchNorm(3, 2, ghost_batch=8).double(), nn.BatchNorm2d(3).double()
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
            m.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    y1, y2 = ours(x), ref(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
    g = torch.randn_like(y1)
    dx1, dw1 = torch.autograd.grad(y1, (x, ours.weight), g)
    dx2, dw2 = torch.autograd.grad(y2, (x, ref.weight), g)
    torch.testing.assert_close(dx1, dx2, rtol=0, atol=1e-12)
    torch.testing.assert_close(dw1, dw2, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.running_mean, ref.running_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.running_var, ref.running_var, rtol=0, atol=1e-12)


def test_ghost_groups_are_normalized_separately():
    torch.manual_seed(1)
    x = torch.randn(12, 4) * 3 + 1
    ghost = GhostBatchNorm(4, 0, ghost_batch=3, affine=False)
    y = ghost(x)
    for chunk_x, chunk_y in zip(x.split(3), y.split(3)):
        expected = (chunk_x - chunk_x.mean(0)) / (chunk_x.var(0, unbiased=False) + 1e-5).sqrt()
        torch.testing.assert_close(chunk_y, expected, rtol=0, atol=1e-5)
    # one running update per SGD batch, with the groups' mean statistics (variance corrected by g/(g-1))
    groups = x.reshape(4, 3, 4)
    torch.testing.assert_close(ghost.running_mean, 0.1 * groups.mean(1).mean(0))
    torch.testing.assert_close(ghost.running_var, 0.9 + 0.1 * groups.var(1, unbiased=True).mean(0))
    with pytest.raises(ValueError, match="ghost batches of 3"):
        ghost(torch.randn(10, 4))
    with pytest.raises(ValueError, match="one value per channel"):
        GhostBatchNorm(4, 0, ghost_batch=1)(torch.randn(4, 4))


def test_slow_average_and_swap():
    torch.manual_seed(2)
    bn = make_norm("bn", 2, 0, momentum_pytorch=0.5, momentum_slow=0.1)
    assert isinstance(bn, GhostBatchNorm)
    fast, slow = torch.zeros(2), torch.zeros(2)
    for _ in range(5):
        x = torch.randn(16, 2) + 2
        bn(x)
        fast = 0.5 * fast + 0.5 * x.mean(0)
        slow = 0.9 * slow + 0.1 * x.mean(0)
    torch.testing.assert_close(bn.running_mean, fast)
    torch.testing.assert_close(bn.running_mean_slow, slow)
    bn.eval()
    x = torch.randn(4, 2)
    with slow_average_swapped(bn):
        torch.testing.assert_close(bn.running_mean, slow)
        y_slow = bn(x)
    torch.testing.assert_close(bn.running_mean, fast)  # restored
    assert not torch.allclose(y_slow, bn(x))
    with pytest.raises(ValueError, match="slow running average"), slow_average_swapped(nn.Sequential(nn.BatchNorm1d(2))):
        pass


def test_precise_statistics_are_the_population_moments():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Identity(), nn.BatchNorm2d(3), nn.Conv2d(3, 2, 1), GhostBatchNorm(2, 2, ghost_batch=4))
    x = torch.randn(64, 3, 4, 4) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + 3
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in (net[1], net[3])]
    stats = precise_statistics(net, x, batch_size=16)
    # the first BN sees the raw data: its precise statistics are the data's per-channel moments
    mean, var = stats[net[1]]
    torch.testing.assert_close(mean.float(), x.mean((0, 2, 3)), rtol=0, atol=1e-5)
    torch.testing.assert_close(var.float(), x.var((0, 2, 3), unbiased=False), rtol=0, atol=1e-4)
    # computing them neither changes the running averages nor leaves the model in another mode
    for m, (rm, rv) in zip((net[1], net[3]), before):
        torch.testing.assert_close(m.running_mean, rm)
        torch.testing.assert_close(m.running_var, rv)
    assert net.training
    net.eval()
    with population_statistics(stats):
        torch.testing.assert_close(net[1].running_mean, mean.float())
        out = net(x)
    assert out.shape == (64, 2, 4, 4)
    torch.testing.assert_close(net[1].running_mean, before[0][0])  # restored
    with pytest.raises(ValueError, match="at least one batch"):
        precise_statistics(net, x[:8], batch_size=16)


def test_whole_batch_statistics_ignore_ghost_groups_and_freeze_averages():
    torch.manual_seed(4)
    bn = GhostBatchNorm(3, 0, ghost_batch=2, momentum_slow=0.1, affine=False)
    bn.eval()
    x = torch.randn(8, 3) * 2 + 1
    with whole_batch_statistics(bn):
        y = bn(x)
    torch.testing.assert_close(y, (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-5).sqrt(), rtol=0, atol=1e-5)
    assert bn.ghost_batch == 2 and not bn.training
    assert torch.equal(bn.running_mean, torch.zeros(3)) and torch.equal(bn.running_mean_slow, torch.zeros(3))


def test_bn_mode_vocabulary():
    for mode in ("population", "batch", "ema_slow", "precise@1000", "batch@1"):
        validate_row({**ROW, "bn_mode": mode})
    for mode in ("precise@", "precise@x", "batch@0", "ema_slow@3", "running"):
        with pytest.raises(SchemaError, match="bn_mode"):
            validate_row({**ROW, "bn_mode": mode})


def test_config_checks(engine_env):
    with pytest.raises(ConfigError, match="ghost_batch=7 must be >= 0 and divide"):
        validate_config(engine_env.cfg("norm=bn", "norm.ghost_batch=7", "train.batch_size=64"))
    with pytest.raises(ConfigError, match="need norm.kind=bn"):
        validate_config(engine_env.cfg("norm=ln", "norm.momentum_slow=0.01"))
    with pytest.raises(ConfigError, match="needs a feed-forward model"):
        validate_config(engine_env.cfg("model.arch=rnn", "norm=none", "train.bn_eval_precise=[100]"))
    with pytest.raises(ConfigError, match="sizes >= 1"):
        validate_config(engine_env.cfg("train.bn_eval_test_batches=[0]"))


def test_run_reports_every_test_time_statistic(engine_env):
    cfg = engine_env.cfg("model=vgg", "model.width_mult=0.125", "norm=bn", "norm.ghost_batch=4",
                         "norm.momentum_slow=0.01", "train.batch_size=16", "train.eval_batch_stats=true",
                         "train.bn_eval_precise=[64,128]", "train.bn_eval_test_batches=[1,8]",
                         "data.eval_limit=32", "probes.enabled=false", data="cifar10")
    run(cfg, engine_env.tmp / "run", "bn_inference")
    final = evaluated(engine_env.tmp / "run")
    for suffix in ("", "_batchstats", "_emaslow", "_precise64", "_precise128", "_batch1", "_batch8"):
        assert 0.0 <= final[f"test/acc{suffix}"] <= 1.0
    frame = read_metrics(engine_env.tmp / "run" / "metrics.jsonl")
    last = frame[(frame["step"] == 12) & (frame["split"] == "test") & (frame["metric"] == "acc")]
    assert set(last["bn_mode"]) == {"population", "batch", "ema_slow", "precise@64", "precise@128",
                                    "batch@1", "batch@8"}
    # population-style evaluations of the same weights differ only through the statistics they use
    assert len({round(v, 6) for v in (final["test/loss"], final["test/loss_emaslow"],
                                      final["test/loss_precise64"])}) == 3


def test_precise_statistics_refuse_per_time_step_bn():
    from normrepro.norms.stepwise_bn import StepwiseBatchNorm
    with pytest.raises(ValueError, match="per time step"):
        precise_statistics(nn.Sequential(StepwiseBatchNorm(4, 5)), torch.randn(8, 4), batch_size=4)
