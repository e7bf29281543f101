"""Sweeps through Hydra's submitit launcher (configs/hydra/launcher/, docs/slurm.md), run here with submitit's
local executor, which starts every job in a process of its own under a controller as the Slurm executor does
on a node: the jobs train in the same run directories as under any other launcher, a second launch skips
them, and a job that is preempted (submitit's signal, then a requeue) comes back into the same run directory
and resumes from its checkpoint instead of starting over. Also: the Slurm launcher's config per scale, and
a data-parallel job's torchrun stopped cleanly when its launcher is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, compose_cfg, read_rows
from normrepro.plan import plan_jobs

TRAIN = [sys.executable, "-m", "normrepro.train", "-m", "experiment=demo", "scale=smoke", "threads=1"]


def _env(engine_env) -> dict:
    """The engine's temporary folders (engine_env set them in os.environ) and this checkout's source."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
            "HYDRA_FULL_ERROR": "1"}


def _launch(engine_env, *overrides: str, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([*TRAIN, *overrides], cwd=engine_env.tmp, env=_env(engine_env), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _job_logs(sweep_dir: Path, skip: frozenset = frozenset()) -> dict[str, str]:
    """What each of submitit's jobs printed, by job id (<sweep dir>/.submitit/<job id>/<job id>_0_log.*),
    leaving out the jobs in ``skip``."""
    return {folder.name: "\n".join(p.read_text() for p in sorted(folder.glob("*_log.*")))
            for folder in sorted((sweep_dir / ".submitit").glob("[0-9]*")) if folder.name not in skip}


# the demo's two smoke jobs, long enough (~1-5 s) for one to be preempted after its first checkpoint
LONGER = ["train.steps=1500", "train.ckpt_every=20", "train.eval_every=500", "train.log_every=100"]


def _preempt_after_first_checkpoint(proc: subprocess.Popen, run_dir: Path) -> None:
    """Send submitit's signal (SIGUSR2: a time limit or a preemption is near) to the job training
    ``run_dir`` once it has a checkpoint. submitit's handler requeues the job with the same arguments
    (locally: the job exits with the requeue status and its controller starts it again)."""
    deadline = time.monotonic() + 180
    while not (run_dir / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the job never checkpointed"
        time.sleep(0.02)
    pid = int((run_dir / ".lock").read_text())  # the job's process holds its run directory
    assert not (run_dir / "DONE").exists(), "the run finished before it could be preempted: raise train.steps"
    os.kill(pid, signal.SIGUSR2)


def _row_keys(run_dir: Path) -> list[tuple]:
    return [tuple(r.get(k) for k in ("step", "split", "metric", "layer", "unit", "bn_mode"))
            for r in read_rows(run_dir)]


@pytest.mark.integration
def test_a_submitit_sweep_resumes_a_preempted_job_and_a_second_launch_skips_both(engine_env):
    jobs = plan_jobs("demo", "smoke", ["threads=1", *LONGER])
    assert [job.cfg.norm.kind for job in jobs] == ["bn", "none"]
    sweep_dir = jobs[0].run_dir.parent
    proc = subprocess.Popen([*TRAIN, *LONGER, "hydra/launcher=local"], cwd=engine_env.tmp, env=_env(engine_env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _preempt_after_first_checkpoint(proc, jobs[0].run_dir)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert all(job.done for job in jobs)  # the directories any launcher uses: nothing names the launcher
    assert sorted(p.name for p in sweep_dir.iterdir()) == sorted(
        [".submitit", "multirun.yaml", *(job.run_dir.name for job in jobs)])  # submitit's files beside them
    first = _job_logs(sweep_dir)
    assert len(first) == 2 and all("Job completed successfully" in log for log in first.values())
    preempted = [log for log in first.values() if "this job is preempted" in log]
    assert len(preempted) == 1 and "Requeued job" in preempted[0], first
    # the requeued job came back into the same run directory and went on from its checkpoint
    resumed_at = int(preempted[0].split("resuming from the checkpoint at step ")[1].split()[0])
    assert 0 < resumed_at < 1500
    for job in jobs:
        keys = _row_keys(job.run_dir)
        assert len(keys) == len(set(keys)) and max(k[0] for k in keys) == 1500  # rows past it dropped, logged once
    assert "[sweep demo/smoke] 2/2 jobs (2 trained, 0 skipped, 0 failed)" in "".join(first.values())
    before = {job.run_dir: ((job.run_dir / "DONE").stat().st_mtime_ns, read_rows(job.run_dir)) for job in jobs}

    _launch(engine_env, *LONGER, "hydra/launcher=submitit_local")  # the plugin's own config: same directories
    second = _job_logs(sweep_dir, skip=frozenset(first))
    assert len(second) == 2 and all("already finished in" in log for log in second.values())
    assert "[sweep demo/smoke] 2/2 jobs (0 trained, 2 skipped, 0 failed)" in "".join(second.values())
    assert {job.run_dir: ((job.run_dir / "DONE").stat().st_mtime_ns, read_rows(job.run_dir))
            for job in jobs} == before
    assert not (sweep_dir / ".progress").exists() and not (engine_env.tmp / "multirun").exists()


def test_the_slurm_launcher_takes_its_resources_from_the_scale():
    def launcher(scale: str, *overrides: str):
        cfg = compose_cfg(["experiment=demo", f"scale={scale}", "hydra/launcher=slurm", *overrides],
                          return_hydra_config=True)
        return cfg.hydra.launcher, cfg.hydra.sweep.dir

    (full, sweep_dir), (cpu, _) = launcher("full"), launcher("cpu", "hydra.launcher.partition=short",
                                                               "hydra.launcher.mem_gb=2")
    assert full._target_.endswith("SlurmLauncher") and full.gpus_per_node == 1 and full.timeout_min == 720
    assert cpu.gpus_per_node is None and cpu.cpus_per_task == 2 and cpu.partition == "short" and cpu.mem_gb == 2
    assert full.max_num_timeout > 0  # a job at its time limit requeues itself and resumes
    assert full.submitit_folder == f"{sweep_dir}/.submitit/%j"  # beside the run directories, in none
    assert full.name == "normrepro-demo-full"
    local, _ = launcher("smoke", "hydra/launcher=local")
    assert local._target_.endswith("LocalLauncher") and local.timeout_min == 1440


@pytest.mark.parametrize("launcher", [["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                                      ["hydra/launcher=local"], ["hydra/launcher=joblib"], []])
def test_no_launcher_changes_a_run_directory(launcher, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RUNS", str(tmp_path))
    cfg = compose_cfg(["experiment=demo", "scale=full", "norm=bn", "seed=3", *launcher], return_hydra_config=True)
    assert Path(cfg.hydra.sweep.dir) / cfg.hydra.sweep.subdir == tmp_path / "demo" / "full" / "norm=bn,seed=3"


def test_a_data_parallel_job_stops_its_torchrun_when_it_is_stopped(tmp_path):
    """submitit's preemption handler raises in the job's process while it waits for torchrun: torchrun is
    asked to stop (SIGTERM, which it forwards to its workers) rather than killed, so no worker outlives it."""
    from normrepro.distributed import run_workers

    flag, started = tmp_path / "stopped", tmp_path / "started"
    child = ("import signal, sys, time, pathlib\n"
             f"def stop(*_): pathlib.Path({str(flag)!r}).write_text('term'); sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, stop)\n"
             f"pathlib.Path({str(started)!r}).touch()\n"
             "time.sleep(60)\n")

    def preempted(*_):
        if not started.exists():  # not yet: look again in a moment
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise SystemExit(-1)  # what submitit's handler does once it has requeued the job

    old = signal.signal(signal.SIGALRM, preempted)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        with pytest.raises(SystemExit):
            run_workers([sys.executable, "-c", child], dict(os.environ))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert flag.read_text() == "term" and time.monotonic() - t0 < 30  # asked to stop, and waited for
