"""What a sweep prints besides each job's lines: one progress line per finished job for the whole sweep (jobs
done / total, trained / skipped / failed, ETA), from whichever process ran the job; and the jobs' short labels."""

from __future__ import annotations

import logging
import pickle

from omegaconf import OmegaConf

from helpers import compose_cfg
from normrepro.plan import plan_jobs
from normrepro.sweep_callback import PROGRESS_DIR, SweepProgress, sweep_size
from normrepro.train import job_label

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_config(sweep_dir, task: list[str], params: dict) -> OmegaConf:
    """The parts of a multirun's config the callback reads."""
    return OmegaConf.create({
        "experiment_id": "demo", "scale": {"name": "smoke"},
        "hydra": {"sweep": {"dir": str(sweep_dir)}, "overrides": {"task": task},
                  "sweeper": {"_target_": BASIC, "max_batch_size": None, "params": params}}})


def job_config(run_dir, num: int) -> OmegaConf:
    return OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run_dir)}, "job": {"num": num}}})


def test_the_sweep_size_is_the_number_of_planned_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMREPRO_RUNS", str(tmp_path))
    demo = compose_cfg(["experiment=demo", "scale=cpu"], return_hydra_config=True)
    assert sweep_size(demo) == len(plan_jobs("demo", "cpu", check=False)) == 10
    placement = compose_cfg(["experiment=bn_placement", "scale=smoke"], return_hydra_config=True)
    assert sweep_size(placement) == 2 * 3 * 2 * 2  # settings x activations x norms x placements, smoke's 1 seed


def test_command_line_sweeps_replace_the_files_and_another_sweeper_has_no_size(tmp_path):
    config = sweep_config(tmp_path, ["experiment=demo", "seed=0,1,2"], {"norm": "bn,none", "seed": "range(0,5)"})
    assert sweep_size(config) == 6
    config.hydra.sweeper._target_ = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweep_size(config) is None


def test_one_progress_line_per_job_from_any_process(tmp_path, caplog):
    sweep = tmp_path / "runs" / "demo" / "smoke"
    config = sweep_config(sweep, ["experiment=demo"], {"norm": "bn,none", "seed": "range(0,2)"})
    progress = SweepProgress()
    progress.on_multirun_start(config)
    dirs = [sweep / name for name in ("trained", "finished_before", "failing", "busy")]
    for run_dir in dirs:
        run_dir.mkdir(parents=True)
    (dirs[1] / "DONE").write_text("done\n")
    (dirs[2] / "FAILED").write_text("an earlier failure\n")

    def job(num: int, outcome_on_disk) -> str:
        worker = pickle.loads(pickle.dumps(progress))  # a launcher's worker gets a copy, as joblib's and submitit's do
        worker.on_job_start(job_config(dirs[num], num))
        outcome_on_disk()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="normrepro.sweep"):
            worker.on_job_end(job_config(dirs[num], num))
        (line,) = caplog.messages
        return line

    line = job(0, lambda: (dirs[0] / "DONE").write_text("done\n"))
    assert line.startswith("[sweep demo/smoke] 1/4 jobs (1 trained, 0 skipped, 0 failed) | 0m0")
    assert " | ETA 0m0" in line  # the time so far per trained job, times the 3 jobs left
    assert "2/4 jobs (1 trained, 1 skipped, 0 failed)" in job(1, lambda: None)
    assert "3/4 jobs (1 trained, 1 skipped, 1 failed)" in job(2, lambda: (dirs[2] / "FAILED").write_text("now\n"))
    last = job(3, lambda: None)  # another process held it: neither DONE nor FAILED
    assert "4/4 jobs (1 trained, 2 skipped, 1 failed)" in last and last.endswith("| all done")
    progress.on_multirun_end(config)
    assert not (sweep / PROGRESS_DIR).exists()


def test_no_trained_job_yet_no_eta_and_a_single_run_prints_nothing(tmp_path, caplog):
    progress = SweepProgress()
    assert progress.line({"trained": 0, "skipped": 1, "failed": 0}).endswith("| ETA -")
    with caplog.at_level(logging.INFO, logger="normrepro.sweep"):
        progress.on_job_start(job_config(tmp_path, 0))
        progress.on_job_end(job_config(tmp_path, 0))  # no on_multirun_start: a single run
    assert not caplog.messages


def test_job_labels_drop_the_group_of_a_key_when_that_is_unambiguous():
    assert job_label("bn_placement", ["model.activation=tanh", "norm=bn", "seed=0", "setting=placement_mlp"]) == (
        "bn_placement:activation=tanh,norm=bn,seed=0,setting=placement_mlp")
    assert job_label("x", ["model.dropout=0.1", "data.dropout=0.2", "+train.steps=5"]) == (
        "x:data.dropout=0.2,model.dropout=0.1,steps=5")
    assert job_label("demo", []) == "demo:default"
