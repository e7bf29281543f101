"""The hand-written BN (norms/manual_bn.py) against torch's, and the detached-statistics ablation
(norms/detached_bn.py): [S3] ("BN written by hand matches the framework's") and [S0] ([BN] Sec. 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normrepro.norms import NORM_KINDS, make_norm
from normrepro.norms.detached_bn import DetachedBatchNorm
from normrepro.norms.manual_bn import ManualBatchNorm, ManualBatchNormFunction

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SHAPES = {0: (32, 6), 2: (8, 5, 6, 6)}  # (N, C) and (N, C, H, W)


def torch_bn(dims: int, c: int, **kw) -> nn.Module:
    return (nn.BatchNorm1d if dims == 0 else nn.BatchNorm2d)(c, **kw)


def pair(cls, dims: int, dtype, seed: int, affine: bool = True):
    """(ours, torch's) with the same random non-trivial gamma and beta."""
    c = SHAPES[dims][1]
    ours = cls(c, dims, affine=affine).to(dtype)
    ref = torch_bn(dims, c, affine=affine).to(dtype)
    if affine:
        g = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            ref.weight.copy_(0.5 + torch.rand(c, generator=g, dtype=dtype) * 2)
            ref.bias.copy_(torch.randn(c, generator=g, dtype=dtype))
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def batch(dims: int, dtype, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 3.0 * torch.randn(*SHAPES[dims], generator=g, dtype=dtype) + 1.5 + shift


def fwd_bwd(module: nn.Module, x: torch.Tensor, dy: torch.Tensor):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(dy)
    grads = [p.grad.clone() for p in (module.weight, module.bias)] if module.weight is not None else []
    return y.detach(), x.grad, grads


def close(a: torch.Tensor, b: torch.Tensor, tol: float) -> None:
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


# ------------------------------------------------------------------------------------- ManualBatchNorm
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dims", [0, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_manual_matches_torch_forward_and_backward(dims, dtype, seed):
    ours, ref = pair(ManualBatchNorm, dims, dtype, seed)
    x = batch(dims, dtype, seed)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(500 + seed), dtype=dtype)
    y1, dx1, (dg1, db1) = fwd_bwd(ours, x, dy)
    y2, dx2, (dg2, db2) = fwd_bwd(ref, x, dy)
    tol = TOL[dtype]
    close(y1, y2, tol)
    close(dx1, dx2, tol)
    close(dg1, dg2, tol)
    close(db1, db2, tol)
    # the closed-form input gradient is not the constant-statistics one (the test has teeth)
    assert (dx1 - dy * ref.weight.detach().view(1, -1, *[1] * dims)).abs().max() > 1e-2


@pytest.mark.parametrize("dims", [0, 2])
def test_manual_without_affine_matches_torch(dims):
    ours, ref = pair(ManualBatchNorm, dims, torch.float64, 0, affine=False)
    assert ours.weight is None and ours.bias is None
    x = batch(dims, torch.float64, 3)
    dy = torch.randn(x.shape, dtype=torch.float64)
    y1, dx1, _ = fwd_bwd(ours, x, dy)
    y2, dx2, _ = fwd_bwd(ref, x, dy)
    close(y1, y2, 1e-10)
    close(dx1, dx2, 1e-10)


@pytest.mark.parametrize("cls", [ManualBatchNorm, DetachedBatchNorm])
@pytest.mark.parametrize("dims", [0, 2])
def test_running_stats_and_eval_match_torch(cls, dims):
    ours, ref = pair(cls, dims, torch.float64, 0)
    momentum = 0.1
    # one step from the init: running_var = (1 - momentum) * 1 + momentum * unbiased batch variance
    x0 = batch(dims, torch.float64, 10)
    ours(x0)
    red = (0, *range(2, x0.dim()))
    m = x0.numel() // x0.shape[1]
    biased = x0.var(dim=red, unbiased=False)
    unbiased = x0.var(dim=red, unbiased=True)
    close(unbiased, biased * m / (m - 1), 1e-12)
    close(ours.running_var, (1 - momentum) * 1.0 + momentum * unbiased, 1e-12)
    close(ours.running_mean, momentum * x0.mean(dim=red), 1e-12)
    assert not torch.allclose(ours.running_var, (1 - momentum) + momentum * biased)
    # three training steps on different batches: the same buffers as torch's
    ours.reset_running_stats()
    for step in range(3):
        x = batch(dims, torch.float64, 20 + step, shift=step)
        ours(x)
        ref(x)
    assert torch.equal(ours.num_batches_tracked, ref.num_batches_tracked)
    close(ours.running_mean, ref.running_mean, 1e-12)
    close(ours.running_var, ref.running_var, 1e-12)
    # eval mode normalizes with those running statistics, and leaves them alone
    ours.eval()
    ref.eval()
    x = batch(dims, torch.float64, 30)
    close(ours(x), ref(x), 1e-10)
    assert int(ours.num_batches_tracked) == 3


def test_cumulative_average_when_momentum_is_none():
    ours = ManualBatchNorm(4, 0, momentum_pytorch=None).double()
    ref = nn.BatchNorm1d(4, momentum=None).double()
    for step in range(3):
        x = batch(0, torch.float64, step)[:, :4] * (step + 1)
        ours(x)
        ref(x)
    close(ours.running_mean, ref.running_mean, 1e-12)
    close(ours.running_var, ref.running_var, 1e-12)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 3, 3)])
