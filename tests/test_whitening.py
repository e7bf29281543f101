"""PCA / ZCA whitening and IterNorm (norms/whitening.py, norms/iter_norm.py) against answers known by hand:
whitened batches have identity covariance, ZCA's matrix is the symmetric Cov^{-1/2}, PCA and ZCA differ by
a rotation, IterNorm tends to ZCA as T grows, gradients check in float64, eval mode uses running statistics."""

from __future__ import annotations

import pytest
import torch

from normrepro.norms import make_norm
from normrepro.norms.iter_norm import IterNorm, newton_whitening_matrix
from normrepro.norms.modes import batch_statistics
from normrepro.norms.whitening import EigenWhitening, eigen_whitening_matrix


def correlated(n: int, c: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """n samples of c correlated features with distinct variances (a random mixing matrix)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=dtype) + 2 * torch.eye(c, dtype=dtype)
    return torch.randn(n, c, generator=g, dtype=dtype) @ mix + 3.0


def group_covariances(y: torch.Tensor, groups) -> list[torch.Tensor]:
    yc = y - y.mean(0)
    return [yc[:, a:b].T @ yc[:, a:b] / y.shape[0] for a, b in groups]


@pytest.mark.parametrize("method", ["pca", "zca"])
@pytest.mark.parametrize("width,group", [(12, 4), (10, 4), (6, 16)])  # even groups, a remainder, one group
def test_whitened_batch_has_identity_covariance(method, width, group):
    x = correlated(256, width)
    layer = EigenWhitening(width, 0, method, group_size=group, eps=1e-10).double()
    y = layer(x)
    for cov in group_covariances(y, layer.whitening_groups()):
        torch.testing.assert_close(cov, torch.eye(cov.shape[0], dtype=torch.float64), atol=1e-6, rtol=0)


def test_zca_matrix_is_symmetric_inverse_square_root_of_covariance():
    x = correlated(500, 5).T  # (g, m)
    xc = (x - x.mean(1, keepdim=True)).unsqueeze(0)
    w = eigen_whitening_matrix(xc, 0.0, "zca")[0]
    cov = xc[0] @ xc[0].T / 500
    torch.testing.assert_close(w, w.T)
    torch.testing.assert_close(w @ w, torch.linalg.inv(cov))  # W^2 = Cov^{-1}, W symmetric positive
    assert torch.linalg.eigvalsh(w).min() > 0
    # by hand: two zero-mean, orthogonal rows have covariance diag(a^2, b^2), so ZCA = diag(1/a, 1/b) (BN's
    # per-unit 1/std) and PCA puts the larger-variance axis first
    a, b = 2.0, 0.5
    xc = torch.tensor([[[a, -a, a, -a], [b, b, -b, -b]]], dtype=torch.float64)
    torch.testing.assert_close(eigen_whitening_matrix(xc, 0.0, "zca")[0], torch.diag(torch.tensor([1 / a, 1 / b],
                               dtype=torch.float64)))
    pca = eigen_whitening_matrix(xc, 0.0, "pca")[0].abs()  # signs of eigenvectors are arbitrary
    torch.testing.assert_close(pca, torch.diag(torch.tensor([1 / a, 1 / b], dtype=torch.float64)))


def test_pca_equals_zca_up_to_a_rotation():
    x = correlated(300, 6).T
    xc = (x - x.mean(1, keepdim=True)).unsqueeze(0)
    w_pca = eigen_whitening_matrix(xc, 1e-5, "pca")[0]
    w_zca = eigen_whitening_matrix(xc, 1e-5, "zca")[0]
    rotation = w_zca @ torch.linalg.inv(w_pca)
    torch.testing.assert_close(rotation @ rotation.T, torch.eye(6, dtype=torch.float64))
    # PCA's rows are the principal axes, largest variance first: its output covariance is diagonal before
    # the scaling, so W_pca's rows are orthogonal with norms 1/sqrt(l) increasing
    norms = w_pca.norm(dim=1)
    assert torch.all(norms[1:] >= norms[:-1])


def test_iternorm_converges_to_zca_as_t_grows():
    # a covariance with eigenvalues 1..16 in a random basis
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0]
    x = (torch.randn(400, 8, generator=g, dtype=torch.float64) * torch.linspace(1, 4, 8, dtype=torch.float64)) @ basis.T
    xc = (x - x.mean(0)).T.unsqueeze(0)
    zca = eigen_whitening_matrix(xc, 1e-5, "zca")
    errors = [((newton_whitening_matrix(xc, 1e-5, t) - zca).norm() / zca.norm()).item() for t in (1, 3, 5, 8, 10)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 0.5 and errors[-1] < 1e-9, errors  # one iteration is far from ZCA, ten are on it
    w = newton_whitening_matrix(xc, 1e-5, 5)[0]
    torch.testing.assert_close(w, w.T)  # a polynomial in Sigma: symmetric at every T


def test_iternorm_at_t5_is_finite_and_partial_on_an_ill_conditioned_covariance():
    x = correlated(400, 8).T  # eigenvalue ratio ~1800
    xc = (x - x.mean(1, keepdim=True)).unsqueeze(0)
    zca = eigen_whitening_matrix(xc, 1e-5, "zca")
    w = newton_whitening_matrix(xc, 1e-5, 5)
    assert torch.isfinite(w).all()
    # the small-eigenvalue directions are not yet whitened: the output's covariance is not I
    cov = w[0] @ (xc[0] @ xc[0].T / 400) @ w[0].T
    assert (cov - torch.eye(8, dtype=torch.float64)).norm() > 0.5
    assert (w - zca).norm() < zca.norm()


def test_iternorm_with_zero_iterations_scales_by_the_trace():
    x = correlated(50, 4).T
    xc = (x - x.mean(1, keepdim=True)).unsqueeze(0)
    w = newton_whitening_matrix(xc, 0.0, 0)[0]
    trace = (xc[0] @ xc[0].T / 50).trace()
    torch.testing.assert_close(w, torch.eye(4, dtype=torch.float64) / trace.sqrt())


@pytest.mark.parametrize("kind", ["pca", "zca", "iternorm"])
def test_gradients_check_in_float64(kind):
    layer = make_norm(kind, 6, 0, group_size=3, iter_T=4).double()
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 1.5, 6, dtype=torch.float64))
        layer.bias.copy_(torch.linspace(-1, 1, 6, dtype=torch.float64))
    x = correlated(10, 6, seed=3).requires_grad_(True)
    probe = torch.randn(10, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    # a weighted sum: a plain sum's gradient is zero through any centering normalization
    assert torch.autograd.gradcheck(lambda v: (layer(v) * probe).sum(), (x,))
    assert torch.autograd.gradcheck(lambda v: layer(v), (x,))


@pytest.mark.parametrize("kind", ["pca", "zca", "iternorm"])
def test_conv_input_is_whitened_per_channel_group_over_examples_and_positions(kind):
    samples = correlated(40 * 3 * 3, 8, seed=5)  # (N*H*W, C)
    x = samples.reshape(40, 3, 3, 8).permute(0, 3, 1, 2)  # (N, C, H, W)
    conv = make_norm(kind, 8, 2, group_size=4).double()
    flat = make_norm(kind, 8, 0, group_size=4).double()
    y = conv(x).permute(0, 2, 3, 1).reshape(-1, 8)
    torch.testing.assert_close(y, flat(samples))  # the same as an MLP layer over all N*H*W samples
    if kind != "iternorm":
        for cov in group_covariances(y, conv.whitening_groups()):
            torch.testing.assert_close(cov, torch.eye(4, dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", ["pca", "zca", "iternorm"])
def test_eval_mode_uses_the_running_statistics(kind):
    layer = make_norm(kind, 6, 0, group_size=3, momentum_pytorch=1.0).double()  # running = the last batch
    x = correlated(64, 6)
    y_train = layer(x)
    layer.eval()
    torch.testing.assert_close(layer(x), y_train)  # the same batch, now through the stored statistics
    other = correlated(64, 6, seed=9)
    xc = other[:, :3] - layer.running_mean[:3]
    torch.testing.assert_close(layer(other)[:, :3], xc @ layer.running_wm[0].T)
    assert not torch.allclose(layer(other), EigenWhitening(6, 0, "zca", group_size=3).double()(other))


def test_running_averages_move_by_momentum_and_freeze_under_batch_statistics():
    layer = IterNorm(4, 0, 5, group_size=4, momentum_pytorch=0.1).double()
    x = correlated(32, 4)
    layer(x)
    mean = x.mean(0)
    torch.testing.assert_close(layer.running_mean, 0.1 * mean)
    xc = (x - mean).T.unsqueeze(0)
    expected = 0.9 * torch.eye(4, dtype=torch.float64) + 0.1 * newton_whitening_matrix(xc, 1e-5, 5)[0]
    torch.testing.assert_close(layer.running_wm[0], expected)
    model = torch.nn.Sequential(layer)
    before = [b.clone() for b in layer.buffers()]
    with batch_statistics(model):
        assert layer.training
        layer(correlated(32, 4, seed=2))
    assert all(torch.equal(a, b) for a, b in zip(before, layer.buffers()))


def test_one_example_batches_are_refused_for_whitening():
    from helpers import compose_cfg
    from normrepro.config_check import validate_config
    from normrepro.errors import ConfigError

    with pytest.raises(ConfigError, match="1 example"):
        validate_config(compose_cfg(["norm=zca", "train.batch_size=1"]))
    with pytest.raises(ConfigError, match="bn_eval_precise"):
        validate_config(compose_cfg(["norm=pca", "train.bn_eval_precise=[100]"]))
    validate_config(compose_cfg(["norm=iternorm"]))
