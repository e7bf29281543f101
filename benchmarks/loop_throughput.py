"""Does the full training loop keep >= 95% of the bare throughput?

For each workload this measures, in one process and on the same data:

- bare: the run's own batches (the same schedule's gather and augmentation, ``job.training_batches``), then
  forward + cross-entropy + backward + optimizer.step, nothing else (warm-up steps excluded from the timing); measured before and after the loop, averaged;
- loop: the project's own ``normrepro.train.run(cfg, run_dir, label)`` in a temporary run directory, with
  evaluation and probes configured as in a real experiment but run only at step 0 and at the end
  (``train.eval_every = train.steps``). Its ``summary.json`` gives ``samples_per_s`` (training-step time
  only: batch gathering, augmentation, the step, metric accumulation, logging, grad norms) and
  ``wall_time_s``, from which the end-to-end figure is computed (the two evaluations and probes included,
  data loading not).

Real data when the data root (``$NORMREPRO_DATA``, else ./data) has it, else random tensors of the same
shape pushed through the same split/standardize code (the table says which).

    python benchmarks/loop_throughput.py [--threads 1] [--mlp-steps 2000] [--cnn-steps 60] [--only mlp]

Prints a markdown table and writes it, with the date, torch version, threads, device and git SHA, to
benchmarks/results.md. Run it on an idle machine: the figure that matters is the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

import normrepro.train  # noqa: F401  (registers the config schema and the resolvers)
from normrepro.config import CONFIG_DIR
from normrepro.data import DatasetNotFound, load_splits
from normrepro.data.sources import source_files
from normrepro.job import resolve_device, training_batches
from normrepro.models import build_model
from normrepro.optim import build_optimizer
from normrepro.provenance import cpu_model, git_sha
from normrepro.train import run

HERE = Path(__file__).resolve().parent
CLAIM = 0.95  # the loop should keep at least this fraction of the bare throughput


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    dataset: str
    overrides: tuple[str, ...]
    train_shape: tuple[int, ...]  # official train split, uint8 [N, C, H, W] (synthetic stand-in)
    test_size: int


WORKLOADS = {
    "mlp": Workload(
        "mlp", "MNIST MLP 784-100-100-100-10 sigmoid, BN, batch 60", "mnist",
        # bn_mnist is the real experiment: its init, lr, probes and log cadence
        ("experiment=bn_mnist", "norm=bn", "model.widths=[100,100,100]", "model.activation=sigmoid",
         "train.batch_size=60"),
        (60000, 1, 28, 28), 10000),
    "cnn": Workload(
        "cnn", "CIFAR-10 VGG-style CNN (width_mult 0.25), BN, batch 128", "cifar10",
        ("data=cifar10", "model=vgg", "model.width_mult=0.25", "norm=bn", "train.batch_size=128"),
        (50000, 3, 32, 32), 10000),
}


# --- config and data ---------------------------------------------------------------------------------------
def compose_cfg(work: Workload, steps: int, threads: int, device: str):
    overrides = [*work.overrides, f"train.steps={steps}", f"train.eval_every={steps}", f"threads={threads}",
                 f"device={device}", "seed=0", "logger=local"]
    with initialize_config_dir(config_dir=str(Path(CONFIG_DIR).resolve()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cfg.train.log_every = min(cfg.train.log_every, steps)  # at least one training log row, as in a real run
    return cfg


def has_real_data(cfg) -> bool:
    try:
        source_files(cfg.data.name, cfg.data.root)
        return True
    except DatasetNotFound:
        return False


def synthetic_raw(work: Workload) -> dict[str, torch.Tensor]:
    """Random uint8 images and labels shaped like the official splits (what load_raw would return)."""
    g = torch.Generator().manual_seed(0)
    n, *shape = work.train_shape
    return {"x_train": torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g),
            "y_train": torch.randint(0, 10, (n,), generator=g),
            "x_test": torch.randint(0, 256, (work.test_size, *shape), dtype=torch.uint8, generator=g),
            "y_test": torch.randint(0, 10, (work.test_size,), generator=g)}


@contextlib.contextmanager
def data_source(work: Workload, real: bool):
    """Real data as is; otherwise the loader's decode step is replaced by random tensors of the same shape,
    so splitting, standardizing and everything after it is the project's own code."""
    if real:
        yield
        return
    raw = synthetic_raw(work)
    with mock.patch("normrepro.data.splits.load_raw", lambda *args, **kwargs: raw):
        yield