def test_function_gradcheck(shape, affine):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    c = shape[1]
    gamma = (torch.rand(c, generator=g, dtype=torch.float64) + 0.5).requires_grad_() if affine else None
    beta = torch.randn(c, generator=g, dtype=torch.float64).requires_grad_() if affine else None

    def f(x, gamma, beta):
        return ManualBatchNormFunction.apply(x, gamma, beta, 1e-5)[0]

    assert torch.autograd.gradcheck(f, (x, gamma, beta), eps=1e-6, atol=1e-6)


def test_double_backward_raises_instead_of_being_wrong():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    bn = ManualBatchNorm(3, 0).double()
    (gx,) = torch.autograd.grad((bn(x) ** 3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.sum().backward()


@pytest.mark.parametrize("cls", [ManualBatchNorm, DetachedBatchNorm])
@pytest.mark.parametrize("dims", [0, 2])
def test_state_dict_round_trip_with_torch(cls, dims):
    c = SHAPES[dims][1]
    ref = torch_bn(dims, c)
    ref(batch(dims, torch.float32, 0))  # non-trivial running statistics
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.0)
        ref.bias.normal_()
    ours = cls(c, dims)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict())  # strict
    back = torch_bn(dims, c)
    back.load_state_dict(ours.state_dict())
    for key, value in ref.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
        assert ours.state_dict()[key].dtype == value.dtype, key
    ours.eval()
    ref.eval()
    x = batch(dims, torch.float32, 1)
    close(ours(x), ref(x), 1e-5)


@pytest.mark.parametrize("cls", [ManualBatchNorm, DetachedBatchNorm])
def test_bad_input_rejected(cls):
    with pytest.raises(ValueError, match="4D"):
        cls(3, 2)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="channels"):
        cls(3, 0)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="more than 1 value"):
        cls(3, 0)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="dims"):
        cls(3, 1)


# ----------------------------------------------------------------------------------- DetachedBatchNorm
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dims", [0, 2])
def test_detached_forward_matches_torch_gradient_uses_constant_stats(dims, dtype):
    ours, ref = pair(DetachedBatchNorm, dims, dtype, 0)
    x = batch(dims, dtype, 4)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=dtype)
    y1, dx1, (dg1, db1) = fwd_bwd(ours, x, dy)
    y2, dx2, (dg2, db2) = fwd_bwd(ref, x, dy)
    tol = TOL[dtype]
    close(y1, y2, tol)
    close(dg1, dg2, tol)  # gamma and beta see the same x_hat: their gradients agree
    close(db1, db2, tol)
    red = (0, *range(2, x.dim()))
    shape = (1, -1, *[1] * dims)
    var = x.var(dim=red, unbiased=False).view(shape)
    expected = ref.weight.detach().view(shape) / torch.sqrt(var + ref.eps) * dy
    close(dx1, expected, tol)
    assert (dx1 - dx2).abs().max() > 1e-2  # torch's gradient has the mean/variance terms


def test_detached_bias_gradient_is_undone_by_the_normalization():
    """[BN] Sec. 2: with x = u + b, full BN gives dL/db = 0, the detached one does not, yet moving b along
    its gradient leaves the output unchanged, so the update repeats forever and b drifts."""
    torch.manual_seed(0)
    u, c = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 4, dtype=torch.float64)
    for cls, zero in ((ManualBatchNorm, True), (DetachedBatchNorm, False)):
        bn = cls(4, 0).double()
        b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        y = bn(u + b)
        (gb,) = torch.autograd.grad((c * y).sum(), b)
        assert (gb.abs().max() < 1e-12) == zero
        with torch.no_grad():
            close(bn(u + b - 0.5 * gb), y.detach(), 1e-12)


# ------------------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("kind, cls", [("bn_manual", ManualBatchNorm), ("bn_detached", DetachedBatchNorm)])
@pytest.mark.parametrize("dims", [0, 2])
def test_make_norm_builds_both_kinds(kind, cls, dims):
    assert kind in NORM_KINDS
    c = SHAPES[dims][1]
    norm = make_norm(kind, c, dims, eps=1e-3, momentum_pytorch=0.2, affine=True)
    assert type(norm) is cls
    assert (norm.dims, norm.eps, norm.momentum, norm.affine) == (dims, 1e-3, 0.2, True)
    x = batch(dims, torch.float32, 0)
    y = norm(x)
    assert y.shape == x.shape
    close(y, torch_bn(dims, c, eps=1e-3)(x), 1e-5)
    assert make_norm(kind, c, dims, affine=False).weight is None
