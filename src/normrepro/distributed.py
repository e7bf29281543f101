"""Data-parallel jobs: a job with ``dist.nproc`` > 1 re-launches itself as that many processes with torchrun.

The launching process holds the run directory's lock (runlock.py; the workers inherit the right to write it),
claims it, saves the resolved config next to it and runs
``python -m torch.distributed.run --standalone --nproc_per_node=N -m normrepro.dist_worker <run_dir> <label>``
(exactly what ``torchrun`` does), then reads back the summary rank 0 wrote. Every worker joins the process
group (gloo on CPU, nccl on CUDA) and trains the same model under ``DistributedDataParallel``:

- ``train.batch_size`` is the *global* batch. Every rank draws the same global batch of the step (same seed,
  same ``BatchSchedule``), augments it with the same generator, and keeps its contiguous 1/N slice, so a job
  of N processes sees exactly the examples a single process with the whole batch sees.
- Rank 0 alone evaluates, logs, checkpoints and writes the summary; the others only train.
- The loss is all-reduced every step (a few bytes) so that all ranks stop together when it stops being finite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf

from normrepro.errors import UserError
from normrepro.runlock import INHERITED_ENV

LAUNCH_CONFIG = "launch_config.yaml"
STOP_GRACE_S = 60  # seconds torchrun gets to stop its workers when this process is stopped while waiting


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (a Slurm job's
    ``--cpus-per-task``, ``taskset``), else every core of the machine. ``threads=0`` means these, so a job
    requeued onto a bigger node of the same partition resolves the same thread count, which its checkpoint's
    conditions pin (conditions.py)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity on this OS
        return os.cpu_count() or 1


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch."""
        per = len(t) // self.world
        return t[self.rank * per:(self.rank + 1) * per]

    def mean_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of ``values`` over the processes (non-finite anywhere stays non-finite)."""
        total = values.detach().double().clone()
        dist.all_reduce(total)
        return total / self.world

    def all_finite(self, loss: torch.Tensor) -> tuple[bool, float]:
        """(every rank's loss is finite, the mean loss over ranks): one small all-reduce."""
        total = loss.detach().double().reshape(1).clone()
        dist.all_reduce(total)
        value = total.item() / self.world
        return bool(torch.isfinite(total).all()), value


def current() -> DistContext | None:
    """The context of this worker, or None outside a process group (or with a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def backend_for(name: str, device: str) -> str:
    if name != "auto":
        return name
    return "nccl" if str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available()) else "gloo"


def launch(cfg, run_dir: Path, label: str) -> None:
    """Run one job as ``cfg.dist.nproc`` torchrun workers; returns when they have finished."""
    run_dir = Path(run_dir)
    OmegaConf.save(cfg, run_dir / LAUNCH_CONFIG, resolve=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.dist.nproc}",
           "-m", "normrepro.dist_worker", str(run_dir), label]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, available_cores() // cfg.dist.nproc))}
    src = str(Path(__file__).resolve().parents[1])  # the workers import this same source tree
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env[INHERITED_ENV] = str(run_dir.resolve())  # this process holds the run's lock on the workers' behalf
    returncode = run_workers(cmd, env)
    if returncode != 0:
        raise UserError(f"[{label}] the {cfg.dist.nproc}-process job failed (torchrun exit {returncode}); "
                        "its workers' errors are printed above")


def run_workers(cmd: list[str], env: dict) -> int:
    """Run torchrun and return its exit status. When this process is stopped while it waits (Ctrl-C, or a
    signal handler that raises, as submitit's does on preemption before it requeues the job), torchrun is
    first asked to stop its workers (SIGTERM, which it forwards), and killed only after ``STOP_GRACE_S``:
    ``subprocess.run`` would SIGKILL it at once and leave the workers running without the lock they write under."""
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
