"""Faults on the run side (issue 11): nothing lost, nothing run that should not be.

Each test injects one fault at smoke scale on the fakes and checks the exact behaviour: concurrent launches
(a flock per run directory), a DONE run is whole, damaged checkpoints, a sweep that goes on past failing
jobs, resuming under other conditions, sizes and storage, and kill -9 at random moments. The guarantees
these tests prove are listed in docs/reliability-runs.md.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, comparable, evaluated, read_rows
from normrepro import conditions, runlock
from normrepro.data import DatasetNotFound
from normrepro.errors import (
    CheckpointDamaged,
    ConditionsChanged,
    ConfigError,
    RunBusy,
    RunDirConflict,
    StorageError,
)
from normrepro.guard import FAILED_NAME
from normrepro.rundir import RunDir
from normrepro.sweep_callback import FailedJobsReport
from normrepro.train import job_label, run
from normrepro.trainer import Trainer


class Killed(BaseException):
    """Stands in for a kill at a chosen point of a run (the real kill -9 is tested with subprocesses); like a
    kill, it is no Exception a job handles, so it leaves no FAILED behind."""


def interrupted(env, monkeypatch, cfg, name="run", step=9) -> Path:
    """A run that died right after logging step ``step`` (smoke: checkpoint at step 6)."""
    run_dir = env.tmp / name
    original = Trainer._log_train

    def log_then_die(self, at, *args, **kwargs):
        original(self, at, *args, **kwargs)
        if at == step:
            raise Killed

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "_log_train", log_then_die)
        with pytest.raises(Killed):
            run(cfg, run_dir, name)
    assert (run_dir / "checkpoint.pt").exists() == (step >= 6) and not (run_dir / "DONE").exists()
    return run_dir


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory (but the Hydra-owned ones) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(run_dir).iterdir()) if p.is_file() and p.name != "train.log"}


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text, repr(text)
    return text


# --------------------------------------------------------------------------------- subprocess sweeps
SWEEP = [sys.executable, "-m", "normrepro.train", "-m", "scale=smoke", "threads=1", "data.val_size=256"]


def sweep_env(runs: Path) -> dict:
    """The engine_env variables (already in os.environ) plus this source tree and the runs folder."""
    return {**os.environ, "NORMREPRO_RUNS": str(runs), "HYDRA_FULL_ERROR": "0",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}


def launch(runs: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([*SWEEP, *overrides], env=sweep_env(runs), cwd=runs.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def sweep(runs: Path, *overrides: str, timeout: float = 300) -> tuple[int, str]:
    proc = launch(runs, *overrides)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def sweep_dir(runs: Path) -> Path:
    return runs / "adhoc" / "smoke"


def label_of(job_dir: str) -> str:
    """The label a job's log lines carry, from its run directory's name (no list values in these grids)."""
    return job_label("adhoc", job_dir.split(","))


def trained(out: str) -> list[str]:
    """Labels of the jobs a sweep's output says it trained to the end."""
    return re.findall(r"\[(adhoc:[^\]]+)\] (?:done|diverged) in ", out)


def busy_lines(out: str) -> list[tuple[str, int]]:
    return [(label, int(pid)) for label, pid in re.findall(r"\[(adhoc:[^\]]+)\] skipped: .* being trained by "
                                                          r"process (\d+)", out)]


# ======================================================================== 1. concurrent launches
def test_lock_is_exclusive_names_the_holder_and_leaves_no_file(tmp_path):
    run_dir = tmp_path / "job"
    run_dir.mkdir()
    with runlock.hold(run_dir, "first"):
        assert runlock.is_locked(run_dir) and runlock.holder_pid(run_dir) == os.getpid()
        with pytest.raises(RunBusy) as busy:  # another open file description: flock refuses it, even here
            runlock.acquire(run_dir, "adhoc:seed=1")
        assert busy.value.holder_pid == os.getpid()
        assert one_line(busy.value).startswith(f"[adhoc:seed=1] skipped: {run_dir} is being trained by process "
                                               f"{os.getpid()}")
    assert not (run_dir / runlock.LOCK_NAME).exists() and not runlock.is_locked(run_dir)
    with runlock.hold(run_dir, "again"):  # free again
        pass


