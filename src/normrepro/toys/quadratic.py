"""An ill-conditioned quadratic (a "ravine") and the steps gradient descent and heavy-ball momentum take on
it at their theory-optimal hyperparameters ([S1] Sec. 3.2.3 / 3.3: momentum damps the oscillation across a
ravine).

f(x) = 1/2 x^T A x with A = Q diag(lambda) Q^T, eigenvalues log-spaced from L = 1 down to mu = 1/kappa and
Q a random rotation, minimum at 0. With the optimal constant steps (Polyak 1964; Nesterov 2004, Sec. 2.1.5
and 2.2), the error contracts per step by

    GD, step 2 / (L + mu):                                     rho = (kappa - 1) / (kappa + 1)
    heavy ball, step 4 / (sqrt L + sqrt mu)^2,
                momentum ((sqrt kappa - 1) / (sqrt kappa + 1))^2:  rho = (sqrt kappa - 1) / (sqrt kappa + 1)

so the steps to a relative error ``tol`` grow like kappa for GD and like sqrt(kappa) for heavy ball (the
heavy-ball error at the two extreme eigenvalues also carries a factor linear in t: a double root of its
characteristic polynomial). The iterations use the engine's optimizer registry (torch's SGD with
``momentum``, which is heavy ball: v <- beta v + g, x <- x - lr v), the gradient A x written by hand.
"""

from __future__ import annotations

import math

import torch
from omegaconf import OmegaConf

from normrepro.optim import build_optimizer

METHODS = ("gd", "heavy_ball")


def spectrum(kappa: float, dim: int) -> torch.Tensor:
    """dim eigenvalues log-spaced from 1 (L) down to 1 / kappa (mu), both ends included."""
    return torch.logspace(0.0, -math.log10(kappa), dim, dtype=torch.float64)


def quadratic(kappa: float, dim: int, gen: torch.Generator) -> torch.Tensor:
    """A = Q diag(lambda) Q^T with a random rotation Q (QR of a Gaussian matrix)."""
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return q @ torch.diag(spectrum(kappa, dim)) @ q.T


def optimal_hyperparameters(method: str, kappa: float, lipschitz: float = 1.0) -> tuple[float, float]:
    """(step, momentum) that minimize the worst-case contraction rate on a quadratic with this spectrum."""
    mu = lipschitz / kappa
    if method == "gd":
        return 2.0 / (lipschitz + mu), 0.0
    if method == "heavy_ball":
        return 4.0 / (math.sqrt(lipschitz) + math.sqrt(mu)) ** 2, ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def theory_rate(method: str, kappa: float) -> float:
    """The asymptotic per-step contraction of the error at the optimal hyperparameters."""
    r = kappa if method == "gd" else math.sqrt(kappa)
    return (r - 1) / (r + 1)


def steps_to_tol(a: torch.Tensor, x0: torch.Tensor, method: str, kappa: float, tol: float,
                 max_steps: int) -> int:
    """Steps until ||x_t|| <= tol ||x_0|| (the minimum is 0); max_steps when it is not reached."""
    lr, momentum = optimal_hyperparameters(method, kappa)
    x = torch.nn.Parameter(x0.clone())
    opt = build_optimizer([x], OmegaConf.create({"name": "sgd", "lr": lr, "lr_mult": 1.0, "momentum": momentum,
                                                 "nesterov": False, "weight_decay": 0.0}))
    target = tol * x0.norm().item()
    with torch.no_grad():
        for t in range(1, max_steps + 1):
            x.grad = a @ x  # the gradient of 1/2 x^T A x
            opt.step()
            if x.norm().item() <= target:
                return t
    return max_steps


def loglog_slope(kappas, steps) -> float:
    """Least-squares slope of log(steps) against log(kappa): 1 for steps ~ kappa, 1/2 for ~ sqrt(kappa)."""
    lx = torch.log(torch.tensor(kappas, dtype=torch.float64))
    ly = torch.log(torch.tensor(steps, dtype=torch.float64))
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


def ravine(kappas, dim: int, tol: float, max_steps: int, gen: torch.Generator) -> dict:
    """{method: {"steps": [per kappa], "slope": float}} on one random rotation and start per kappa (the same
    problem for both methods)."""
    out = {m: {"steps": []} for m in METHODS}
    for kappa in kappas:
        a = quadratic(kappa, dim, gen)
        x0 = torch.randn(dim, generator=gen, dtype=torch.float64)
        for m in METHODS:
            out[m]["steps"].append(steps_to_tol(a, x0, m, kappa, tol, max_steps))
    for m in METHODS:
        out[m]["slope"] = loglog_slope(list(kappas), out[m]["steps"])
    return out
