"""Batch Normalization for recurrent networks: batch statistics per time step, population statistics per step.

Cooijmans et al. 2017 ([C], Recurrent Batch Normalization, Sec. 3 and Eq. 5): at step t of a mini-batch
of N sequences a pre-activation h_t (N x C) is normalized with the statistics of that step only,

    BN(h_t; gamma, beta) = beta + gamma * (h_t - E_hat[h_t]) / sqrt(Var_hat[h_t] + eps),

where E_hat and Var_hat are the mini-batch mean and (biased) variance over the N examples at that step.
For inference [C] keeps *separate population statistics for each time step* (here PyTorch-style running
averages, one row of ``running_mean``/``running_var`` per step); for t beyond the longest sequence seen in
training the statistics of the last trained step are reused ([C] Sec. 3, "generalizing to longer
sequences"). ``shared=True`` is [C]'s ablation: the population statistics are one running average of the
statistics of all steps pooled (batch statistics in training stay per step). Since training is the same
either way, ``modes.shared_statistics`` evaluates a per-step model with its per-step statistics pooled,
the same ablation on the same weights.

The module subclasses :class:`BatchNormBase`, so the repo's BN bookkeeping applies to it unchanged:
``modes.batch_statistics`` (train mode with frozen running averages: each eval batch's own per-step
statistics) and the trainer's ``eval_batch_stats`` rows.

Two call forms share the same buffers: ``norm(x_t, t)`` for one step inside a recurrent loop, and
``norm.forward_all(xs)`` for a whole (T, N, C) sequence at once (used for the input-to-hidden term
W_x x_t, which does not depend on the recurrence and so can be normalized for all steps in one pass).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from normrepro.norms.manual_bn import BatchNormBase


class StepwiseBatchNorm(BatchNormBase):
    """``StepwiseBatchNorm(C, max_steps, gamma_init=1.0, beta=True, shared=False, eps, momentum_pytorch)``.

    ``max_steps`` is the longest training sequence (one statistics row per step); ``beta=False`` drops the
    shift (the LSTM bias b plays its role, [C] Eq. 6); ``gamma_init`` is [C]'s initial gain (0.1 there).
    """

    def __init__(self, num_features: int, max_steps: int, *, gamma_init: float = 1.0, beta: bool = True,
                 shared: bool = False, eps: float = 1e-5, momentum_pytorch: float = 0.1):
        super().__init__(num_features, 0, eps, momentum_pytorch, affine=True)
        if momentum_pytorch is None:
            raise ValueError("StepwiseBatchNorm needs a numeric momentum (no cumulative average per step)")
        self.max_steps, self.shared = max_steps, shared
        slots = 1 if shared else max_steps
        self.running_mean = torch.zeros(slots, num_features)
        self.running_var = torch.ones(slots, num_features)
        # the longest sequence seen in training: later steps at inference reuse the last trained step's rows
        self.register_buffer("steps_trained", torch.tensor(0, dtype=torch.long))
        self.pooled_eval = False  # inference with pooled_stats() (see modes.shared_statistics)
        self._pending: list = []  # shared mode: per-step (mean, var, n) of the current sequence, see flush()
        self._seq_len = 0  # steps of the current training sequence (steps_trained is updated by flush())
        with torch.no_grad():
            self.weight.fill_(gamma_init)
        if not beta:
            del self.bias
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return f"{self.num_features}, max_steps={self.max_steps}, shared={self.shared}, eps={self.eps}"

    def reset_running_stats(self) -> None:
        super().reset_running_stats()
        self.steps_trained.zero_()

    # --- the statistics ----------------------------------------------------------------------------------
    def _updating(self) -> bool:
        """``frozen_stats`` (``modes.frozen_running_averages``) freezes the running averages and the trained
        length."""
        return self.training and not self.frozen_stats

    def _slots(self, steps: torch.Tensor) -> torch.Tensor:
        """Rows of the running buffers that time steps ``steps`` use at inference."""
        if self.shared:
            return torch.zeros_like(steps)
        last = max(int(self.steps_trained), 1) - 1
        return steps.clamp(max=last)

    def pooled_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-step population statistics of the trained steps pooled into one (C,) mean and variance:
        the statistics shared over time that [C] compares against per-step ones, for the same weights."""
        if self.shared:
            return self.running_mean[0], self.running_var[0]
        rows = max(int(self.steps_trained), 1)
        return pool_over_steps(self.running_mean[:rows], self.running_var[:rows])

    def _check_step(self, last: int) -> None:
        if last >= self.max_steps:
            raise ValueError(f"sequence step {last} is beyond max_steps={self.max_steps} in training")

    @torch.no_grad()
    def flush(self) -> None:
        """End of a training sequence (the cells call it after their loop; it also runs before inference):
        record the trained length and count the batch; in shared mode, fold the collected per-step
        statistics, pooled over steps, into the one running average."""
        if self._pending:
            pending, self._pending = self._pending, []
            mean = torch.stack([p[0] for p in pending])
            var = torch.stack([p[1] for p in pending])
            m = pending[0][2]
            mean, unbiased = pool_over_steps(mean, var * (m / (m - 1)))
            self.running_mean[0].mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            self.running_var[0].mul_(1 - self.momentum).add_(unbiased, alpha=self.momentum)
        if self._seq_len:
            if self._seq_len > int(self.steps_trained):
                self.steps_trained.fill_(self._seq_len)
            self.num_batches_tracked.add_(1)
            self._seq_len = 0

    def state_dict(self, *args, **kwargs):
        self.flush()
        return super().state_dict(*args, **kwargs)

    def train(self, mode: bool = True):
        self.flush()
        return super().train(mode)

    # --- forward -----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """One time step: x (N, C) at step t (0-based)."""
        if self.training:
            updating = self._updating()
            if updating:
                self._check_step(t)
                self._seq_len = max(self._seq_len, t + 1)
            if self.shared:
                if updating:
                    var, mean = torch.var_mean(x.detach(), 0, correction=0)
                    self._pending.append((mean, var, x.shape[0]))
                return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            # torch's fused kernel, updating row t of the running averages in place (a view) unless frozen
            mean, var = (self.running_mean[t], self.running_var[t]) if updating else (None, None)
            return F.batch_norm(x, mean, var, self.weight, self.bias, True, self.momentum, self.eps)
        self.flush()
        if self.pooled_eval:
            mean, var = self.pooled_stats()
        else:
            s = 0 if self.shared else min(t, max(int(self.steps_trained), 1) - 1)
            mean, var = self.running_mean[s], self.running_var[s]
        return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)

    def forward_all(self, xs: torch.Tensor) -> torch.Tensor:
        """A whole sequence: xs (T, N, C), each step normalized with its own statistics."""
        steps, n, c = xs.shape
        if self.training and not self.shared:
            # one fused call: the (step, channel) pairs are T*C channels of an (N, T*C) batch
            updating = self._updating()
            if updating:
                self._check_step(steps - 1)
                self._seq_len = max(self._seq_len, steps)
            flat = xs.transpose(0, 1).reshape(n, steps * c)
            mean, var = (self.running_mean[:steps].view(-1), self.running_var[:steps].view(-1)) if updating \
                else (None, None)
            y = F.batch_norm(flat, mean, var,
                             self.weight.repeat(steps), None if self.bias is None else self.bias.repeat(steps),
                             True, self.momentum, self.eps)
            self.flush()  # the whole sequence is done
            return y.view(n, steps, c).transpose(0, 1)
        if self.training:
            y = torch.stack([self(x, t) for t, x in enumerate(xs.unbind(0))])
            self.flush()
            return y
        self.flush()
        if self.pooled_eval:
            mean, var = self.pooled_stats()
        else:
            rows = self._slots(torch.arange(steps, device=xs.device))
            mean, var = self.running_mean[rows][:, None], self.running_var[rows][:, None]
        y = (xs - mean) * torch.rsqrt(var + self.eps) * self.weight
        return y if self.bias is None else y + self.bias


def pool_over_steps(mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, C) per-step means and variances of equally many examples -> the (C,) mean and variance of all
    values together (the law of total variance: mean of the variances + variance of the means)."""
    pooled_mean = mean.mean(0)
    return pooled_mean, var.mean(0) + (mean - pooled_mean).pow(2).mean(0)