def test_lock_of_a_killed_holder_is_released_by_the_os(tmp_path):
    run_dir = tmp_path / "job"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from normrepro import runlock; "
         "runlock.acquire(sys.argv[1], 'holder'); print('locked', flush=True); time.sleep(60)", str(run_dir)],
        env=sweep_env(tmp_path / "runs"), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusy) as busy:
            runlock.acquire(run_dir, "job")
        assert busy.value.holder_pid == holder.pid and f"process {holder.pid}" in str(busy.value)
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    assert (run_dir / runlock.LOCK_NAME).read_text().strip() == str(holder.pid)  # its file is still there...
    with runlock.hold(run_dir, "job"):  # ...but not its lock
        assert runlock.holder_pid(run_dir) == os.getpid()


def test_a_job_held_by_another_process_is_left_untouched(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    before = snapshot(run_dir)
    with runlock.hold(run_dir, "other launcher"):
        with pytest.raises(RunBusy, match=rf"being trained by process {os.getpid()}"):
            run(cfg, run_dir, "second")
        assert snapshot(run_dir) == {**before, runlock.LOCK_NAME: f"{os.getpid()}\n".encode()}
    assert not (run_dir / FAILED_NAME).exists()  # busy is not a failure


def test_metrics_are_rewritten_only_under_the_lock(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    rows = (run_dir / "metrics.jsonl").read_bytes()
    with pytest.raises(RuntimeError, match="does not hold"):
        RunDir(run_dir, cfg).truncate_metrics(6)  # what a resume does first: refused without the lock
    assert (run_dir / "metrics.jsonl").read_bytes() == rows
    with runlock.hold(run_dir, "resume"):
        RunDir(run_dir, cfg).truncate_metrics(6)
    assert max(r["step"] for r in read_rows(run_dir)) == 6


def test_a_sweep_skips_the_job_another_process_holds(engine_env):
    runs = engine_env.tmp / "runs"
    held = sweep_dir(runs) / "data.val_size=256,norm=none,seed=0"  # (smoke's sweep adds seed=0)
    held.mkdir(parents=True)
    with runlock.hold(held, "this test"):
        code, out = sweep(runs, "norm=bn,none")
    assert code == 0, out
    assert busy_lines(out) == [(label_of(held.name), os.getpid())]  # one line, naming the job and the holder
    assert trained(out) == [label_of("data.val_size=256,norm=bn,seed=0")]
    assert not (held / "metrics.jsonl").exists() and not (held / "run_config.yaml").exists()
    assert (sweep_dir(runs) / "data.val_size=256,norm=bn,seed=0" / "DONE").exists()


@pytest.mark.parametrize("delay", [0, pytest.param(3, marks=pytest.mark.slow)], ids=["together", "3s-later"])
def test_two_sweeps_launched_together_run_every_job_once(engine_env, delay):
    runs = engine_env.tmp / "runs"
    jobs = ["0", "1", "2", "3"]
    grid = ["train.steps=24", "seed=" + ",".join(jobs)]
    first = launch(runs, *grid)
    time.sleep(delay)
    second = launch(runs, *grid)
    outs = {p.pid: p.communicate(timeout=300)[0] for p in (first, second)}
    assert first.returncode == 0 and second.returncode == 0, outs
    names = [f"data.val_size=256,seed={s},train.steps=24" for s in jobs]
    done = [label for out in outs.values() for label in trained(out)]
    assert sorted(done) == sorted(label_of(n) for n in names)  # every job trained exactly once
    for pid, out in outs.items():
        other = first.pid if pid == second.pid else second.pid
        assert all(holder == other for _, holder in busy_lines(out))  # a skipped job names the other launcher
    for name, seed in zip(names, jobs):
        job = sweep_dir(runs) / name
        summary = json.loads((job / "summary.json").read_text())
        lines = (job / "metrics.jsonl").read_text().splitlines()
        assert summary["metrics_rows"] == len(lines) and summary["metrics_last_step"] == 24
        keys = [(r["step"], r["split"], r["metric"], r.get("layer"), r.get("unit")) for r in map(json.loads, lines)]
        assert len(keys) == len(set(keys))  # nothing logged twice into one file
        reference = engine_env.tmp / f"ref{seed}"
        run(engine_env.cfg("train.steps=24", f"seed={seed}"), reference, "ref")
        assert comparable(read_rows(job)) == comparable(read_rows(reference))


# ============================================================================ 2. a done run is whole
def test_done_summary_records_the_rows_and_last_step(engine_env):
    run_dir = engine_env.tmp / "run"
    summary = run(engine_env.cfg("norm=bn"), run_dir, "run")
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == summary
    assert on_disk["metrics_rows"] == len(read_rows(run_dir)) > 0
    assert on_disk["metrics_last_step"] == max(r["step"] for r in read_rows(run_dir)) == 12
    assert on_disk["conditions"]["threads"] == 1 and on_disk["conditions_changed"] == []


def test_done_is_written_after_fsynced_metrics_and_an_atomic_summary(engine_env, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    run(engine_env.cfg("norm=bn", "train.ckpt_every=0"), engine_env.tmp / "run", "run")
    finish = events[events.index(("fsync", "metrics.jsonl")):]
    assert finish[:5] == [("fsync", "metrics.jsonl"), ("fsync", ".summary.json.tmp"), ("replace", "summary.json"),
                          ("fsync", ".DONE.tmp"), ("replace", "DONE")]


def test_a_kill_while_finishing_leaves_a_run_that_resumes(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    reference = run(cfg, engine_env.tmp / "reference", "ref")
    import normrepro.rundir as rundir_module
    real = rundir_module._write_atomic

    def die_before_done(path, data):
        if path.name == "DONE":
            raise Killed
        real(path, data)

    with monkeypatch.context() as mp:
        mp.setattr(rundir_module, "_write_atomic", die_before_done)
        with pytest.raises(Killed):
            run(cfg, engine_env.tmp / "run", "run")
    run_dir = engine_env.tmp / "run"
    assert not (run_dir / "DONE").exists() and (run_dir / "checkpoint.pt").exists()  # the checkpoint goes last
    again = run(cfg, run_dir, "run")  # resumes from step 6, not 0
    assert again["status"] == reference["status"] and (run_dir / "DONE").exists()
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "reference"))


# ================================================================================= 3. checkpoints
def test_checkpoints_load_with_weights_only(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn", "model.dropout_hidden=0.3", "optim.momentum=0.9", "optim.schedule.kind=cosine",
                         "probes.dynamics=true", "probes.stuck_epochs=2", "data.augment=true")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 6 and ckpt["conditions"]["threads"] == 1


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(4096))


def _foreign(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)  # loads, but is no checkpoint of a run


def _unsafe(path: Path) -> None:
    torch.save({"step": 6, "model": {}, "code": Path("x")}, path)  # needs arbitrary unpickling


@pytest.mark.parametrize("damage", [_truncated, _random, _foreign, _unsafe, lambda p: p.write_bytes(b"")],
                         ids=["truncated", "random", "foreign", "unsafe", "empty"])
def test_a_damaged_checkpoint_is_one_line_and_touches_nothing(engine_env, monkeypatch, damage):
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    damage(run_dir / "checkpoint.pt")
    before = snapshot(run_dir)
    with pytest.raises(CheckpointDamaged) as err:
        run(cfg, run_dir, "resume")
    message = one_line(err.value)
    assert message.startswith(f"{run_dir / 'checkpoint.pt'} is damaged (")
    assert message.endswith("); delete it to restart this run from step 0, or run with "
                            "train.discard_bad_checkpoint=true")
    assert snapshot(run_dir) == {**before, FAILED_NAME: (message + "\n").encode()}  # metrics not truncated


def test_discard_bad_checkpoint_restarts_from_step_0(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run(cfg, engine_env.tmp / "reference", "ref")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    _truncated(run_dir / "checkpoint.pt")
    flagged = engine_env.cfg("norm=bn", "train.discard_bad_checkpoint=true")  # result-neutral: same run dir
    assert run(flagged, run_dir, "resume")["status"] == "done"
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "reference"))


