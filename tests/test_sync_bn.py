"""SyncBN across 2 real processes (gloo on CPU) equals single-process BN over the concatenated batch
([S3]'s "one all-reduce is enough"), and a data-parallel job launched by ``run`` trains like one process
with the whole batch."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from helpers import evaluated
from normrepro.norms.sync_bn import SyncBatchNorm
from normrepro.store import read_metrics
from normrepro.train import run

TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (8, 3, 5, 4) if dims == 2 else (8, 3)
    x = torch.randn(shape, generator=g) * torch.tensor([1.0, 3.0, 0.2]).view(1, 3, *[1] * (len(shape) - 2)) + 2
    return x, torch.randn(shape, generator=g)


def _weights(m: nn.Module) -> None:
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.5, -1.5, 2.0]))
        m.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))


def _worker(rank: int, world: int, port: int, dims: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    x, g = _batch(dims)
    per = len(x) // world
    x_local = x[rank * per:(rank + 1) * per].clone().requires_grad_(True)
    bn = SyncBatchNorm(3, dims)
    _weights(bn)
    y = bn(x_local)
    (y * g[rank * per:(rank + 1) * per]).sum().backward()
    torch.save({"y": y.detach(), "dx": x_local.grad, "dw": bn.weight.grad, "db": bn.bias.grad,
                "rm": bn.running_mean, "rv": bn.running_var}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.parametrize("dims", [0, 2])
def test_two_process_syncbn_equals_bn_over_the_whole_batch(tmp_path, dims):
    mp.spawn(_worker, args=(2, _free_port(), dims, str(tmp_path)), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, g = _batch(dims)
    x.requires_grad_(True)
    ref = nn.BatchNorm1d(3) if dims == 0 else nn.BatchNorm2d(3)
    _weights(ref)
    y = ref(x)
    (y * g).sum().backward()
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), rtol=0, atol=TOL)
    torch.testing.assert_close(torch.cat([p["dx"] for p in parts]), x.grad, rtol=0, atol=TOL)
    # each rank holds its local share of dL/dgamma, dL/dbeta; DDP sums (averages) them
    torch.testing.assert_close(parts[0]["dw"] + parts[1]["dw"], ref.weight.grad, rtol=0, atol=TOL)
    torch.testing.assert_close(parts[0]["db"] + parts[1]["db"], ref.bias.grad, rtol=0, atol=TOL)
    for p in parts:  # global statistics, with the global m/(m-1) correction, on every rank
        torch.testing.assert_close(p["rm"], ref.running_mean, rtol=0, atol=TOL)
        torch.testing.assert_close(p["rv"], ref.running_var, rtol=0, atol=TOL)


def test_single_process_syncbn_is_bn_and_gradcheck():
    x, _ = _batch(2)
    x = x.double().requires_grad_(True)
    bn, ref = SyncBatchNorm(3, 2).double(), nn.BatchNorm2d(3).double()
    _weights(bn)
    _weights(ref)
    torch.testing.assert_close(bn(x), ref(x), rtol=0, atol=1e-10)
    probe = SyncBatchNorm(3, 2).double()  # gradcheck's many forwards move the running averages
    _weights(probe)
    torch.autograd.gradcheck(lambda t: probe(t), (x[:4, :, :2, :2].detach().requires_grad_(True),))
    bn.eval()
    ref.eval()
    torch.testing.assert_close(bn(x), ref(x), rtol=0, atol=1e-10)


def _losses(run_dir):
    frame = read_metrics(run_dir / "metrics.jsonl")
    rows = frame[(frame["split"] == "train") & (frame["metric"] == "loss")]
    return rows["value"].to_numpy()


def test_data_parallel_job_matches_one_process_with_the_whole_batch(engine_env):
    common = ["model=vgg", "model.width_mult=0.125", "train.batch_size=8", "data.augment=true",
              "probes.enabled=false", "data.eval_limit=32"]
    run(engine_env.cfg("norm=bn", *common, data="cifar10"), engine_env.tmp / "single", "single")
    synced = run(engine_env.cfg("norm=syncbn", "dist.nproc=2", *common, data="cifar10"), engine_env.tmp / "sync",
                 "sync")
    run(engine_env.cfg("norm=bn", "dist.nproc=2", *common, data="cifar10"), engine_env.tmp / "local",
                "local")
    assert synced["processes"] == 2 and synced["status"] == "done"
    assert json.loads((engine_env.tmp / "sync" / "summary.json").read_text())["processes"] == 2
    # SyncBN over 2 x 4 examples computes what BN over 8 does: the same training curve (rank 0's shard loss
    # vs the whole batch's differs, so compare the evaluations, which use the same weights and statistics)
    for key in ("val/loss", "test/loss"):
        final = {name: evaluated(engine_env.tmp / name)[key] for name in ("single", "sync", "local")}
        assert final["sync"] == pytest.approx(final["single"], rel=1e-3)
        assert abs(final["local"] - final["single"]) > 1e-3  # BN over 4 examples per process differs
    assert len(_losses(engine_env.tmp / "sync")) == len(_losses(engine_env.tmp / "single"))


def test_syncbn_without_gradients_uses_local_statistics():
    """Outside training steps (no_grad: precise statistics, rank-0 evaluation) SyncBN is local BN."""
    x, _ = _batch(2)
    bn, ref = SyncBatchNorm(3, 2), nn.BatchNorm2d(3)
    _weights(bn)
    _weights(ref)
    with torch.no_grad():
        torch.testing.assert_close(bn(x), ref(x), rtol=0, atol=TOL)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=0, atol=TOL)