def splits_for(cfg):
    d = cfg.data
    return load_splits(d.name, d.root, d.cache_dir, d.val_size, d.split_seed, d.train_limit, d.eval_limit,
                       d.standardize, device=str(resolve_device(cfg.device)))


# --- the two measurements ----------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_throughput(cfg, splits, steps: int, warmup: int) -> float:
    """Samples/s of the bare SGD step on the run's own batches: the same schedule's gather from the in-memory
    train tensor and the same augmentation (``job.training_batches``), then forward + loss + backward + step."""
    device = resolve_device(cfg.device)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.norm, splits.input_shape, splits.num_classes).to(device)
    model.train()
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    batches = training_batches(cfg, splits, device)

    def step(i: int) -> None:
        x, y, _ = batches.get(i)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(warmup):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    _sync(device)
    return steps * cfg.train.batch_size / (time.perf_counter() - t0)


def loop_run(cfg, work: Workload) -> tuple[dict, float]:
    """The project's run() in a temporary run directory; its summary.json and the seconds run() took."""
    with tempfile.TemporaryDirectory(prefix="loop_throughput_") as tmp:
        run_dir = Path(tmp) / "run"
        t0 = time.perf_counter()
        run(cfg, run_dir, f"benchmark:{work.key}")
        seconds = time.perf_counter() - t0
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    if summary.get("status") != "done":
        raise RuntimeError(f"{work.key}: the run ended {summary.get('status')!r} at step "
                           f"{summary.get('diverged_at')}; no throughput to compare")
    return summary, seconds


def measure(work: Workload, steps: int, warmup: int, threads: int, device: str, data: str) -> dict:
    cfg = compose_cfg(work, steps, threads, device)
    real = has_real_data(cfg) if data == "auto" else data == "real"
    torch.set_num_threads(threads or os.cpu_count() or 1)
    with data_source(work, real):
        splits = splits_for(cfg)
        bare_before = bare_throughput(cfg, splits, steps, warmup)
        summary, run_seconds = loop_run(cfg, work)
        bare_after = bare_throughput(cfg, splits, steps, warmup)
    del splits
    gc.collect()
    bare = (bare_before + bare_after) / 2
    samples = steps * cfg.train.batch_size
    loop = float(summary["samples_per_s"])
    return {
        "workload": work.title, "key": work.key, "real": real, "steps": steps, "warmup": warmup,
        "batch": cfg.train.batch_size, "log_every": cfg.train.log_every, "augment": bool(cfg.data.augment),
        "probes": bool(cfg.probes.enabled), "bare": bare, "bare_runs": (bare_before, bare_after), "loop": loop,
        "ratio": loop / bare, "end_to_end": samples / max(float(summary["wall_time_s"]), 1e-2),
        "wall_time_s": summary["wall_time_s"], "train_time_s": summary["train_time_s"],
        "run_seconds": run_seconds, "params": summary["params"], "device": summary["device"],
        "device_name": summary.get("device_name", ""),
    }