# ============================================================================ 4. a sweep goes on
def _sweep_with_failures(engine_env, *launcher: str) -> None:
    """Four jobs: one fine, two with a batch larger than the training set, one with a damaged checkpoint."""
    runs = engine_env.tmp / "runs"
    damaged = sweep_dir(runs) / "data.val_size=256,seed=1,train.batch_size=32"
    damaged.mkdir(parents=True)
    (damaged / "checkpoint.pt").write_bytes(b"\x80not a checkpoint")
    stale = sweep_dir(runs) / "data.val_size=256,seed=9,train.batch_size=32"  # failed in an earlier sweep
    stale.mkdir(parents=True)
    (stale / FAILED_NAME).write_text("old\n")
    code, out = sweep(runs, "train.batch_size=32,2000", "seed=0,1", *launcher)
    failed = ["data.val_size=256,seed=0,train.batch_size=2000", "data.val_size=256,seed=1,train.batch_size=2000",
              damaged.name]
    assert code == 1, out
    assert "Traceback" not in out
    for name in failed:
        errors = [line for line in out.splitlines() if f"error: [{label_of(name)}] " in line]
        assert len(errors) == 1, out  # one line per failed job
        assert (sweep_dir(runs) / name / FAILED_NAME).read_text().strip() in errors[0]
    assert "train.batch_size=2000 is larger than the 512 training examples" in out
    assert f"{damaged / 'checkpoint.pt'} is damaged" in out
    assert trained(out) == [label_of("data.val_size=256,seed=0,train.batch_size=32")]  # the good job ran
    assert (sweep_dir(runs) / "data.val_size=256,seed=0,train.batch_size=32" / "DONE").exists()
    assert out.strip().splitlines()[-1] == (f"error: 3 job(s) of this sweep failed: {', '.join(sorted(failed))} "
                                            f"(in {sweep_dir(runs)}; each one's FAILED holds the reason); fix them "
                                            "and launch again: finished jobs are skipped")


