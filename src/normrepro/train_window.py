"""The training rows' raw material, kept on the device so the loop never waits for it.

Each step adds its loss and its predictions as tensors (no ``.item()``, no host synchronization); the
loop reads them back only at a check (is every loss since the last check finite? one sync) and at a log
step (the mean loss and the accuracy since the last log row). A divergence found at a check is placed at
the exact step whose loss was first non-finite.
"""

from __future__ import annotations

import torch


class TrainingWindow:
    """Loss and accuracy of the training steps since the last log row (``start``: the step count before the
    first of them)."""

    def __init__(self, start: int = 0, state: dict | None = None):
        self.start = start
        self.losses: list[torch.Tensor] = []  # one 0-d loss per step since the last fold
        self.preds: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.checked = 0  # how many of ``losses`` a check has already found finite
        # folded sums, in the checkpoint format: {loss, correct, seen, steps, time}
        self.sums = state if state is not None else {
            "loss": torch.zeros((), dtype=torch.float64), "correct": torch.zeros((), dtype=torch.int64),
            "seen": 0, "steps": 0, "time": 0.0}

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.preds.append(logits.detach().argmax(1))
        self.labels.append(y)

    def add_time(self, seconds: float) -> None:
        self.sums["time"] += seconds

    def first_non_finite(self, dist=None) -> tuple[int, float] | None:
        """``(step, loss)`` of the first step since the last check whose loss (the mean over the processes of
        a data-parallel job) is not finite, or None; one host synchronization."""
        new = self.losses[self.checked:]
        if not new:
            return None
        values = torch.stack(new).double()
        if dist is not None:
            values = dist.mean_over_ranks(values)
        finite = torch.isfinite(values)
        if bool(finite.all()):
            self.checked = len(self.losses)
            return None
        i = int((~finite).nonzero()[0, 0])
        return self.start + self.sums["steps"] + self.checked + i + 1, float(values[i])

    def fold(self) -> dict:
        """Add the per-step tensors to the sums (three small reductions) and return the sums."""
        if self.losses:
            s = self.sums
            s["loss"] = s["loss"] + torch.stack(self.losses).double().sum().cpu()
            s["correct"] = s["correct"] + (torch.cat(self.preds) == torch.cat(self.labels)).sum().cpu()
            s["seen"] += sum(y.numel() for y in self.labels)
            s["steps"] += len(self.losses)
            self.losses, self.preds, self.labels, self.checked = [], [], [], 0
        return self.sums

    def rows(self) -> tuple[float, float, float]:
        """(mean loss, accuracy, samples per second of step time) since the last log row."""
        s = self.fold()
        return (s["loss"].item() / s["steps"], s["correct"].item() / s["seen"], s["seen"] / max(s["time"], 1e-9))
