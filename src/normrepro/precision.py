"""The numerical precision of a run (``train.precision``) and the memory layout of convolutions
(``train.channels_last``).

``fp32``: everything in float32 (the default; every committed result so far). ``bf16``: the forward pass of
training and evaluation under ``torch.autocast(dtype=bfloat16)``: matrix products and convolutions run in
bfloat16 (this CPU has AVX-512 BF16: a 1024^3 matmul is ~5x faster than in float32), while the parameters,
the optimizer, the gradients' accumulation and everything below stay float32:

- losses: cross-entropy on float32 logits (the trainer and the evaluator upcast before the loss);
- BN statistics: torch's batch/group/layer norm kernels accumulate the mean and variance of bfloat16
  inputs in float32 and keep float32 running averages; the hand-written BN variants (bn_manual,
  bn_detached, the recurrent cells' per-step BN) compute in their input's dtype, so config_check refuses
  bf16 with them (their experiments are about numerics and stay fp32 anyway);
- OWN's eigendecomposition runs with autocast off, in float32 (``norms/own.py``).

An experiment may use bf16 only after a committed side-by-side run (same seeds, fp32 vs bf16) shows the
same verdicts (docs/benchmarks.md). ``channels_last`` stores images and convolution weights as NHWC, the
layout oneDNN's fast convolution kernels want; it changes float32 results in the last digits too, so it is
an explicit option.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def autocast(precision: str, device: torch.device | str):
    """The context a forward pass runs in: autocast to ``precision``'s dtype, or nothing for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def _nhwc(module, args):
    x, *rest = args
    return (x.contiguous(memory_format=torch.channels_last), *rest)


def use_channels_last(model: torch.nn.Module) -> None:
    """Convolution weights and every input image in NHWC (the input through a forward pre-hook, so training,
    evaluation and the probes all see it; the state dict is unchanged)."""
    model.to(memory_format=torch.channels_last)
    model.register_forward_pre_hook(_nhwc)