def test_a_sweep_goes_on_past_failing_jobs_and_exits_nonzero_naming_them(engine_env):
    _sweep_with_failures(engine_env)


@pytest.mark.slow  # the joblib workers each import torch: ~30 s on 2 busy cores
def test_a_joblib_sweep_goes_on_past_failing_jobs(engine_env):
    _sweep_with_failures(engine_env, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


def test_the_sweep_report_names_only_this_sweeps_failures(tmp_path):
    from omegaconf import OmegaConf

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    for name in ("stale", "rewritten", "fixed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / FAILED_NAME).write_text("earlier\n")
    report = FailedJobsReport()
    report.on_multirun_start(config)
    time.sleep(0.01)
    (tmp_path / "rewritten" / FAILED_NAME).write_text("again\n")
    (tmp_path / "fixed" / FAILED_NAME).unlink()
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / FAILED_NAME).write_text("first time\n")
    with pytest.raises(SystemExit) as exit_:
        report.on_multirun_end(config)
    assert str(exit_.value.code).startswith("error: 2 job(s) of this sweep failed: new, rewritten (")
    (tmp_path / "new" / FAILED_NAME).unlink()
    (tmp_path / "rewritten" / FAILED_NAME).unlink()
    report.on_multirun_start(config)
    report.on_multirun_end(config)  # nothing failed this time: no exit


def test_a_failure_leaves_failed_and_the_next_attempt_clears_it(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run_dir = engine_env.tmp / "run"
    with monkeypatch.context() as mp:
        def broken(self, start):
            raise RuntimeError("a bug\nover two lines")

        mp.setattr(Trainer, "fit", broken)
        with pytest.raises(RuntimeError):
            run(cfg, run_dir, "run")  # a bug keeps its traceback (it is raised again), and leaves its reason
    assert (run_dir / FAILED_NAME).read_text() == "RuntimeError: a bug over two lines\n"
    with pytest.raises(RunDirConflict):
        run(engine_env.cfg("norm=none"), run_dir, "other")  # a user error also leaves FAILED
    assert (run_dir / FAILED_NAME).read_text().startswith(f"{run_dir} holds a run with a different config")
    run(cfg, run_dir, "run")
    assert not (run_dir / FAILED_NAME).exists() and (run_dir / "DONE").exists()


def _corrupt_mnist(env) -> Path:
    root = env.tmp / "data"
    shutil.copytree(env.data / "MNIST", root / "MNIST")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])  # cut short, as by an interrupted copy
    return root


@pytest.mark.parametrize("bad", ["missing", "corrupt"])
def test_bad_data_fails_the_job_with_one_line(engine_env, bad):
    root = engine_env.tmp / "empty" if bad == "missing" else _corrupt_mnist(engine_env)
    cfg = engine_env.cfg(f"data.root={root}", f"data.cache_dir={engine_env.tmp / 'cache'}")
    with pytest.raises(DatasetNotFound) as err:
        run(cfg, engine_env.tmp / "run", "run")
    message = one_line(err.value)
    assert str(root) in message and ("make data" in message or "delete it" in message)
    assert (engine_env.tmp / "run" / FAILED_NAME).read_text() == message + "\n"


# ================================================================ 5. same inputs, same numbers, or a refusal
CHANGED = {"threads": 7}  # the value a condition takes in the "other conditions" (strings elsewhere)


