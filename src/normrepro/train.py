"""Hydra entry point: ``python -m normrepro.train [experiment=<id>] [key=value ...] [-m for a sweep]``.

Builds the data, model and optimizer from the config, runs the ``Trainer`` in a deterministic run directory
(``runs/<experiment>/<scale>/<overrides>``), and writes ``metrics.jsonl``, ``summary.json`` and ``DONE``.
A finished run is skipped when the sweep is launched again; a killed one resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel

from normrepro import distributed
from normrepro.analysis.spec_check import check_job_config
from normrepro.config import register_configs, validate_config
from normrepro.data import BatchSchedule, DatasetNotFound, load_char_splits, load_splits
from normrepro.errors import UserError
from normrepro.models import build_model
from normrepro.optim import build_optimizer, build_schedule
from normrepro.provenance import environment
from normrepro.rundir import RunDir
from normrepro.seeding import derive_seed, generator
from normrepro.store import MetricsWriter, truncate_after
from normrepro.trainer import Trainer

log = logging.getLogger(__name__)
CONFIG_DIR = os.environ.get("NORMREPRO_CONFIGS", str(Path(__file__).resolve().parents[2] / "configs"))


def register_resolvers() -> None:
    # An empty override string (a run of the defaults) still needs a directory name.
    OmegaConf.register_new_resolver("dirname", lambda s: s or "default", replace=True)
    # Budgets in images and linearly scaled learning rates ([GN]'s batch-size sweep): ${idiv:a,b}, ${mul:a,b}
    OmegaConf.register_new_resolver("idiv", lambda a, b: int(a) // int(b), replace=True)
    OmegaConf.register_new_resolver("mul", lambda a, b: float(a) * float(b), replace=True)


register_configs()
register_resolvers()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is visible; use device=cpu or device=auto")
    return torch.device(name)


def run(cfg: DictConfig, run_dir: Path, label: str = "run") -> dict:
    """One training job in ``run_dir``; returns its summary (also written to ``summary.json``).

    With ``dist.nproc`` > 1 the job runs as that many processes (``distributed.py``); this call then launches
    them with torchrun, or is one of them when already inside their process group."""
    validate_config(cfg)
    check_job_config(cfg)  # the experiment's derived / claims / plots blocks, before any data is loaded
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
    world = ctx.world if ctx else 1
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // world)
    torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
    if ctx is not None and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    d = cfg.data
    if d.name == "ptb_char":
        splits = load_char_splits(d.root, d.seq_len, d.train_limit, d.eval_limit, device=str(device))
    else:
        splits = load_splits(d.name, d.root, d.cache_dir, d.val_size, d.split_seed, d.train_limit, d.eval_limit,
                             d.standardize, device=str(device))
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_model(cfg.model, cfg.norm, splits.input_shape, splits.num_classes).to(device)
    # DDP averages the gradients across processes (and broadcasts rank 0's BN buffers at each forward)
    train_model = model if ctx is None else DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    schedule = build_schedule(optimizer, cfg.optim.schedule, cfg.train.steps)
    batches = BatchSchedule(splits.train.y, cfg.train.batch_size, d.order, derive_seed(cfg.seed, "order"))
    torch.manual_seed(derive_seed(cfg.seed, "dropout"))  # the global stream now drives dropout only

    ckpt = rd.load_checkpoint()
    mirrors = []
    if main_rank:
        truncate_after(rd.metrics_file, ckpt["step"] if ckpt else -1)  # drop rows logged after the checkpoint
        if cfg.logger.use_wandb:
            from normrepro.wandb_mirror import WandbMirror
            mirrors.append(WandbMirror(rd.path, label, cfg.experiment_id,
                                       OmegaConf.to_container(cfg, resolve=True), cfg.logger.project,
                                       cfg.logger.entity, cfg.logger.mode,
                                       resume_id=ckpt.get("wandb_id") if ckpt else None))
    writer = MetricsWriter(rd.metrics_file if main_rank else os.devnull, mirrors)
    trainer = Trainer(cfg, model, optimizer, schedule, splits, batches, generator(cfg.seed, "augment", str(device)),
                      writer, rd, label, train_model=train_model, dist=ctx)
    start = 0
    if ckpt:
        start = trainer.restore(ckpt)
        log.info("[%s] resuming from the checkpoint at step %d", label, start)
    if mirrors:
        trainer.extra_state["wandb_id"] = mirrors[0].run_id
    try:
        outcome = trainer.fit(start)
        summary = {
            **outcome,
            "experiment": cfg.experiment_id, "scale": cfg.scale.name, "run": label,
            "steps_done": cfg.train.steps if outcome["status"] == "done" else outcome["diverged_at"],
            "wall_time_s": round(trainer.wall_time(), 2),
            "train_time_s": round(trainer.train_time, 2),
            "samples_per_s": round(cfg.train.steps * cfg.train.batch_size / max(trainer.train_time, 1e-9), 1)
            if outcome["status"] == "done" else None,
            "params": sum(p.numel() for p in model.parameters()),
            "processes": world,
            "final": trainer.last_eval, "best": trainer.best_eval,
            **environment(device, threads),
        }
        for mirror in mirrors:
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
