"""Hydra entry point: ``python -m normrepro.train [experiment=<id>] [key=value ...] [-m for a sweep]``.

Builds the data, model and optimizer from the config, runs the ``Trainer`` in a deterministic run directory
(``runs/<experiment>/<scale>/<overrides>``), and writes ``metrics.jsonl``, ``summary.json`` and ``DONE``.
A finished run is skipped when the sweep is launched again; a killed one resumes from its last checkpoint.
Each job holds its run directory's lock while it runs (a job another process is running is skipped); a job
that fails prints one line, leaves FAILED and lets the sweep go on (guard.py, sweep_callback.py).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from normrepro import conditions, distributed
from normrepro.analysis.results import evaluated
from normrepro.analysis.spec_check import check_job_config
from normrepro.config import CONFIG_DIR, register_configs
from normrepro.config_check import validate_config
from normrepro.data import DatasetNotFound
from normrepro.errors import ConfigError, RunBusy, UserError
from normrepro.guard import guarded, mark_failed
from normrepro.job import (
    build_job,
    load_data,
    open_writer,
    setup_threads_and_device,
    summarize,
)
from normrepro.rundir import RunDir

log = logging.getLogger(__name__)
register_configs()


def run(cfg: DictConfig, run_dir: Path, label: str = "run") -> dict:
    """One training job in ``run_dir``; returns its summary (also written to ``summary.json``).

    The job holds ``run_dir``'s lock throughout (``RunBusy`` when another process holds it) and leaves
    ``FAILED`` when it fails (guard.py). With ``dist.nproc`` > 1 the job runs as that many processes
    (``distributed.py``); this call then launches them with torchrun, or is one of them when already inside
    their process group (whose launcher holds the lock)."""
    validate_config(cfg)  # before touching the run directory or the data
    check_job_config(cfg)  # the experiment's derived / claims / plots blocks, before any data is loaded
    if distributed.current() is not None:
        return _train(cfg, Path(run_dir), label)
    return guarded(Path(run_dir), label, lambda: _train(cfg, Path(run_dir), label))


def _check_batch_fits(cfg: DictConfig, n_train: int) -> None:
    if n_train < cfg.train.batch_size:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than the {n_train} training examples "
                          f"of {cfg.data.name} (data.train_limit={cfg.data.train_limit}): lower train.batch_size "
                          "or raise data.train_limit")


def _train(cfg: DictConfig, run_dir: Path, label: str) -> dict:
    ctx = distributed.current()
    main_rank = ctx is None or ctx.is_main
    rd = RunDir(run_dir, cfg)
    if main_rank:
        rd.claim()  # first: a finished run of another config in this directory is an error, not a result
    if rd.done:
        log.info("[%s] already finished in %s: skipping", label, rd.path)
        if main_rank:
            rd.checkpoint_file.unlink(missing_ok=True)  # left by a kill between DONE and its deletion
        return rd.read_summary()
    if cfg.dist.nproc > 1 and ctx is None:
        distributed.launch(cfg, rd.path, label)
        return rd.read_summary()
    if ctx is not None and ctx.world != cfg.dist.nproc:
        raise UserError(f"dist.nproc={cfg.dist.nproc} but the process group has {ctx.world} processes")
    threads, device = setup_threads_and_device(cfg, ctx)
    splits = load_data(cfg, device)
    _check_batch_fits(cfg, len(splits.train.y))
    rd.conditions = conditions.current(device, threads, splits)  # saved with checkpoints, compared on resume
    ckpt = rd.load_checkpoint(cfg.train.discard_bad_checkpoint, cfg.train.allow_changed_conditions)
    if main_rank:
        rd.truncate_metrics(ckpt["step"] if ckpt else -1)  # drop rows logged after the checkpoint (under the lock)
    writer = open_writer(cfg, rd, label, ckpt, main_rank)
    job = build_job(cfg, splits, writer, rd, label, ctx, threads, device)
    start = 0
    if ckpt:
        start = job.trainer.restore(ckpt)
        log.info("[%s] resuming from the checkpoint at step %d", label, start)
    try:
        summary = summarize(cfg, job, job.trainer.fit(start), label)
        for mirror in writer.mirrors:
            mirror.summary({"status": summary["status"], **job.evaluator.last})
    finally:
        writer.close()
    if main_rank:
        rd.finish(summary)
        log.info("[%s] %s in %.1f s: %s", label, summary["status"], summary["wall_time_s"],
                 ", ".join(f"{k} {v:.4f}" for k, v in job.evaluator.last.items()))
    if ctx is not None:
        torch.distributed.barrier()  # the launcher reads the summary once every rank is done
    return summary


def job_label(experiment_id: str, overrides: list[str]) -> str:
    """``<experiment>:<overrides>`` for log lines, keys shortened to their last part where that is unambiguous
    within the job: ``bn_placement:activation=tanh,norm=bn,seed=0`` for ``model.activation=tanh norm=bn seed=0``
    (the run directory keeps the full ``override_dirname``)."""
    pairs = [o.split("=", 1) for o in overrides if "=" in o]
    short = [key.rsplit(".", 1)[-1].lstrip("+~") for key, _ in pairs]
    parts = [f"{s if short.count(s) == 1 else key}={value}" for (key, value), s in zip(pairs, short)]
    return f"{experiment_id}:{','.join(sorted(parts)) or 'default'}"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    excluded = set(hc.job.config.override_dirname.exclude_keys)
    label = job_label(cfg.experiment_id, [o for o in hc.overrides.task if o.split("=", 1)[0] not in excluded])
    try:
        run(cfg, Path(hc.runtime.output_dir), label)
    except RunBusy as err:  # another launcher is training this job: not a failure of this sweep
        if hc.mode != RunMode.MULTIRUN:
            sys.exit(f"error: {err}")  # the one job asked for did not run here
        log.warning("%s", err)
        return None
    except (UserError, DatasetNotFound) as err:
        if hc.mode != RunMode.MULTIRUN:
            sys.exit(f"error: {err}")
        log.error("error: [%s] %s", label, err)  # one line; FAILED is left; the sweep goes on
        mark_failed(Path(hc.runtime.output_dir), err)  # also for an invalid config, refused before the guard
        return None
    except Exception as err:
        if hc.mode != RunMode.MULTIRUN:
            raise
        # A bug, not a user error: its traceback, then the other jobs; sweep_callback reports it at the end.
        log.exception("[%s] failed", label)
        mark_failed(Path(hc.runtime.output_dir), err)
        return None
    # the sweep's objective, from the rows like every result (a skipped or multi-process job has no evaluator here)
    return evaluated(Path(hc.runtime.output_dir))["final"].get("val/acc")


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
