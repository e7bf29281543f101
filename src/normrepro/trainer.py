"""The training loop: SGD steps over in-memory batches, periodic evaluation and probes, progress with ETA,
divergence detection, checkpoints. Everything it measures goes through the ``MetricsWriter``."""

from __future__ import annotations

import logging
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from normrepro.data import random_crop_flip
from normrepro.dynamics import TrainingDynamics
from normrepro.norms import BATCH_NORM_TYPES
from normrepro.norms.ghost_bn import slow_average_swapped
from normrepro.norms.precise_stats import population_statistics, precise_statistics, whole_batch_statistics
from normrepro.norms.scale_check import measure_scale_invariance
from normrepro.norms.stepwise_bn import StepwiseBatchNorm, shared_stats_mode
from normrepro.orthogonality import orthogonality_rows
from normrepro.probes import (
    ActivationProbe,
    StuckUnitTracker,
    batch_stats_mode,
    grad_norms,
    hidden_grad_norms,
)

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, cfg, model, optimizer, schedule, splits, batches, aug_gen, writer, run_dir, label,
                 train_model=None, dist=None):
        """``train_model`` is what the training steps call (``model`` wrapped in DDP in a data-parallel job,
        whose rank-0 process alone evaluates, logs and checkpoints: ``dist``, a ``DistContext``)."""
        self.cfg, self.model, self.optimizer, self.schedule = cfg, model, optimizer, schedule
        self.train_model = train_model if train_model is not None else model
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        self.splits, self.batches, self.aug_gen = splits, batches, aug_gen
        self.writer, self.run_dir, self.label = writer, run_dir, label
        self.has_bn = any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())
        self.has_stepwise_bn = any(isinstance(m, StepwiseBatchNorm) for m in model.modules())
        self.probe = ActivationProbe(model, list(cfg.probes.units), per_unit=cfg.probes.unit_activity) \
            if cfg.probes.enabled else None
        self.dynamics = TrainingDynamics(model) if cfg.probes.dynamics else None
        n_probe = min(cfg.probes.examples, len(splits.val.y))
        self.probe_x = splits.val.x[:n_probe]
        self.eval_splits = {"val": splits.val, "test": splits.test}
        if cfg.train.eval_train_examples:  # a fixed slice of the training set, in eval mode: the train-test gap
            n = cfg.train.eval_train_examples
            self.eval_splits["train_eval"] = type(splits.train)(splits.train.x[:n], splits.train.y[:n])
        self.stuck = StuckUnitTracker(model, len(splits.train.y), batches, cfg.train.steps,
                                      cfg.probes.stuck_epochs) if cfg.probes.stuck_epochs else None
        self.train_time = 0.0  # seconds spent in SGD steps only (throughput excludes evaluation)
        self.elapsed_before = 0.0  # wall seconds of earlier attempts of a resumed run
        self.t_start = time.perf_counter()
        self.extra_state: dict = {}  # saved with each checkpoint (e.g. the wandb run id to resume)
        self.window = _empty_window()
        self.last_eval: dict[str, float] = {}
        self.best_eval: dict[str, float] = {}

    # --- measurement -------------------------------------------------------------------------------------
    def _epoch(self, step: int) -> float:
        return step / self.batches.steps_per_epoch

    @torch.no_grad()
    def evaluate(self, step: int) -> None:
        if not self.is_main:
            return
        # parametrized weights (WN, OWN) are computed once for the whole evaluation, not once per batch
        with parametrize.cached():
            self._evaluate(step)

    def _evaluate(self, step: int) -> None:
        was_training = self.model.training
        self.model.eval()  # BN uses its running averages: the network as it would be deployed
        self._evaluate_splits(step, "population" if self.has_bn else None, self.cfg.train.eval_batch_size, "")
        if self.has_stepwise_bn and self.cfg.train.eval_shared_stats:
            # recurrent BN with its per-step population statistics pooled over time ([C]'s ablation)
            with shared_stats_mode(self.model):
                self._evaluate_splits(step, "shared", self.cfg.train.eval_batch_size, "_sharedstats")
        if self.has_bn and self.cfg.train.eval_batch_stats:
            # BN normalizing each test batch with its own statistics, batches as large as training's
            with batch_stats_mode(self.model):
                self._evaluate_splits(step, "batch", self.cfg.train.batch_size, "_batchstats", shuffle=True)
        self.model.train(was_training)
        if self.probe is not None:
            for row in self.probe.measure(self.model, self.probe_x):
                self.writer.write(step, self._epoch(step), "probe", **row)
        if self.cfg.probes.orthogonality:
            m = self.cfg.model
            for row in orthogonality_rows(self.model, m.own_group_size, m.weight_param_last):
                self.writer.write(step, self._epoch(step), "probe", **row)

    @torch.no_grad()
    def evaluate_bn_statistics(self, step: int) -> None:
        """BN's other test-time statistics on the test split, after training ([WJ] Sec. 3): the slow running
        average, precise population statistics over N training images, whole test batches' own statistics."""
        if not self.has_bn or not self.is_main:
            return
        with parametrize.cached():  # as in evaluate: reparameterized weights computed once
            self._evaluate_bn_statistics(step)

    def _evaluate_bn_statistics(self, step: int) -> None:
        tc, test = self.cfg.train, {"test": self.eval_splits["test"]}
        self.model.eval()
        if self.cfg.norm.momentum_slow is not None:
            with slow_average_swapped(self.model):
                self._evaluate_splits(step, "ema_slow", tc.eval_batch_size, "_emaslow", splits=test)
        for n in tc.bn_eval_precise:
            x = self._precise_images(n)
            with population_statistics(precise_statistics(self.model, x, tc.batch_size)):
                self._evaluate_splits(step, f"precise@{n}", tc.eval_batch_size, f"_precise{n}", splits=test)
        for b in tc.bn_eval_test_batches:
            with whole_batch_statistics(self.model):
                self._evaluate_splits(step, f"batch@{b}", b, f"_batch{b}", shuffle=True, splits=test)
        self.model.train()

    def _precise_images(self, n: int) -> torch.Tensor:
        """A fixed random subset of n training images, augmented as in training (the statistics BN saw)."""
        train = self.splits.train.x
        if n > len(train):
            log.warning("[%s] train.bn_eval_precise asks for %d images; the training set has %d: using all",
                        self.label, n, len(train))
        gen = torch.Generator().manual_seed(0)
        x = train.index_select(0, torch.randperm(len(train), generator=gen)[:n].to(train.device))
        return random_crop_flip(x, torch.Generator(device=x.device).manual_seed(1)) if self.cfg.data.augment else x

    def _evaluate_splits(self, step: int, bn_mode, batch_size: int, suffix: str, shuffle: bool = False,
                         splits: dict | None = None) -> None:
        for split_name, split in (splits or self.eval_splits).items():
            x_all, y_all = split.x, split.y
            if shuffle:  # batch statistics need mixed batches (a split may be stored class by class)
                perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0)).to(y_all.device)
                x_all, y_all = x_all[perm], y_all[perm]
            # whole batches only (a split smaller than one batch is evaluated as one batch)
            n_used = len(y_all) - len(y_all) % batch_size if shuffle and len(y_all) >= batch_size else len(y_all)
            loss_sum, correct = 0.0, 0
            for x, y in zip(x_all[:n_used].split(batch_size), y_all[:n_used].split(batch_size)):
                logits = self.model(x)
                loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
            n_targets = y_all[:n_used].numel()  # = examples, or characters for sequence targets (N, T)
            results = [("loss", loss_sum / n_targets), ("acc", correct / n_targets)]
            if y_all.dim() > 1:  # language modelling: bits per character
                results.append(("bpc", loss_sum / n_targets / math.log(2)))
            for metric, value in results:
                self.writer.write(step, self._epoch(step), split_name, metric, value, bn_mode=bn_mode)
                key = f"{split_name}/{metric}{suffix}"
                self.last_eval[key] = value
                better = max if metric == "acc" else min  # loss, bpc: lower is better
                self.best_eval[key] = better(self.best_eval.get(key, value), value)

    # --- training ----------------------------------------------------------------------------------------
    def fit(self, start_step: int) -> dict:
        """Train from ``start_step`` to ``train.steps``; returns the outcome (status, diverged_at)."""
        tc = self.cfg.train
        train = self.splits.train
        self.model.train()
        if start_step == 0:
            self.evaluate(0)
            if self.cfg.probes.hidden_grad_norms:
                n = min(self.cfg.probes.examples, len(self.splits.val.y))
                for t, value in hidden_grad_norms(self.model, self.splits.val.x[:n], self.splits.val.y[:n]):
                    self.writer.write(0, 0.0, "probe", "hidden_grad_norm", value, unit=t)
            if self.cfg.probes.scale_check:
                for r in measure_scale_invariance(scales=(0.01, 0.1, 10.0, 100.0), seed=self.cfg.seed):
                    layer = f"a={r['scale']:g}"
                    self.writer.write(0, 0.0, "probe", "bn_scale_output_diff", r["max_abs_output_diff"], layer=layer)
                    self.writer.write(0, 0.0, "probe", "bn_scale_grad_ratio", r["grad_ratio_times_a"], layer=layer)
        acc = self.window  # training loss/accuracy since the last log row (checkpointed with the run)
        t_progress = time.perf_counter()
        step = start_step
        while step < tc.steps:
            t0 = time.perf_counter()
            idx = self.batches.batch(step)
            x, y = train.x.index_select(0, idx), train.y.index_select(0, idx)  # faster than x[idx] here
            if self.cfg.data.augment:
                x = random_crop_flip(x, self.aug_gen)
            if self.dist is not None:  # this rank's slice of the global batch (augmented as a whole)
                x, y = self.dist.shard(x), self.dist.shard(y)
            if self.stuck is not None:
                self.stuck.before_step(step, idx)
            log_now = (step + 1) % tc.log_every == 0 or step + 1 == tc.steps
            if log_now and self.dynamics is not None:
                self.dynamics.arm()
            logits = self.train_model(x)
            loss = F.cross_entropy(logits, y)
            if self.dist is not None:
                finite, loss_value = self.dist.all_finite(loss)
            else:
                loss_value = loss.item()  # one host sync per step
                finite = math.isfinite(loss_value)
            if not finite:
                return self._diverged(step + 1, loss_value)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if log_now and self.cfg.probes.grad_norms:
                norms = grad_norms(self.model)
            if self.cfg.optim.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            dynamics_rows = self.dynamics.before_step() if log_now and self.dynamics is not None else []
            self.optimizer.step()
            if dynamics_rows:
                dynamics_rows += self.dynamics.after_step()
            self.schedule.step()
            step += 1
            with torch.no_grad():
                acc["loss"] += loss.detach().double()
                acc["correct"] += (logits.argmax(1) == y).sum()
            acc["seen"] += y.numel()
            acc["steps"] += 1
            dt = time.perf_counter() - t0
            self.train_time += dt
            acc["time"] += dt
            if log_now:
                self._log_train(step, acc["loss"].item() / acc["steps"], acc["correct"].item() / acc["seen"],
                                acc["seen"] / max(acc["time"], 1e-9), norms if self.cfg.probes.grad_norms else {})
                for row in dynamics_rows:
                    self.writer.write(step, self._epoch(step), "train", **row)
                self.window = acc = _empty_window()
            if step % tc.eval_every == 0 or step == tc.steps:
                self.evaluate(step)
            if tc.ckpt_every and step % tc.ckpt_every == 0 and step < tc.steps and self.is_main:
                self.save(step)
            if self.is_main and (time.perf_counter() - t_progress >= tc.progress_every_s or step == tc.steps):
                self._progress(step)
                t_progress = time.perf_counter()
        if self.cfg.train.bn_eval_precise or self.cfg.train.bn_eval_test_batches or \
                self.cfg.norm.momentum_slow is not None:
            self.evaluate_bn_statistics(step)
        if self.stuck is not None:
            for metric, value in self.stuck.result().items():
                self.writer.write(step, self._epoch(step), "train", metric, value)
        return {"status": "done", "diverged_at": None}

    def _log_train(self, step, loss, acc, samples_per_s, norms) -> None:
        ep = self._epoch(step)
        w = self.writer.write
        w(step, ep, "train", "loss", loss)
        w(step, ep, "train", "acc", acc)
        w(step, ep, "train", "lr", self.optimizer.param_groups[0]["lr"])
        w(step, ep, "train", "samples_per_s", samples_per_s)
        for layer, value in norms.items():
            w(step, ep, "train", "grad_norm", value, layer=layer or None)

    def _diverged(self, step: int, loss: float) -> dict:
        log.warning("[%s] loss became %s at step %d: stopping, status=diverged", self.label, loss, step)
        self.writer.write(step, self._epoch(step), "train", "loss", loss)
        return {"status": "diverged", "diverged_at": step}

    def _progress(self, step: int) -> None:
        tc = self.cfg.train
        rate = step / max(self.train_time, 1e-9)
        eta = (tc.steps - step) / max(rate, 1e-9) if step < tc.steps else 0.0
        acc = self.last_eval.get("val/acc")
        log.info("[%s] step %d/%d (%.0f%%) | val acc %s | %.0f steps/s | ETA %s", self.label, step, tc.steps,
                 100 * step / tc.steps, f"{acc:.4f}" if acc is not None else "-", rate, _hms(eta))

    # --- checkpoints -------------------------------------------------------------------------------------
    def state(self, step: int) -> dict:
        return {"step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "torch_rng": torch.get_rng_state(),
                "aug_rng": self.aug_gen.get_state(), "train_time": self.train_time,
                "last_eval": self.last_eval, "best_eval": self.best_eval,
                "wall_time_s": self.wall_time(), "window": self.window,
                "stuck": self.stuck.state() if self.stuck is not None else None, **self.extra_state}

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
        self.aug_gen.set_state(ckpt["aug_rng"])
        self.train_time = ckpt["train_time"]
        self.last_eval, self.best_eval = ckpt["last_eval"], ckpt["best_eval"]
        self.elapsed_before = ckpt["wall_time_s"]
        self.window = ckpt["window"]
        if self.stuck is not None:
            self.stuck.load_state(ckpt["stuck"])
        return ckpt["step"]


def _empty_window() -> dict:
    return {"loss": torch.zeros((), dtype=torch.float64), "correct": torch.zeros((), dtype=torch.int64),
            "seen": 0, "steps": 0, "time": 0.0}


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
