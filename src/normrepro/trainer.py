"""The training loop: SGD steps over in-memory batches, periodic evaluation, progress with ETA, divergence
detection (every ``train.check_every`` steps, with no host synchronization in between) and checkpoints. Everything else a run measures is an instrument (``normrepro.measure``) called
at the loop's hook points; every row goes through the ``MetricsWriter``."""

from __future__ import annotations

import logging
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from normrepro.measure import HOOKS, Context, overrides
from normrepro.precision import autocast
from normrepro.train_window import TrainingWindow

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, tc, model, optimizer, schedule, batches, evaluator, instruments, writer, run_dir, label,
                 grad_clip: float | None = None, train_model=None, dist=None):
        """``tc``: the config's ``train`` section; ``batches``: a ``data.TrainingBatches``; ``evaluator``: an
        ``evaluation.Evaluator``; ``train_model`` is what the training steps call (``model`` wrapped in DDP
        in a data-parallel job, whose rank-0 process alone evaluates, logs and checkpoints: ``dist``, a
        ``DistContext``)."""
        self.tc, self.model, self.optimizer, self.schedule = tc, model, optimizer, schedule
        self.train_model = train_model if train_model is not None else model
        self.dist, self.is_main = dist, dist is None or dist.is_main
        self.batches, self.evaluator, self.instruments = batches, evaluator, list(instruments)
        self.writer, self.run_dir, self.label, self.grad_clip = writer, run_dir, label, grad_clip
        self.ctx = Context(model, self.write, evaluator, self.is_main, label)
        # per hook point, the instruments that do something there (the others cost nothing per step)
        self.hooks = {h: [getattr(i, h) for i in self.instruments if overrides(i, h)] for h in HOOKS}
        self.train_time = 0.0  # seconds spent in SGD steps only (throughput excludes evaluation)
        self.elapsed_before = 0.0  # wall seconds of earlier attempts of a resumed run
        self.t_start = time.perf_counter()
        self.extra_state: dict = {}  # saved with each checkpoint (e.g. the wandb run id to resume)
        self.window = TrainingWindow()  # training loss/accuracy since the last log row

    def write(self, step: int, split: str, metric: str, value: float, **optional) -> None:
        self.writer.write(step, step / self.batches.steps_per_epoch, split, metric, value, **optional)

    def _each(self, hook: str, *args) -> None:
        for call in self.hooks[hook]:
            call(self.ctx, *args)

    # --- training ----------------------------------------------------------------------------------------
    def fit(self, start_step: int) -> dict:
        """Train from ``start_step`` to ``tc.steps``; returns the outcome (status, diverged_at)."""
        tc, step = self.tc, start_step
        self.model.train()
        if step == 0:
            if self._evaluation_diverged(0):
                return self._diverged(0, self.evaluator.non_finite)
            self._each("at_start", 0)
        t_progress = time.perf_counter()
        while step < tc.steps:
            t0 = time.perf_counter()
            log_now = (step + 1) % tc.log_every == 0 or step + 1 == tc.steps
            x, y, idx = self.batches.get(step)
            self._each("before_forward", step, idx, log_now)
            with autocast(tc.precision, x.device):
                logits = self.train_model(x)
            loss = F.cross_entropy(logits.float(), y)  # the loss in float32 whatever the precision
            self.window.add(loss, logits, y)
            # before anything reads this step's gradients or writes rows: one host sync per check, not per step
            if (log_now or self._check_due(step + 1)) and (bad := self.window.first_non_finite(self.dist)):
                self.write(bad[0], "train", "loss", bad[1])
                return self._diverged(bad[0], f"the training loss ({bad[1]})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._each("after_backward", step, log_now)
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self._each("before_update", step, log_now)
            self.optimizer.step()
            self._each("after_update", step, log_now)
            self.schedule.step()
            step += 1
            seconds = time.perf_counter() - t0
            self.window.add_time(seconds)
            self.train_time += seconds
            if log_now:
                self._log_train(step)
                self._each("on_log", step)
            if (step % tc.eval_every == 0 or step == tc.steps) and self._evaluation_diverged(step):
                return self._diverged(step, self.evaluator.non_finite)
            if tc.ckpt_every and step % tc.ckpt_every == 0 and step < tc.steps and self.is_main:
                self.save(step)
            if self.is_main and (time.perf_counter() - t_progress >= tc.progress_every_s or step == tc.steps):
                self._progress(step)
                t_progress = time.perf_counter()
        self._each("at_end", step)
        return {"status": "done", "diverged_at": None}

    def _check_due(self, step: int) -> bool:
        """Whether the losses are checked after ``step`` steps: every ``check_every`` steps, and before an
        evaluation, a checkpoint or the end reads the model."""
        tc = self.tc
        return (step % tc.check_every == 0 or step % tc.eval_every == 0 or step == tc.steps
                or bool(tc.ckpt_every and step % tc.ckpt_every == 0))

    @torch.no_grad()
    def evaluate(self, step: int) -> bool:
        """Evaluate on every split, then the instruments' ``on_evaluate``; True when an evaluation loss was
        not finite (the run has diverged)."""
        if not self.is_main:
            return False
        # parametrized weights (WN, OWN) are computed once for the whole evaluation, not once per batch
        with parametrize.cached():
            was_training = self.model.training
            self.model.eval()  # BN uses its running averages: the network as it would be deployed
            self.evaluator.population(step)
            self.model.train(was_training)
            self._each("on_evaluate", step)
        return self.evaluator.non_finite is not None

    def _evaluation_diverged(self, step: int) -> bool:
        """Evaluate; in a data-parallel job every process learns whether rank 0's evaluation was finite."""
        bad = self.evaluate(step)
        if self.dist is not None:
            flag = torch.tensor(math.nan if bad else 0.0, device=next(self.model.parameters()).device)
            bad = not self.dist.all_finite(flag)[0]
        return bad

    def _log_train(self, step: int) -> None:
        loss, acc, samples_per_s = self.window.rows()
        self.write(step, "train", "loss", loss)
        self.write(step, "train", "acc", acc)
        self.write(step, "train", "lr", self.optimizer.param_groups[0]["lr"])
        self.write(step, "train", "samples_per_s", samples_per_s)
        self.window = TrainingWindow(start=step)

    def _diverged(self, step: int, what: str) -> dict:
        log.warning("[%s] %s became non-finite at step %d: stopping, status=diverged", self.label, what, step)
        return {"status": "diverged", "diverged_at": step}

    def _progress(self, step: int) -> None:
        tc = self.tc
        rate = step / max(self.train_time, 1e-9)
        eta = (tc.steps - step) / max(rate, 1e-9) if step < tc.steps else 0.0
        acc = self.evaluator.last.get("val/acc")
        log.info("[%s] step %d/%d (%.0f%%) | val acc %s | %.0f steps/s | ETA %s", self.label, step, tc.steps,
                 100 * step / tc.steps, f"{acc:.4f}" if acc is not None else "-", rate, _hms(eta))

    # --- checkpoints -------------------------------------------------------------------------------------
    def state(self, step: int) -> dict:
        return {"step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "torch_rng": torch.get_rng_state(),
                "aug_rng": self.batches.augment.get_state() if self.batches.augment is not None else None,
                "train_time": self.train_time, "evaluator": self.evaluator.state(),
                "wall_time_s": self.wall_time(), "window": self.window.fold(), "window_start": self.window.start,
                "instruments": {i.name: i.state() for i in self.instruments}, **self.extra_state}

    def wall_time(self) -> float:
        """Seconds this run has taken, over all its attempts."""
        return self.elapsed_before + time.perf_counter() - self.t_start

    def save(self, step: int) -> None:
        self.run_dir.save_checkpoint(self.state(step))

    def restore(self, ckpt: dict) -> int:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        torch.set_rng_state(ckpt["torch_rng"])
        if self.batches.augment is not None:
            self.batches.augment.set_state(ckpt["aug_rng"])
        self.train_time = ckpt["train_time"]
        self.evaluator.load_state(ckpt["evaluator"])
        self.elapsed_before = ckpt["wall_time_s"]
        self.window = TrainingWindow(ckpt.get("window_start", ckpt["step"] - ckpt["window"]["steps"]), ckpt["window"])
        for inst in self.instruments:
            inst.load_state(ckpt["instruments"].get(inst.name))
        return ckpt["step"]


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
