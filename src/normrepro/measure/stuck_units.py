"""Which (training example, ReLU unit) pairs were zero every time (``probes.stuck_epochs``)."""

from __future__ import annotations

import torch
from torch import nn

from normrepro.measure.base import Context, Instrument
from normrepro.models.common import NormAct


class StuckUnitTracker:
    """[S0]'s mechanism for why BN nets need thorough shuffling: when an example always shares its
    mini-batch with the same partners, the batch statistics it sees never change, so some of its units can
    sit at zero after BN+ReLU every time, and no gradient reaches them. Over the last ``epochs`` epochs of
    training this records, for every (training example, ReLU unit) pair, whether the unit was zero each time
    the example was seen. Counted with forward hooks during the real training steps (no extra passes)."""

    def __init__(self, model: nn.Module, n_examples: int, batches, total_steps: int, epochs: int):
        self.blocks = [m for m in model.modules() if isinstance(m, NormAct) and isinstance(m.act, nn.ReLU)]
        self.start = max(0, total_steps - epochs * batches.steps_per_epoch)
        self.n = n_examples
        self.seen = torch.zeros(n_examples, dtype=torch.int32)
        self.zero_counts: list[torch.Tensor | None] = [None] * len(self.blocks)
        self.idx = None
        for i, block in enumerate(self.blocks):
            block.register_forward_hook(self._hook(i))

    def before_step(self, step: int, idx: torch.Tensor) -> None:
        self.idx = idx.cpu() if step >= self.start else None
        if self.idx is not None:
            self.seen.index_add_(0, self.idx, torch.ones_like(self.idx, dtype=torch.int32))

    def _hook(self, i: int):
        def hook(module, _inputs, output):
            if self.idx is None or not module.training:
                return
            zero = (output.detach() <= 0).flatten(2).all(-1) if output.dim() == 4 else output.detach() <= 0
            if self.zero_counts[i] is None:
                self.zero_counts[i] = torch.zeros(self.n, zero.shape[1], dtype=torch.int32)
            self.zero_counts[i].index_add_(0, self.idx, zero.cpu().int())
        return hook

    def state(self) -> dict:
        return {"seen": self.seen.clone(), "zero_counts": [c.clone() if c is not None else None
                                                          for c in self.zero_counts]}

    def load_state(self, state: dict) -> None:
        self.seen, self.zero_counts = state["seen"], state["zero_counts"]

    def result(self) -> dict[str, float]:
        seen = self.seen > 0
        counts = [c[seen] for c in self.zero_counts if c is not None]
        if not counts:
            return {}
        times = self.seen[seen].unsqueeze(1)
        stuck = torch.cat([(c == times) for c in counts], 1).float().mean().item()
        zero = torch.cat([c / times for c in counts], 1).float().mean().item()
        return {"frac_stuck_zero": stuck, "frac_zero": zero}


class StuckUnits(Instrument):
    """Rows ``frac_stuck_zero`` and ``frac_zero`` of split ``train`` at the end of training."""

    name = "stuck_units"

    def __init__(self, tracker: StuckUnitTracker):
        self.tracker = tracker

    @classmethod
    def build(cls, cfg, model, splits, batches):
        if not cfg.probes.stuck_epochs:
            return None
        return cls(StuckUnitTracker(model, len(splits.train.y), batches, cfg.train.steps, cfg.probes.stuck_epochs))

    def before_forward(self, ctx: Context, step: int, idx: torch.Tensor, log_now: bool) -> None:
        self.tracker.before_step(step, idx)

    def at_end(self, ctx: Context, step: int) -> None:
        for metric, value in self.tracker.result().items():
            ctx.write(step, "train", metric, value)

    def state(self) -> dict:
        return self.tracker.state()

    def load_state(self, state: dict | None) -> None:
        self.tracker.load_state(state)
