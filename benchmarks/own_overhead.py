"""What does Orthogonal Weight Normalization ([OWN]) cost? Forward + backward time with OWN vs plain weights.

Two measurements, both on the cpu-scale setup of ``own_cifar`` (VGG-style CNN at width 0.25, i.e. 16-32-64
channels, CIFAR-sized random inputs, batch 256, ``--threads`` torch threads):

- **network**: one training step's forward + cross-entropy + backward of the whole network, plain vs WN vs
  OWN (every convolution reparameterized, the classifier plain, as in the experiment); target: OWN <= 1.2x
  plain;
- **layer**: each convolution of that network on its own (its real input size), forward + backward of
  sum(output), plain vs OWN; the OWN side includes computing W from V (centering, the g x g Gram matrix,
  ``eigh``, W = S^{-1/2} V_c) and its backward, which is the whole overhead.

Timings are medians over ``--repeats`` rounds of ``--steps`` steps each, after warm-up, with the variants
interleaved round by round so that load changes on a shared machine hit them alike.

    python benchmarks/own_overhead.py [--threads 1] [--batch 256] [--steps 5] [--repeats 7] [--no-write]

Prints a markdown table and writes it, with the date, git SHA, torch version and load average, to
benchmarks/own_results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from normrepro.config import ModelConfig, NormConfig
from normrepro.models import build_model
from normrepro.norms.weight_param import apply_weight_param
from normrepro.provenance import git_sha

HERE = Path(__file__).resolve().parent
TARGET = 1.2  # OWN's step time / the plain step time on the cpu-scale network


def network(weight_param: str, width_mult: float) -> nn.Module:
    m = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"arch": "vgg", "width_mult": width_mult,
                                                            "activation": "relu", "weight_param": weight_param})
    n = OmegaConf.merge(OmegaConf.structured(NormConfig), {"kind": "none"})
    torch.manual_seed(0)
    return build_model(m, n, (3, 32, 32), 10)


def time_steps(step, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def interleaved(variants: dict, steps: int, repeats: int) -> dict[str, float]:
    """Median seconds per step of each variant, rounds interleaved, after one warm-up round."""
    for step in variants.values():
        time_steps(step, 2)
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for key, step in variants.items():
            samples[key].append(time_steps(step, steps))
    return {k: statistics.median(v) for k, v in samples.items()}


def network_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor):
    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
    return step


def layer_step(conv: nn.Conv2d, x: torch.Tensor):
    def step():
        conv.zero_grad(set_to_none=True)
        conv(x).sum().backward()
    return step


def conv_inputs(width_mult: float, batch: int) -> list[tuple[str, nn.Conv2d, nn.Conv2d, torch.Tensor]]:
    """(name, plain conv, OWN conv, input) for each convolution of the network, at its real input size."""
    plain = network("none", width_mult)
    out, size = [], 32
    for name, m in plain.named_modules():
        if isinstance(m, nn.MaxPool2d):
            size //= 2
        if not isinstance(m, nn.Conv2d):
            continue
        own = nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1)
        own.load_state_dict(m.state_dict())
        apply_weight_param(own, "own", last=True)
        x = torch.randn(batch, m.in_channels, size, size)
        out.append((f"{name} ({m.in_channels}->{m.out_channels}, {size}x{size})", m, own, x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width-mult", type=float, default=0.25)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))

    nets = {k: network(k, args.width_mult) for k in ("none", "wn", "own")}
    net_t = interleaved({k: network_step(n, x, y) for k, n in nets.items()}, args.steps, args.repeats)
    lines = [f"Network: VGG-style CNN, width {args.width_mult} (16-32-64 channels at 0.25), batch {args.batch}, "
             f"forward + cross-entropy + backward, median of {args.repeats} rounds x {args.steps} steps.", "",
             "| weights | ms / step | ratio to plain |", "|---|---|---|"]
    for key, label in (("none", "plain"), ("wn", "WN"), ("own", "OWN")):
        lines.append(f"| {label} | {1000 * net_t[key]:.1f} | {net_t[key] / net_t['none']:.3f} |")
    ratio = net_t["own"] / net_t["none"]
    lines += ["", f"OWN / plain = **{ratio:.3f}** (target <= {TARGET}: **{'met' if ratio <= TARGET else 'missed'}**).",
              "", "Per convolution (forward + backward of sum(output); OWN includes computing W from V):", "",
              "| layer | plain ms | OWN ms | ratio |", "|---|---|---|---|"]
    for name, plain, own, xin in conv_inputs(args.width_mult, args.batch):
        t = interleaved({"plain": layer_step(plain, xin), "own": layer_step(own, xin)}, args.steps, args.repeats)
        lines.append(f"| {name} | {1000 * t['plain']:.2f} | {1000 * t['own']:.2f} | {t['own'] / t['plain']:.3f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    meta = (f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, git {git_sha() or '?'}, torch "
            f"{torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
            f"load average {load:.2f} (shared machine: figures move by 20-30%)")
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        (HERE / "own_results.md").write_text(f"# OWN overhead (benchmarks/own_overhead.py)\n\n{meta}\n\n{table}\n")


if __name__ == "__main__":
    main()
