"""A deep linear network started near the saddle at the origin, trained by full-batch gradient descent and
by mini-batch SGD at the same step ([S1] Sec. 3.2.1: in high dimensions most stationary points are saddles;
SGD's noise perturbs the iterate off them where full-batch GD lingers).

Regression y = M x (x ~ N(0, I_d), M = U diag(s) V^T with set singular values s), student
W_depth ... W_1 x with every entry of every W_i drawn N(0, init_std^2), loss 1/2 mean ||W x - y||^2. The
origin is a saddle of this loss (every gradient there is 0, the Hessian has negative directions for
depth 2 and is 0 for depth >= 3: Saxe et al. 2014; Kawaguchi 2016). From a small init the loss stays on a
plateau near its initial value 1/2 sum s^2 until the product W picks up the top singular mode. The
measured quantity is the escape time: the first step whose full-batch loss is at most ``escape_frac``
times the initial one.
"""

from __future__ import annotations

import torch

METHODS = ("gd", "sgd")


def teacher(dim: int, singular_values, gen: torch.Generator) -> torch.Tensor:
    """M = U diag(s) V^T with random rotations U, V (dim x dim); missing singular values are 0."""
    u, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    s = torch.zeros(dim, dtype=torch.float64)
    s[:len(singular_values)] = torch.tensor(list(singular_values), dtype=torch.float64)
    return u @ torch.diag(s) @ v.T


def loss(weights: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1/2 mean over examples of ||W_depth ... W_1 x - y||^2 (x, y: (n, dim))."""
    h = x
    for w in weights:
        h = h @ w.T
    return 0.5 * ((h - y) ** 2).sum(1).mean()


def escape_steps(weights0, x, y, lr: float, batch: int | None, escape_frac: float, max_steps: int,
                 gen: torch.Generator) -> tuple[int, list[float]]:
    """Steps of (mini-batch) gradient descent until the full-batch loss <= escape_frac x its initial value
    (max_steps when never); ``batch`` None = full batch (GD). Returns (steps, full-batch loss per step)."""
    weights = [w.clone().requires_grad_(True) for w in weights0]
    with torch.no_grad():
        start = loss(weights, x, y).item()
    curve = [start]
    n = len(x)
    for t in range(1, max_steps + 1):
        if batch is None:
            xb, yb = x, y
        else:
            idx = torch.randint(n, (batch,), generator=gen)  # with replacement: i.i.d. mini-batches
            xb, yb = x[idx], y[idx]
        grads = torch.autograd.grad(loss(weights, xb, yb), weights)
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w -= lr * g
            curve.append(loss(weights, x, y).item())
        if curve[-1] <= escape_frac * start:
            return t, curve
    return max_steps, curve


def saddle(dim: int, depth: int, singular_values, examples: int, init_std: float, lr: float, batch: int,
           escape_frac: float, max_steps: int, gen: torch.Generator) -> dict[str, int]:
    """{method: escape steps} for GD and SGD from the same init on the same data."""
    m = teacher(dim, singular_values, gen)
    x = torch.randn(examples, dim, generator=gen, dtype=torch.float64)
    y = x @ m.T
    weights0 = [init_std * torch.randn(dim, dim, generator=gen, dtype=torch.float64) for _ in range(depth)]
    return {"gd": escape_steps(weights0, x, y, lr, None, escape_frac, max_steps, gen)[0],
            "sgd": escape_steps(weights0, x, y, lr, batch, escape_frac, max_steps, gen)[0]}
