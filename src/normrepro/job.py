"""The parts of one training job, built from its config: data on the device, model and optimizer, the metrics
writer (and its wandb mirror), the trainer with its evaluator and instruments, and the summary it leaves.
``train.run`` strings them together around the run directory."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel

from normrepro.data import BatchSchedule, TrainingBatches, load_char_splits, load_splits
from normrepro.distributed import available_cores
from normrepro.errors import UserError
from normrepro.evaluation import Evaluator
from normrepro.measure import build_instruments
from normrepro.models import build_model
from normrepro.optim import build_optimizer, build_schedule
from normrepro.precision import use_channels_last
from normrepro.provenance import environment
from normrepro.seeding import derive_seed, generator
from normrepro.store import MetricsWriter
from normrepro.trainer import Trainer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is visible; use device=cpu or device=auto")
    return torch.device(name)


@dataclass
class Job:
    trainer: Trainer
    evaluator: Evaluator
    model: torch.nn.Module
    device: torch.device
    threads: int
    world: int


def setup_threads_and_device(cfg, ctx) -> tuple[int, torch.device]:
    world = ctx.world if ctx else 1
    threads = cfg.threads or max(1, available_cores() // world)
    torch.set_num_threads(threads)
    device = resolve_device(cfg.device)
    if ctx is not None and device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    return threads, device


def load_data(cfg, device: torch.device):
    d = cfg.data
    if d.name == "ptb_char":
        return load_char_splits(d.root, d.seq_len, d.train_limit, d.eval_limit, device=str(device))
    return load_splits(d.name, d.root, d.cache_dir, d.val_size, d.split_seed, d.train_limit, d.eval_limit,
                       d.standardize, device=str(device))


def open_writer(cfg, rd, label: str, ckpt: dict | None, main_rank: bool) -> MetricsWriter:
    """``metrics.jsonl`` (rank 0 only), mirrored to wandb with ``logger=wandb`` (resuming the same wandb run)."""
    mirrors = []
    if main_rank and cfg.logger.use_wandb:
        from normrepro.wandb_mirror import WandbMirror
        mirrors.append(WandbMirror(rd.path, label, cfg.experiment_id, OmegaConf.to_container(cfg, resolve=True),
                                   cfg.logger.project, cfg.logger.entity, cfg.logger.mode,
                                   resume_id=ckpt.get("wandb_id") if ckpt else None))
    return MetricsWriter(rd.metrics_file if main_rank else os.devnull, mirrors)


def training_batches(cfg, splits, device, shard=None) -> TrainingBatches:
    """The training batches of ``cfg``: the data order and the augmentation have their own seed streams (they
    draw nothing from the global one), so the loop and the loop benchmark's bare baseline see the same data."""
    order = BatchSchedule(splits.train.y, cfg.train.batch_size, cfg.data.order, derive_seed(cfg.seed, "order"))
    augment = generator(cfg.seed, "augment", str(device)) if cfg.data.augment else None
    return TrainingBatches(splits.train, order, augment, shard)


def build_job(cfg, splits, writer: MetricsWriter, rd, label: str, ctx, threads: int, device) -> Job:
    """Model, optimizer, batches, evaluator and instruments, seeded by separate streams of ``cfg.seed``."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_model(cfg.model, cfg.norm, splits.input_shape, splits.num_classes).to(device)
    if cfg.train.channels_last:
        use_channels_last(model)
    # DDP averages the gradients across processes (and broadcasts rank 0's BN buffers at each forward)
    train_model = model if ctx is None else DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    schedule = build_schedule(optimizer, cfg.optim.schedule, cfg.train.steps)
    batches = training_batches(cfg, splits, device, ctx.shard if ctx is not None else None)
    order = batches.schedule
    torch.manual_seed(derive_seed(cfg.seed, "dropout"))  # the global stream now drives dropout only
    eval_splits = {"val": splits.val, "test": splits.test}
    if cfg.train.eval_train_examples:  # a fixed slice of the training set, in eval mode: the train-test gap
        n = cfg.train.eval_train_examples
        eval_splits["train_eval"] = type(splits.train)(splits.train.x[:n], splits.train.y[:n])
    evaluator = Evaluator(model, eval_splits, cfg.train.eval_batch_size,
                          lambda step, *row, **opt: writer.write(step, step / order.steps_per_epoch, *row, **opt),
                          cfg.train.precision)
    instruments = build_instruments(cfg, model, splits, order)
    trainer = Trainer(cfg.train, model, optimizer, schedule, batches, evaluator, instruments, writer, rd, label,
                      grad_clip=cfg.optim.grad_clip, train_model=train_model, dist=ctx)
    if writer.mirrors:
        trainer.extra_state["wandb_id"] = writer.mirrors[0].run_id
    return Job(trainer, evaluator, model, device, threads, ctx.world if ctx else 1)


def summarize(cfg, job: Job, outcome: dict, label: str) -> dict:
    """``summary.json``: the run's facts (outcome, times, throughput, size, versions, device, threads). Its
    results are the metrics rows; the analysis derives final and best values from them (analysis/results.py)."""
    t, done = job.trainer, outcome["status"] == "done"
    return {
        **outcome,
        "experiment": cfg.experiment_id, "scale": cfg.scale.name, "run": label,
        "steps_done": cfg.train.steps if done else outcome["diverged_at"],
        "wall_time_s": round(t.wall_time(), 2),
        "train_time_s": round(t.train_time, 2),
        "samples_per_s": round(cfg.train.steps * cfg.train.batch_size / max(t.train_time, 1e-9), 1) if done else None,
        "params": sum(p.numel() for p in job.model.parameters()),
        "processes": job.world,
        **environment(job.device, job.threads),
    }
