"""ms per training step of the VGG-style CIFAR CNN in float32 and in bfloat16 autocast, with and without
channels_last (``normrepro.precision``), and the matmul throughput behind it.

One training step = forward (under ``precision.autocast``) + float32 cross-entropy + backward + SGD step
on a random CIFAR-shaped batch, the model built by the engine's own ``build_model`` with BN. The median of
``--reps`` timed steps after ``--warmup`` untimed ones, all configurations interleaved round by round (so a
change of the shared machine's load hits them alike), 1 torch thread by default. The issue's target: the
bf16 step at least 2.5x faster than the fp32 one.

    .venv/bin/python benchmarks/precision.py            # writes benchmarks/precision_results.md
    .venv/bin/python benchmarks/precision.py --batch 64 --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from normrepro.config import ModelConfig, NormConfig
from normrepro.models import build_model
from normrepro.precision import autocast, use_channels_last
from normrepro.provenance import cpu_model, git_sha

OUT = Path(__file__).resolve().parent / "precision_results.md"
TARGET = 2.5  # bf16 step speed-up over fp32 (the performance issue's target)
CONFIGS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))


def make_step(precision: str, channels_last: bool, batch: int, stages: list[int]):
    torch.manual_seed(0)
    mc = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"arch": "vgg", "stages": stages, "width_mult": 1.0})
    model = build_model(mc, OmegaConf.structured(NormConfig(kind="bn")), (3, 32, 32), 10)
    if channels_last:
        use_channels_last(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

    def step() -> None:
        with autocast(precision, "cpu"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def matmul_gflops(dtype: torch.dtype, n: int = 1024, reps: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--stages", type=int, nargs="+", default=[16, 32, 64],
                        help="channels per stage (default: configs/model/vgg.yaml at width_mult 0.25)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = {c: make_step(*c, args.batch, args.stages) for c in CONFIGS}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times = {c: [] for c in CONFIGS}
    for _ in range(args.reps):  # interleaved rounds
        for c, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[c].append(1000 * (time.perf_counter() - t0))
    ms = {c: statistics.median(t) for c, t in times.items()}
    base = ms[("fp32", False)]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"VGG-style CIFAR CNN (stages {args.stages}, BN), batch {args.batch}: ms per training step, "
             f"{args.threads} thread(s), median of {args.reps} interleaved rounds.", "",
             f"{dt.date.today()}, git {git_sha()}, torch {torch.__version__}, cpu {cpu_model()}, "
             f"load average {load}", "",
             "| precision | channels_last | ms/step | speed-up vs fp32 |", "|---|---|---|---|"]
    lines += [f"| {p} | {cl} | {ms[(p, cl)]:.1f} | {base / ms[(p, cl)]:.2f}x |" for p, cl in CONFIGS]
    best = base / ms[("bf16", True)]
    lines += ["", f"matmul 1024^3: fp32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
              f"bf16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s.", "",
              f"bf16 + channels_last vs fp32: {best:.2f}x (target >= {TARGET}x: "
              f"{'met' if best >= TARGET else 'NOT met'})."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