# --- report ------------------------------------------------------------------------------------------------
def markdown(rows: list[dict], args, argv: list[str]) -> str:
    device = rows[0]["device"] if rows else args.device
    device_name = rows[0]["device_name"] if rows else ""
    if device == "cpu":
        device_name = cpu_model() or device_name
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [
        "# Training-loop throughput (`benchmarks/loop_throughput.py`)",
        "",
        f"Claim: the full training loop keeps >= {CLAIM:.0%} of the bare throughput.",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- git: {git_sha()}",
        f"- torch {torch.__version__}, python {platform.python_version()}, threads {args.threads or 'all'}, "
        f"device {device} ({device_name}), {os.cpu_count()} cores, load average at start {args.load_at_start}, "
        f"at the end {load}",
        f"- command: `{' '.join(['python benchmarks/loop_throughput.py', *argv])}`",
        "",
        "| workload | bare samples/s | loop samples/s (train steps) | ratio | end-to-end samples/s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        data = "real data" if r["real"] else "random tensors"
        lines.append(f"| {r['workload']} [{data}] | {r['bare']:,.0f} | {r['loop']:,.0f} | {r['ratio']:.3f} | "
                     f"{r['end_to_end']:,.0f} |")
    lines += ["", "Notes:"]
    for r in rows:
        verdict = "holds" if r["ratio"] >= CLAIM else "does NOT hold"
        lines.append(
            f"- {r['key']}: {r['steps']} timed steps of batch {r['batch']} ({r['params']:,} parameters). "
            f"Bare: {r['bare_runs'][0]:,.0f} samples/s before and "
            f"{r['bare_runs'][1]:,.0f} after the loop (mean in the table), each after {r['warmup']} untimed "
            f"warm-up step(s). Loop: evaluation"
            f"{' and probes' if r['probes'] else ''} at steps 0 and {r['steps']}, training rows every "
            f"{r['log_every']} steps{', batched crop+flip augmentation' if r['augment'] else ''}; train time "
            f"{r['train_time_s']} s, wall time {r['wall_time_s']} s (run() {r['run_seconds']:.1f} s with data "
            f"loading). Ratio {r['ratio']:.3f} vs {CLAIM}: the claim {verdict}.")
    lines += [
        "- bare: the run's own batches (the schedule's gather, the augmentation) then forward + cross-entropy + "
        "backward + optimizer.step, nothing else. loop: `samples_per_s` of the run's summary.json (training-step time only). "
        "end-to-end: steps x batch / `wall_time_s` (steps, evaluations, probes, logging; not data loading).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = all cores; default 1)")
    parser.add_argument("--mlp-steps", type=int, default=2000, help="timed steps of the MLP (default 2000)")
    parser.add_argument("--cnn-steps", type=int, default=60, help="timed steps of the CNN (default 60)")
    parser.add_argument("--mlp-warmup", type=int, default=100, help="untimed bare MLP steps (default 100)")
    parser.add_argument("--cnn-warmup", type=int, default=5, help="untimed bare CNN steps (default 5)")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append",
                        help="run only this workload (repeatable; default: all)")
    parser.add_argument("--data", choices=("auto", "real", "synthetic"), default="auto",
                        help="auto: real data if the data root has it, else random tensors")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="markdown file to write")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the runs' progress lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    os.environ.setdefault("WANDB_MODE", "disabled")
    args.load_at_start = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    settings = {"mlp": (args.mlp_steps, args.mlp_warmup), "cnn": (args.cnn_steps, args.cnn_warmup)}
    if min(s for s, _ in settings.values()) < 1 or min(w for _, w in settings.values()) < 0:
        parser.error("steps must be >= 1 and warm-up steps >= 0")

    rows = []
    for key in args.only or list(WORKLOADS):
        steps, warmup = settings[key]
        print(f"[{key}] {WORKLOADS[key].title}: {steps} steps ...", file=sys.stderr, flush=True)
        try:
            rows.append(measure(WORKLOADS[key], steps, warmup, args.threads, args.device, args.data))
        except DatasetNotFound as err:  # --data real without the data
            print(f"error: {err}", file=sys.stderr)
            return 1
    report = markdown(rows, args, argv)
    print(report)
    if not args.no_write:
        args.out.write_text(report, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