@pytest.mark.parametrize("name", list(conditions.READERS))
def test_resume_under_other_conditions_is_refused(engine_env, monkeypatch, name):
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    recorded = torch.load(run_dir / "checkpoint.pt", weights_only=True)["conditions"][name]
    before = snapshot(run_dir)
    other = CHANGED.get(name, f"other-{name}")
    monkeypatch.setitem(conditions.READERS, name, lambda device, threads, splits: other)
    with pytest.raises(ConditionsChanged) as err:
        run(cfg, run_dir, "resume")
    message = one_line(err.value)
    assert message == (f"{run_dir / 'checkpoint.pt'} was made under other conditions ({name}: {recorded} -> "
                       f"{other}): resuming would not give an uninterrupted run's numbers; restore them, or delete "
                       "the checkpoint to restart from step 0, or run with train.allow_changed_conditions=true")
    assert snapshot(run_dir) == {**before, FAILED_NAME: (message + "\n").encode()}


def test_resume_with_other_threads_or_other_data_is_refused(engine_env, monkeypatch):
    """The real values, not substitutes: a different thread count; the same files with other pixels."""
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    with pytest.raises(ConditionsChanged, match=r"\(threads: 1 -> 2\)"):
        run(engine_env.cfg("norm=bn", "threads=2"), run_dir, "resume")  # threads is not part of the run's config
    data = engine_env.tmp / "data"
    shutil.copytree(engine_env.data / "MNIST", data / "MNIST")
    images = data / "MNIST" / "raw" / "train-images-idx3-ubyte"
    blob = bytearray(images.read_bytes())
    for i in range(900):  # one pixel of every training image: same names, same sizes
        blob[16 + 784 * i + 28 * 14 + 14] ^= 0xFF
    images.write_bytes(bytes(blob))
    moved = engine_env.cfg("norm=bn", f"data.root={data}", f"data.cache_dir={engine_env.tmp / 'cache'}")
    with pytest.raises(ConditionsChanged, match=r"\(data: [0-9a-f]+ -> [0-9a-f]+\)"):
        run(moved, run_dir, "resume")


def test_a_checkpoint_without_recorded_conditions_is_refused(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    del ckpt["conditions"]  # as made before conditions were recorded
    torch.save(ckpt, run_dir / "checkpoint.pt")
    with pytest.raises(ConditionsChanged, match=r"\(it records none \(an older version made it\)\)"):
        run(cfg, run_dir, "resume")


def test_allow_changed_conditions_resumes_and_says_so(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run(cfg, engine_env.tmp / "reference", "ref")
    run_dir = interrupted(engine_env, monkeypatch, cfg)
    monkeypatch.setitem(conditions.READERS, "torch", lambda device, threads, splits: "9.9")
    summary = run(engine_env.cfg("norm=bn", "train.allow_changed_conditions=true"), run_dir, "resume")
    # (the substitute changed nothing real)
    assert evaluated(run_dir) == evaluated(engine_env.tmp / "reference") and summary["status"] == "done"
    assert summary["conditions_changed"] == [f"torch: {torch.__version__} -> 9.9"]
    assert json.loads((run_dir / "summary.json").read_text())["conditions"]["torch"] == "9.9"


# ============================================================================ 6. sizes and environment
def test_a_training_set_smaller_than_one_batch_is_one_line(engine_env):
    run_dir = engine_env.tmp / "run"
    with pytest.raises(ConfigError) as err:
        run(engine_env.cfg("data.train_limit=50", "train.batch_size=60"), run_dir, "small")
    assert one_line(err.value) == ("train.batch_size=60 is larger than the 50 training examples of mnist "
                                   "(data.train_limit=50): lower train.batch_size or raise data.train_limit")
    assert not (run_dir / "metrics.jsonl").exists()


def test_a_runs_folder_that_cannot_be_written_is_one_line(engine_env, monkeypatch):
    runs = engine_env.tmp / "runs"
    runs.mkdir()
    runs.chmod(0o555)
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # root ignores the mode bits: refuse as the kernel would for a user
        if Path(path).parent == runs:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    try:
        with pytest.raises(StorageError) as err:
            run(engine_env.cfg(), runs / "adhoc" / "smoke" / "default", "job")
    finally:
        runs.chmod(0o755)
    assert one_line(err.value) == (f"cannot write {runs / 'adhoc'} (Permission denied): make {runs} writable or "
                                   "set paths.runs=<a writable folder> (NORMREPRO_RUNS)")


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def disk_full_for(monkeypatch, name: str) -> None:
    """Writes to files whose name contains ``name`` raise ENOSPC from now on."""
    real_open = Path.open

    def open_(self, mode="r", *args, **kwargs):
        fh = real_open(self, mode, *args, **kwargs)
        return _FullDisk(fh) if name in self.name and mode[0] in "wa" else fh

    monkeypatch.setattr(Path, "open", open_)


@pytest.mark.parametrize("name", ["metrics.jsonl", "checkpoint.pt", "summary.json"])
def test_a_full_disk_is_one_line_and_the_run_resumes(engine_env, monkeypatch, name):
    cfg = engine_env.cfg("norm=bn", "train.ckpt_every=3")
    run(cfg, engine_env.tmp / "reference", "ref")
    run_dir = engine_env.tmp / "run"
    with monkeypatch.context() as mp:
        if name == "checkpoint.pt":  # the disk fills up after the first checkpoint (step 3)
            real_save = RunDir.save_checkpoint

            def save_then_fill(self, state):
                real_save(self, state)
                disk_full_for(mp, name)

            mp.setattr(RunDir, "save_checkpoint", save_then_fill)
        else:
            disk_full_for(mp, name)
        with pytest.raises(StorageError) as err:
            run(cfg, run_dir, "run")
    assert one_line(err.value) == (f"no space left writing {run_dir} (No space left on device): free space on "
                                   "that disk or set paths.runs=<a folder on another disk> (NORMREPRO_RUNS), then "
                                   "launch again (the job resumes from its last checkpoint)")
    assert (run_dir / FAILED_NAME).exists() and not (run_dir / "DONE").exists()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # no half-written file left
    if name == "checkpoint.pt":
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 3  # the previous one stays
    run(cfg, run_dir, "run")  # space is freed: the job resumes
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "reference"))


