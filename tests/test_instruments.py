"""The instrument mechanism, followed as docs/design.md's "Adding an instrument" says: one new class, registered
in INSTRUMENTS, sees its hook points in the documented order, writes rows, and keeps its state over a resume."""

from __future__ import annotations

import pytest
import torch

from helpers import read_rows
from normrepro import measure
from normrepro.measure.base import HOOKS, Instrument
from normrepro.train import run
from normrepro.trainer import Trainer


class StepCounter(Instrument):
    """A toy instrument: counts the steps it saw and checks the gradients it is shown."""

    name = "step_counter"
    calls: list = []

    def __init__(self):
        self.steps = 0

    @classmethod
    def build(cls, cfg, model, splits, batches):
        return cls()

    def before_forward(self, ctx, step, idx, log_now):
        StepCounter.calls.append(("before_forward", step))

    def after_backward(self, ctx, step, log_now):
        assert all(p.grad is not None for p in ctx.model.parameters() if p.requires_grad)
        StepCounter.calls.append(("after_backward", step))

    def after_update(self, ctx, step, log_now):
        self.steps += 1

    def on_log(self, ctx, step):
        ctx.write(step, "train", "param_norm", float(self.steps), layer="step_counter")

    def at_end(self, ctx, step):
        StepCounter.calls.append(("at_end", step))

    def state(self):
        return {"steps": self.steps}

    def load_state(self, state):
        self.steps = state["steps"]


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(measure.INSTRUMENTS, StepCounter.name, StepCounter)
    StepCounter.calls = []


def test_a_registered_instrument_runs_at_its_hooks_and_writes_rows(engine_env, registered):
    run(engine_env.cfg("norm=bn", "train.steps=8", "train.log_every=4"), engine_env.tmp / "r", "r")
    assert [c for c in StepCounter.calls if c[0] != "at_end"][:4] == [
        ("before_forward", 0), ("after_backward", 0), ("before_forward", 1), ("after_backward", 1)]
    assert StepCounter.calls[-1] == ("at_end", 8)
    rows = [r for r in read_rows(engine_env.tmp / "r") if r.get("layer") == "step_counter"]
    assert [(r["step"], r["value"]) for r in rows] == [(4, 4.0), (8, 8.0)]


def test_an_instrument_keeps_its_state_over_a_resume(engine_env, registered, monkeypatch):
    cfg = engine_env.cfg("norm=bn", "train.steps=12", "train.log_every=4", "train.ckpt_every=6")
    original = Trainer._log_train

    def die_at_8(self, step):
        original(self, step)
        if step == 8:
            raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "_log_train", die_at_8)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, engine_env.tmp / "r", "r")
    run(cfg, engine_env.tmp / "r", "r")  # resumes at the step-6 checkpoint
    rows = [r for r in read_rows(engine_env.tmp / "r") if r.get("layer") == "step_counter"]
    assert [(r["step"], r["value"]) for r in rows] == [(4, 4.0), (8, 8.0), (12, 12.0)]


def test_hooks_an_instrument_does_not_override_are_not_called():
    class Quiet(Instrument):
        name = "quiet"

        def on_log(self, ctx, step):
            pass

    assert [h for h in HOOKS if measure.overrides(Quiet(), h)] == ["on_log"]


def test_the_gradients_after_backward_are_unclipped_and_before_update_clipped(engine_env, monkeypatch):
    seen = {}

    class Norms(Instrument):
        name = "norms"

        @classmethod
        def build(cls, cfg, model, splits, batches):
            return cls()

        def after_backward(self, ctx, step, log_now):
            seen.setdefault("before_clip", torch.nn.utils.get_total_norm([p.grad for p in ctx.model.parameters()]))

        def before_update(self, ctx, step, log_now):
            seen.setdefault("after_clip", torch.nn.utils.get_total_norm([p.grad for p in ctx.model.parameters()]))

    monkeypatch.setitem(measure.INSTRUMENTS, "norms", Norms)
    run(engine_env.cfg("norm=none", "train.steps=2", "optim.grad_clip=1e-3"), engine_env.tmp / "c", "c")
    assert seen["before_clip"] > 1e-3 and seen["after_clip"] <= 1e-3 * 1.0001
