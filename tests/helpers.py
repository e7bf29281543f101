"""Shared helpers of the offline test suite: tiny datasets in the real on-disk formats, Hydra composition,
and readers for what a run leaves behind. Fixtures that use them live in conftest.py."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
EXPERIMENT_FILES = sorted((CONFIGS / "experiment").glob("*.yaml"))
ALL_EXPERIMENTS = [p.stem for p in EXPERIMENT_FILES]
# The Makefile's list: every experiment file except none.yaml (a single run of the defaults).
EXPERIMENTS = [e for e in ALL_EXPERIMENTS if e != "none"]

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The smoke scale keeps the default val_size of mnist/cifar10 (5000), which the fakes' train pools (900 and
# 500 images) cannot hold: runs on them carve 256 validation images instead, what smoke's eval_limit keeps
# of the real sets anyway.
FAKE_VAL_SIZE = 256
SMOKE = ["scale=smoke", "threads=1"]


# ------------------------------------------------------------------------------------------- MNIST
def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: magic 00 00 08 <ndim>, big-endian uint32 sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _learnable_images(rng: np.random.Generator, labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Noise plus a bright class-dependent band, so a few SGD steps can learn something."""
    x = rng.integers(0, 60, (len(labels), *shape)).astype(np.int64)
    height = shape[-2]
    band = max(1, height // 12)
    for i, label in enumerate(labels):
        top = int(label) * (height - band) // 9
        x[i, ..., top:top + band, :] += 180
    return x.clip(0, 255).astype(np.uint8)


def write_fake_mnist(root: Path, n_train: int = 900, n_test: int = 300, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", _learnable_images(rng, labels, (28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


# -------------------------------------------------------------------------------------------- PTB
def write_fake_ptb(root: Path, seed: int = 0) -> None:
    """``<root>/PTB/ptb.char.{train,valid,test}.txt`` in Mikolov's format (characters separated by spaces,
    words by ``_``, one sentence per line): a few predictable sentences, so a model can learn something."""
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "n't", "<unk>", "$", "N"]
    folder = root / "PTB"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 600), ("valid", 120), ("test", 120)):
        lines = []
        for _ in range(n):
            sentence = "_".join(rng.choice(words, rng.integers(3, 8)))
            lines.append(" " + " ".join(sentence))
        (folder / f"ptb.char.{name}.txt").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------------------ CIFAR
def write_fake_cifar_png(root: Path, n_train_per_class: int = 50, n_test_per_class: int = 30, seed: int = 0) -> None:
    """``<root>/cifar10/{train,test}/<class>/<i>.png``, 32x32 RGB, written with PIL."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        for label, cls in enumerate(CIFAR_CLASSES):
            folder = root / "cifar10" / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            images = _learnable_images(rng, np.full(n, label), (32, 32))
            for i, img in enumerate(images):
                rgb = np.stack([img, np.roll(img, label, axis=1), img[::-1]], axis=-1)
                Image.fromarray(rgb, mode="RGB").save(folder / f"{i:04d}.png")


# ------------------------------------------------------------------------------------------ Hydra
def compose_cfg(overrides: list[str] | tuple[str, ...] = (), return_hydra_config: bool = False):
    """The composed root config, as ``python -m normrepro.train`` would build it (without the hydra node
    unless asked for)."""
    from hydra import compose, initialize_config_dir

    from normrepro.config import register_configs

    register_configs()

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)


def data_overrides(data_name: str) -> list[str]:
    """What a run on the fakes needs besides the smoke scale."""
    return [f"data.val_size={FAKE_VAL_SIZE}"] if data_name in ("mnist", "cifar10") else []


# ------------------------------------------------------------------------------------- run output
def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def comparable(rows: list[dict]) -> list[dict]:
    """Metric rows minus the wall-clock ones (throughput differs between identical runs)."""
    return [r for r in rows if r["metric"] != "samples_per_s"]


def read_wandb_records(path: Path) -> list:
    """The protobuf records of a ``.wandb`` transaction log (LevelDB log format: 7-byte file header, then
    32 KiB blocks of records with a 7-byte header: crc32, little-endian length, type 1=full 2=first
    3=middle 4=last)."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", data[:7]
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            records.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            records.append(pending + chunk)
    out = []
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        out.append(record)
    return out


def _sweep_params(exp: str) -> dict:
    """The experiment file's own ``hydra.sweeper.params`` over those of an experiment it extends."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONFIGS / "experiment" / f"{exp}.yaml")
    params: dict = {}
    for parent in node.get("defaults") or []:
        if isinstance(parent, str) and (CONFIGS / "experiment" / f"{parent}.yaml").is_file():
            params.update(_sweep_params(parent))
    own = OmegaConf.select(node, "hydra.sweeper.params")
    params.update(OmegaConf.to_container(own) if own is not None else {})
    return params


def smoke_grid_size(exp: str) -> int:
    """Jobs of the experiment at scale=smoke (one seed), read from its YAML without Hydra: only used to
    decide which tests are slow."""
    size = 1
    for key, value in _sweep_params(exp).items():
        if key != "seed":
            size *= len(str(value).split(","))
    return size


def evaluated(run_dir: Path, kind: str = "final") -> dict:
    """A run's final (or best) evaluations ``{"test/acc": ...}``, derived from its rows like the analysis."""
    from normrepro.analysis.results import evaluated as from_rows

    return from_rows(run_dir)[kind]
