"""The hook points of the training loop, and what an instrument sees.

An instrument measures something during training without the loop knowing what: ``Trainer.fit`` calls
each hook of each instrument at a fixed point of the step (below), in the order of ``measure.INSTRUMENTS``.
A hook an instrument does not override costs nothing (the trainer only calls overridden ones).

    fit:  at_start (fresh runs, after the step-0 evaluation)
          per step: before_forward -> forward, loss -> backward -> after_backward (gradients before
                    clipping) -> clip -> before_update -> optimizer.step -> after_update -> schedule
          on_log (after the training rows of a log step)
          on_evaluate (after every evaluation on the population statistics, main process only)
          at_end (after the last step of a finished run)

Instruments write rows through ``ctx.write`` (the metrics schema of ``store.py``) and keep whatever state a
resumed run needs in ``state()`` / ``load_state()`` (saved with every checkpoint, under the instrument's
``name``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

HOOKS = ("at_start", "before_forward", "after_backward", "before_update", "after_update", "on_log",
         "on_evaluate", "at_end")


@dataclass
class Context:
    """What every hook receives: the model, the row writer and the evaluator of the run."""

    model: nn.Module
    write: Callable[..., None]  # write(step, split, metric, value, layer=..., unit=..., bn_mode=...)
    evaluator: Any  # normrepro.evaluation.Evaluator
    is_main: bool = True  # the process that evaluates and logs (rank 0 of a data-parallel job)
    label: str = "run"


class Instrument:
    """Base class: every hook does nothing. ``build`` returns the instrument, or None when the config or the
    model gives it nothing to measure."""

    name = "instrument"

    @classmethod
    def build(cls, cfg, model: nn.Module, splits, batches) -> Instrument | None:
        raise NotImplementedError

    def at_start(self, ctx: Context, step: int) -> None: ...
    def before_forward(self, ctx: Context, step: int, idx: torch.Tensor, log_now: bool) -> None: ...
    def after_backward(self, ctx: Context, step: int, log_now: bool) -> None: ...
    def before_update(self, ctx: Context, step: int, log_now: bool) -> None: ...
    def after_update(self, ctx: Context, step: int, log_now: bool) -> None: ...
    def on_log(self, ctx: Context, step: int) -> None: ...
    def on_evaluate(self, ctx: Context, step: int) -> None: ...
    def at_end(self, ctx: Context, step: int) -> None: ...

    def state(self) -> dict | None:
        return None

    def load_state(self, state: dict | None) -> None: ...


def overrides(instrument: Instrument, hook: str) -> bool:
    return getattr(type(instrument), hook) is not getattr(Instrument, hook)


def write_rows(ctx: Context, step: int, split: str, rows: list[dict]) -> None:
    """Rows ``{metric, value[, layer, unit]}`` of one split at one step."""
    for row in rows:
        ctx.write(step, split, **row)


def probe_examples(cfg, splits) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed validation examples the probes look at: the first ``probes.examples`` of the split."""
    n = min(cfg.probes.examples, len(splits.val.y))
    return splits.val.x[:n], splits.val.y[:n]
