"""Uniform MLP widths that meet a parameter budget (depth_vs_width: deep-narrow vs shallow-wide at equal size).

An MLP with L hidden layers of width w, input dimension d and k classes has

    P(w) = d*w + (L - 1)*w^2 + w*k + k + L*w*u,

parameters, where u counts the per-unit parameters of a hidden layer besides its weights (its bias, and a
norm's gamma and beta: u = 3 for a biased Linear followed by BN). P is increasing in w, so the integer
width closest to a budget B is the floor or the ceiling of the positive root of P(w) = B (linear in w for
L = 1, quadratic beyond). Pure functions: no torch.
"""

from __future__ import annotations

import math

TOLERANCE = 0.02  # the largest relative mismatch |P - B| / B accepted (2%)


def mlp_param_count(d_in: int, num_classes: int, widths: list[int], per_unit: int) -> int:
    """Parameters of an MLP d_in -> widths... -> num_classes: weights, `per_unit` extra parameters per hidden
    unit, and the head's weights and bias."""
    count, d = 0, d_in
    for w in widths:
        count += d * w + per_unit * w
        d = w
    return count + d * num_classes + num_classes


def width_for_budget(budget: int, hidden_layers: int, d_in: int, num_classes: int, per_unit: int,
                     tolerance: float = TOLERANCE) -> int:
    """The uniform hidden width whose MLP has the parameter count closest to `budget`; ValueError if even that
    one is more than `tolerance` (relative) away, or if no width >= 1 fits."""
    if hidden_layers < 1 or budget < 1:
        raise ValueError(f"need hidden_layers >= 1 and budget >= 1, got {hidden_layers} and {budget}")
    a = hidden_layers - 1  # the w^2 terms: one per hidden-to-hidden matrix
    b = d_in + num_classes + hidden_layers * per_unit
    c = num_classes - budget
    root = -c / b if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}

    def miss(w: int) -> int:
        return abs(mlp_param_count(d_in, num_classes, [w] * hidden_layers, per_unit) - budget)

    width = min(sorted(candidates), key=miss)
    count = mlp_param_count(d_in, num_classes, [width] * hidden_layers, per_unit)
    if abs(count - budget) > tolerance * budget:
        raise ValueError(f"no uniform width gives {budget} parameters within {tolerance:.0%} with {hidden_layers} "
                         f"hidden layers (input {d_in}, {num_classes} classes): width {width} has {count}")
    return width
