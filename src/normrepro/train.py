"""Hydra entry point: ``python -m normrepro.train [experiment=<id>] [key=value ...] [-m for a sweep]``.

Builds the data, model and optimizer from the config, runs the ``Trainer`` in a deterministic run directory
(``runs/<experiment>/<scale>/<overrides>``), and writes ``metrics.jsonl``, ``summary.json`` and ``DONE``.
A finished run is skipped when the sweep is launched again; a killed one resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from normrepro import distributed
from normrepro.config import CONFIG_DIR, register_configs
from normrepro.config_check import validate_config
from normrepro.data import DatasetNotFound
from normrepro.errors import UserError
from normrepro.job import (
    build_job,
    load_data,
    open_writer,
    setup_threads_and_device,
    summarize,
)
from normrepro.rundir import RunDir
from normrepro.store import truncate_after

log = logging.getLogger(__name__)
register_configs()


def run(cfg: DictConfig, run_dir: Path, label: str = "run") -> dict:
    """One training job in ``run_dir``; returns its summary (also written to ``summary.json``).

    With ``dist.nproc`` > 1 the job runs as that many processes (``distributed.py``); this call then launches
    them with torchrun, or is one of them when already inside their process group."""
    validate_config(cfg)
    ctx = distributed.current()
    main_rank = ctx is None or ctx.is_main
    rd = RunDir(run_dir, cfg)
    if main_rank:
        rd.claim()  # first: a finished run of another config in this directory is an error, not a result
    if rd.done:
        log.info("[%s] already finished in %s: skipping", label, rd.path)
        return rd.read_summary()
    if cfg.dist.nproc > 1 and ctx is None:
        distributed.launch(cfg, rd.path, label)
        return rd.read_summary()
    if ctx is not None and ctx.world != cfg.dist.nproc:
        raise UserError(f"dist.nproc={cfg.dist.nproc} but the process group has {ctx.world} processes")
    threads, device = setup_threads_and_device(cfg, ctx)
    splits = load_data(cfg, device)
    ckpt = rd.load_checkpoint()
    if main_rank:
        truncate_after(rd.metrics_file, ckpt["step"] if ckpt else -1)  # drop rows logged after the checkpoint
    writer = open_writer(cfg, rd, label, ckpt, main_rank)
    job = build_job(cfg, splits, writer, rd, label, ctx, threads, device)
    start = 0
    if ckpt:
        start = job.trainer.restore(ckpt)
        log.info("[%s] resuming from the checkpoint at step %d", label, start)
    try:
        summary = summarize(cfg, job, job.trainer.fit(start), label)
        for mirror in writer.mirrors:
            mirror.summary({"status": summary["status"], **summary["final"]})
    finally:
        writer.close()
    if main_rank:
        rd.finish(summary)
        log.info("[%s] %s in %.1f s: %s", label, summary["status"], summary["wall_time_s"],
                 ", ".join(f"{k} {v:.4f}" for k, v in summary["final"].items()))
    if ctx is not None:
        torch.distributed.barrier()  # the launcher reads the summary once every rank is done
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    label = f"{cfg.experiment_id}:{hc.job.override_dirname or 'default'}"
    try:
        summary = run(cfg, Path(hc.runtime.output_dir), label)
    except (UserError, DatasetNotFound) as err:
        sys.exit(f"error: {err}")
    return summary["final"].get("val/acc")


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
