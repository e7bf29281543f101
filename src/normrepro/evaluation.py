"""Evaluation of a model on fixed splits: loss, accuracy (and bits per character for language models), one
metrics row per (split, metric) under the BN statistics mode the caller has switched on (``norms/modes.py``).

The evaluator keeps the last and the best value of every ``<split>/<metric><suffix>``
(``store.evaluation_key``) for the progress line, the sweep's objective and the wandb summary; the analysis
derives the same from the rows (``analysis/results.py``), which are the record. It also notices a non-finite evaluation loss, which makes the run diverged at that step: a network whose
evaluation is NaN has not trained, whatever its training loss says.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from normrepro.norms import BATCH_NORM_TYPES
from normrepro.precision import autocast
from normrepro.store import evaluation_key


class Evaluator:
    def __init__(self, model: nn.Module, splits: dict, eval_batch_size: int, write, precision: str = "fp32"):
        """``splits``: name -> a split with ``x`` and ``y``; ``write(step, split, metric, value, **optional)``
        logs one row; ``precision``: the forward passes' (``precision.py``), as in training."""
        self.model, self.splits, self.eval_batch_size, self.write = model, splits, eval_batch_size, write
        self.precision = precision
        self.has_bn = any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())
        self.last: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.non_finite: str | None = None  # the first "<split>/<metric><suffix>" that was NaN or infinite

    def population(self, step: int) -> None:
        """Every split in eval mode: BN with its running averages, the network as it would be deployed."""
        self.evaluate(step, "population" if self.has_bn else None, self.eval_batch_size)

    @torch.no_grad()
    def evaluate(self, step: int, bn_mode: str | None, batch_size: int, shuffle: bool = False,
                 splits: dict | None = None) -> None:
        for split_name, split in (splits or self.splits).items():
            x_all, y_all = split.x, split.y
            if shuffle:  # batch statistics need mixed batches (a split may be stored class by class)
                perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0)).to(y_all.device)
                x_all, y_all = x_all[perm], y_all[perm]
            # whole batches only (a split smaller than one batch is evaluated as one batch)
            n_used = len(y_all) - len(y_all) % batch_size if shuffle and len(y_all) >= batch_size else len(y_all)
            loss_sum, correct = 0.0, 0
            for x, y in zip(x_all[:n_used].split(batch_size), y_all[:n_used].split(batch_size)):
                with autocast(self.precision, x.device):
                    logits = self.model(x)
                # summed on the device: one host sync per split, not two per batch
                loss_sum = loss_sum + F.cross_entropy(logits.float(), y, reduction="sum").double()
                correct = correct + (logits.argmax(1) == y).sum()
            loss_sum, correct = float(loss_sum), int(correct)
            n_targets = y_all[:n_used].numel()  # = examples, or characters for sequence targets (N, T)
            results = [("loss", loss_sum / n_targets), ("acc", correct / n_targets)]
            if y_all.dim() > 1:  # language modelling: bits per character
                results.append(("bpc", loss_sum / n_targets / math.log(2)))
            for metric, value in results:
                self._record(step, split_name, metric, value, bn_mode)

    def _record(self, step: int, split: str, metric: str, value: float, bn_mode) -> None:
        self.write(step, split, metric, value, bn_mode=bn_mode)
        key = evaluation_key(split, metric, bn_mode)
        self.last[key] = value
        better = max if metric == "acc" else min  # loss, bpc: lower is better
        self.best[key] = better(self.best.get(key, value), value)
        if metric == "loss" and not math.isfinite(value) and self.non_finite is None:
            self.non_finite = key

    def state(self) -> dict:
        return {"last": self.last, "best": self.best}

    def load_state(self, state: dict) -> None:
        self.last, self.best = state["last"], state["best"]
