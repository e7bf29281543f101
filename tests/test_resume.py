"""Run directories: a killed run resumes from its last checkpoint and ends exactly where an uninterrupted
run ends; a finished run is skipped; a directory never mixes two configs."""

from __future__ import annotations

import json

import pytest

from helpers import comparable, evaluated, read_rows
from normrepro.errors import RunDirConflict
from normrepro.train import run
from normrepro.trainer import Trainer


class Killed(Exception):
    """Stands in for a kill -9 / a preempted job."""


def kill_at(monkeypatch, step: int) -> None:
    """Make the run die right after it logged its training rows of ``step``."""
    original = Trainer._log_train

    def log_then_die(self, at, *args, **kwargs):
        original(self, at, *args, **kwargs)
        if at == step:
            raise Killed(f"killed at step {at}")

    monkeypatch.setattr(Trainer, "_log_train", log_then_die)


def interrupted_then_resumed(env, monkeypatch, cfg, step: int, name: str = "resumed"):
    run_dir = env.tmp / name
    with monkeypatch.context() as mp:
        kill_at(mp, step)
        with pytest.raises(Killed):
            run(cfg, run_dir, name)
    assert not (run_dir / "DONE").exists()
    return run_dir


def test_resume_after_checkpoint_matches_uninterrupted(engine_env, monkeypatch):
    # dropout RNG, momentum buffers, LR schedule state, BN running averages, the training-dynamics probes
    cfg = engine_env.cfg("norm=bn", "model.dropout_hidden=0.3", "optim.momentum=0.9",
                         "optim.schedule.kind=cosine", "probes.dynamics=true")
    run(cfg, engine_env.tmp / "reference", "ref")

    run_dir = interrupted_then_resumed(engine_env, monkeypatch, cfg, step=9)
    assert (run_dir / "checkpoint.pt").exists()  # saved at step 6 (smoke: ckpt_every=6)
    assert max(r["step"] for r in read_rows(run_dir)) == 9  # rows past the checkpoint are on disk
    with (run_dir / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 9, "epoch": 1.1, "split": "tr')  # and a torn last line, as a kill leaves

    resumed = run(cfg, run_dir, "resumed")
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "reference"))
    for kind in ("final", "best"):
        assert evaluated(run_dir, kind) == evaluated(engine_env.tmp / "reference", kind)
    assert resumed["status"] == "done" and (run_dir / "DONE").exists()
    assert not (run_dir / "checkpoint.pt").exists()


def test_killed_before_first_checkpoint_restarts_cleanly(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn")
    run(cfg, engine_env.tmp / "reference", "ref")
    run_dir = interrupted_then_resumed(engine_env, monkeypatch, cfg, step=3)
    assert not (run_dir / "checkpoint.pt").exists()
    run(cfg, run_dir, "again")
    assert comparable(read_rows(run_dir)) == comparable(read_rows(engine_env.tmp / "reference"))


def test_finished_run_is_skipped(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=none")
    run_dir = engine_env.tmp / "done"
    first = run(cfg, run_dir, "first")
    before = (run_dir / "metrics.jsonl").read_bytes()

    def no_training(self, start):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "fit", no_training)
    # Keys that do not change the result (threads, checkpoint interval, logger) do not count as a new config.
    again = run(engine_env.cfg("norm=none", "train.ckpt_every=3", "threads=2"), run_dir, "again")
    assert again == json.loads((run_dir / "summary.json").read_text()) == first
    assert (run_dir / "metrics.jsonl").read_bytes() == before


def test_different_config_in_an_unfinished_run_dir_is_a_conflict(engine_env, monkeypatch):
    run_dir = interrupted_then_resumed(engine_env, monkeypatch, engine_env.cfg("optim.lr=0.1"), step=9)
    rows = (run_dir / "metrics.jsonl").read_bytes()
    with pytest.raises(RunDirConflict, match=r"optim\.lr"):
        run(engine_env.cfg("optim.lr=0.2"), run_dir, "other")
    assert (run_dir / "metrics.jsonl").read_bytes() == rows  # nothing touched
    assert (run_dir / "checkpoint.pt").exists()


def test_different_config_in_a_finished_run_dir_is_a_conflict(engine_env):
    run_dir = engine_env.tmp / "done"
    run(engine_env.cfg("optim.lr=0.1"), run_dir, "first")
    with pytest.raises(RunDirConflict, match=r"optim\.lr"):
        run(engine_env.cfg("optim.lr=0.2"), run_dir, "other")


def test_resume_between_log_steps_matches_uninterrupted(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn", "train.log_every=4")  # checkpoint at 6, train rows at 4, 8, 12
    run(cfg, engine_env.tmp / "reference", "ref")
    with monkeypatch.context() as mp:
        original = Trainer.evaluate

        def evaluate_then_die(self, step):
            diverged = original(self, step)
            if step == 12:
                raise Killed
            return diverged

        mp.setattr(Trainer, "evaluate", evaluate_then_die)
        with pytest.raises(Killed):
            run(cfg, engine_env.tmp / "resumed", "resumed")
    run(cfg, engine_env.tmp / "resumed", "resumed")
    assert comparable(read_rows(engine_env.tmp / "resumed")) == comparable(read_rows(engine_env.tmp / "reference"))


def test_resume_keeps_stuck_unit_counts(engine_env, monkeypatch):
    cfg = engine_env.cfg("norm=bn", "probes.stuck_epochs=5", "data.order=fixed")
    run(cfg, engine_env.tmp / "reference", "ref")
    reference = read_rows(engine_env.tmp / "reference")
    run_dir = interrupted_then_resumed(engine_env, monkeypatch, cfg, step=9)
    run(cfg, run_dir, "resumed")
    resumed = read_rows(run_dir)
    for metric in ("frac_stuck_zero", "frac_zero"):
        want = [r["value"] for r in reference if r["metric"] == metric]
        assert want, f"no {metric} row"
        assert [r["value"] for r in resumed if r["metric"] == metric] == want