# =================================================================================== 7. kill -9
KILL_JOBS = ["0", "1", "2"]
KILL_GRID = ["norm=bn", "train.steps=24", "train.ckpt_every=4", "train.log_every=2", "train.eval_every=12",
             "seed=" + ",".join(KILL_JOBS)]
KILL_NAMES = [f"data.val_size=256,norm=bn,seed={s},train.eval_every=12,train.log_every=2,train.steps=24"
              for s in KILL_JOBS]


def _results(job: Path) -> dict[str, bytes]:
    return {name: (job / name).read_bytes() for name in ("metrics.jsonl", "summary.json", "DONE")}


def _last_step(path: Path) -> int:
    steps = [-1]
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            pass  # a torn last line
    return max(steps)


# Seed 0 runs by default (two sweep launches: ~10 s on an idle machine, ~35 s on 2 busy cores); 1 and 2 are slow.
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_kill_9_at_a_random_moment_loses_and_redoes_nothing(engine_env, seed):
    rng = random.Random(seed)
    runs = engine_env.tmp / "runs"
    # Where to kill: once a random job has logged a random step (or during start-up), plus a random delay.
    victim, at_step, delay = rng.randrange(len(KILL_JOBS)), rng.choice([0, 2, 4, 6, 12, 24]), rng.uniform(0, 0.05)
    proc = launch(runs, *KILL_GRID)
    watched = sweep_dir(runs) / KILL_NAMES[victim] / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while proc.poll() is None and _last_step(watched) < at_step and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the sweep had already ended
        pass
    proc.communicate()
    jobs = [sweep_dir(runs) / name for name in KILL_NAMES]
    finished = {j.name: _results(j) for j in jobs if (j / "DONE").exists()}
    logged = {j.name: _last_step(j / "metrics.jsonl") for j in jobs if not (j / "DONE").exists()}
    saved = {j.name: torch.load(j / "checkpoint.pt", weights_only=True)["step"] for j in jobs
             if (j / "checkpoint.pt").exists() and not (j / "DONE").exists()}

    assert KILL_NAMES[victim] in logged or at_step == 24  # the kill did interrupt the chosen job
    code, out = sweep(runs, *KILL_GRID)
    assert code == 0, out
    for job in jobs:
        label = label_of(job.name)
        assert (job / "DONE").exists()
        if job.name in finished:  # not lost, not redone
            assert _results(job) == finished[job.name] and label not in trained(out)
            continue
        resumed = re.findall(rf"\[{re.escape(label)}\] resuming from the checkpoint at step (\d+)", out)
        start = int(resumed[0]) if resumed else 0
        assert start == saved.get(job.name, 0)
        assert logged[job.name] - start <= 4  # redid at most one checkpoint interval
        reference = engine_env.tmp / f"ref-{job.name}"
        seed_value = job.name.split("seed=")[1].split(",")[0]
        run(engine_env.cfg(*KILL_GRID[:-1], f"seed={seed_value}"), reference, "ref")
        assert comparable(read_rows(job)) == comparable(read_rows(reference))
