"""Tests for normrepro.data on tiny fakes written in the real on-disk formats (no real data needed).

One test at the end uses the real MNIST when NORMREPRO_DATA points at a copy, and skips otherwise.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from normrepro.data import (
    ORDERS,
    BatchSchedule,
    CorruptDataset,
    DatasetNotFound,
    load_raw,
    load_splits,
    random_crop_flip,
    read_cifar10,
    read_digits,
    read_mnist,
    sources,
)

# ------------------------------------------------------------------------------- fake writers


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """An IDX file of unsigned bytes: magic 00 00 08 <ndim>, big-endian uint32 dims, raw bytes."""
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def fake_mnist(root: Path, n_train: int = 40, n_test: int = 12, gz: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, array in data.items():
        write_idx(raw / name, array, gz=gz)
    return data


def fake_cifar_batches(root: Path, per_batch: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five train pickles + test_batch; returns the concatenated (data [N,3072], labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    datas, labels = [], []
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        label = [int(v) for v in rng.integers(0, 10, per_batch)]
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": label, b"batch_label": name.encode()}, f)
        datas.append(data)
        labels.extend(label)
    return np.concatenate(datas), np.array(labels)


CLASSES = ["airplane", "automobile", "bird"]


def fake_png_tree(root: Path, per_class: int = 3, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """cifar10/{train,test}/<class>/<name>.png; returns {split: {relative path: HWC pixels}}."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, np.ndarray]] = {}
    for split in ("train", "test"):
        written[split] = {}
        for cls in CLASSES:
            folder = root / "cifar10" / split / cls
            folder.mkdir(parents=True)
            # Names written out of order, so sorting inside the loader is exercised.
            for i in reversed(range(per_class)):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                name = f"{cls}_{i:03d}.png"
                Image.fromarray(pixels).save(folder / name)
                written[split][f"{cls}/{name}"] = pixels
    return written


# ------------------------------------------------------------------------------------ sources


@pytest.mark.parametrize("gz", [False, True])
def test_read_mnist_plain_and_gz(tmp_path, gz):
    data = fake_mnist(tmp_path, gz=gz)
    x_train, y_train, x_test, y_test = read_mnist(tmp_path)
    assert x_train.shape == (40, 1, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (12, 1, 28, 28)
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(x_train[:, 0], data["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, data["t10k-labels-idx1-ubyte"])


def test_read_mnist_rejects_bad_magic_and_size(tmp_path):
    fake_mnist(tmp_path)
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(good[:-3])  # truncated
    with pytest.raises(CorruptDataset, match="bytes") as info:
        read_mnist(tmp_path)
    assert str(labels) in str(info.value) and "\n" not in str(info.value)
    labels.write_bytes(b"\x00\x00\x0d" + good[3:])  # float type code, not unsigned bytes
    with pytest.raises(CorruptDataset, match="magic"):
        read_mnist(tmp_path)


def test_read_cifar_batches(tmp_path):
    data, labels = fake_cifar_batches(tmp_path)
    x_train, y_train, x_test, y_test = read_cifar10(tmp_path)
    assert x_train.shape == (30, 3, 32, 32) and x_test.shape == (6, 3, 32, 32)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    # Row layout of a batch: 1024 red, then 1024 green, then 1024 blue values, row-major.
    np.testing.assert_array_equal(x_train.reshape(30, -1), data[:30])
    np.testing.assert_array_equal(x_train[4, 1, 2, 3], data[4, 1024 + 2 * 32 + 3])
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), labels)


def test_read_cifar_png_tree(tmp_path):
    written = fake_png_tree(tmp_path)
    x_train, y_train, x_test, y_test = read_cifar10(tmp_path)
    assert x_train.shape == (9, 3, 32, 32) and x_test.shape == (9, 3, 32, 32)
    assert y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # sorted class folders -> labels
    expected = [written["train"][key] for key in sorted(written["train"])]  # sorted by class, then name
    np.testing.assert_array_equal(x_train.transpose(0, 2, 3, 1), np.stack(expected))
    np.testing.assert_array_equal(y_test, y_train)


def test_read_cifar_undecodable_png(tmp_path):
    fake_png_tree(tmp_path, per_class=1)
    bad = tmp_path / "cifar10" / "test" / "bird" / "bird_000.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(CorruptDataset) as info:
        read_cifar10(tmp_path)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_read_digits_scaling():
    x, y = read_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.uint8 and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 255 and set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_root_is_one_line_with_path(tmp_path, name):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFound) as info:
        load_splits(name, str(root), str(tmp_path / "cache"), val_size=1)
    message = str(info.value)
    assert "\n" not in message and str(root) in message
    assert "NORMREPRO_DATA" in message and "make data" in message


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="mnist, cifar10, digits"):
        load_splits("svhn", str(tmp_path), str(tmp_path), val_size=1)


# -------------------------------------------------------------------------------------- cache


def test_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "data")
    root, cache = tmp_path / "data", tmp_path / "cache"
    first = load_raw("mnist", root, cache)
    assert (cache / "mnist.pt").is_file()

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although the cache is current")

    monkeypatch.setattr(sources, "read_mnist", no_decode)
    second = load_raw("mnist", root, cache)
    assert all(torch.equal(first[k], second[k]) for k in first)

    # A changed source (a different number of test images) must be decoded again.
    fake_mnist(root, n_test=7)
    with pytest.raises(AssertionError, match="decoded"):
        load_raw("mnist", root, cache)


def test_corrupt_cache_is_rebuilt(tmp_path):
    fake_mnist(tmp_path / "data")
    cache_file = tmp_path / "cache" / "mnist.pt"
    good = load_raw("mnist", tmp_path / "data", tmp_path / "cache")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # truncated, as by a killed job
    again = load_raw("mnist", tmp_path / "data", tmp_path / "cache")
    assert torch.equal(good["x_train"], again["x_train"])
    assert not list(cache_file.parent.glob(".*.tmp"))  # no temporary files left behind


# ------------------------------------------------------------------------------------- splits


def _pixel_keys(split) -> set[bytes]:
    pixels = (split.x * 255).round().to(torch.uint8).flatten(1)
    return {bytes(row.numpy()) for row in pixels}


def test_split_sizes_disjoint_and_seeded(tmp_path):
    fake_mnist(tmp_path, n_train=40, n_test=12)
    kwargs = dict(name="mnist", root=str(tmp_path), cache_dir=str(tmp_path / "c"), standardize=False)
    s = load_splits(val_size=10, **kwargs)
    assert (len(s.train), len(s.val), len(s.test)) == (30, 10, 12)
    assert s.train.x.dtype == torch.float32 and s.train.y.dtype == torch.int64
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    # The fake images are random, so their pixels identify the examples.
    assert not _pixel_keys(s.train) & _pixel_keys(s.val)
    assert len(_pixel_keys(s.train) | _pixel_keys(s.val)) == 40
    assert float(s.train.x.max()) <= 1.0 and float(s.train.x.min()) >= 0.0

    assert torch.equal(load_splits(val_size=10, **kwargs).val.x, s.val.x)  # same seed, same split
    assert not torch.equal(load_splits(val_size=10, split_seed=1, **kwargs).val.x, s.val.x)


def test_limits(tmp_path):
    fake_mnist(tmp_path, n_train=40, n_test=12)
    kwargs = dict(name="mnist", root=str(tmp_path), cache_dir=str(tmp_path / "c"), val_size=10)
    full = load_splits(standardize=False, **kwargs)
    small = load_splits(train_limit=5, eval_limit=4, standardize=False, **kwargs)
    assert (len(small.train), len(small.val), len(small.test)) == (5, 4, 4)
    assert torch.equal(small.train.x, full.train.x[:5])  # the first N of the permuted train split
    assert torch.equal(small.val.x, full.val.x[:4])


def test_standardization_uses_train_stats(tmp_path):
    fake_png_tree(tmp_path, per_class=4)
    s = load_splits("cifar10", str(tmp_path), str(tmp_path / "c"), val_size=2)
    x = s.train.x
    assert s.input_shape == (3, 32, 32) and len(s.mean) == 3
    torch.testing.assert_close(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    raw = load_splits("cifar10", str(tmp_path), str(tmp_path / "c"), val_size=2, standardize=False)
    torch.testing.assert_close(
        torch.tensor(s.mean, dtype=torch.float32), raw.train.x.mean(dim=(0, 2, 3)), atol=1e-6, rtol=0
    )
    # val/test use the train statistics, not their own.
    torch.testing.assert_close(
        s.test.x,
        (raw.test.x - torch.tensor(s.mean).float().view(1, 3, 1, 1))
        / torch.tensor(s.std).float().view(1, 3, 1, 1),
    )


def test_digits_splits(tmp_path):
    s = load_splits("digits", str(tmp_path), str(tmp_path / "c"), val_size=200)
    assert (len(s.train), len(s.val), len(s.test)) == (1297, 200, 300)
    assert s.input_shape == (1, 8, 8)
    other_seed = load_splits("digits", str(tmp_path), str(tmp_path / "c"), val_size=200, split_seed=3)
    assert torch.equal(other_seed.test.y, s.test.y)  # the test set does not depend on split_seed


# ------------------------------------------------------------------------------------ batches


def test_reshuffle_covers_each_index_once_and_changes():
    sched = BatchSchedule(torch.zeros(100, dtype=torch.int64), batch_size=10, order="reshuffle", seed=7)
    assert sched.steps_per_epoch == 10
    epochs = [torch.cat([sched.batch(e * 10 + i) for i in range(10)]) for e in range(2)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(100))
    assert not torch.equal(epochs[0], epochs[1])
    assert sched.batch(0).dtype == torch.int64


def test_fixed_repeats_and_drops_the_tail():
    sched = BatchSchedule(torch.zeros(105, dtype=torch.int64), batch_size=10, order="fixed", seed=3)
    assert sched.steps_per_epoch == 10  # the last 5 examples never form a short batch
    for i in range(10):
        assert torch.equal(sched.batch(i), sched.batch(i + 30))
    assert all(len(sched.batch(i)) == 10 for i in range(25))


def test_sorted_is_by_class_and_stable():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0, 1])
    sched = BatchSchedule(labels, batch_size=2, order="sorted", seed=0)
    order = torch.cat([sched.batch(i) for i in range(4)])
    assert order.tolist() == [1, 3, 6, 2, 5, 7, 0, 4]
    assert torch.equal(order, torch.cat([sched.batch(i) for i in range(4, 8)]))


@pytest.mark.parametrize("order", ORDERS)
def test_resume_gives_the_same_batches(order):
    labels = torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(0))
    running = BatchSchedule(labels, batch_size=8, order=order, seed=11)
    history = [running.batch(k) for k in range(40)]
    for k in (0, 6, 13, 39):
        assert torch.equal(BatchSchedule(labels, 8, order, seed=11).batch(k), history[k])
    if order != "sorted":
        assert not torch.equal(BatchSchedule(labels, 8, order, seed=12).batch(0), history[0])


def test_schedule_argument_errors():
    with pytest.raises(ValueError, match="reshuffle, fixed, sorted"):
        BatchSchedule(torch.zeros(10), 2, "random", 0)
    with pytest.raises(ValueError, match=r"batch_size=20.*10"):
        BatchSchedule(torch.zeros(10), 20, "fixed", 0)


# ---------------------------------------------------------------------------------- augment


def test_crop_flip_shape_determinism_and_content():
    x = torch.randn(64, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(0), pad=2))
    assert not torch.equal(out, random_crop_flip(x, torch.Generator().manual_seed(1), pad=2))
    # Without padding there is no shift: every image is either itself or its mirror, both occur.
    flipped = random_crop_flip(x, torch.Generator().manual_seed(0), pad=0)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 64


def test_crop_shifts_in_zeros():
    x = torch.ones(200, 1, 6, 6)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), pad=3)
    zeros = (out == 0).flatten(1).sum(1)
    assert bool((zeros > 0).any()) and bool((zeros == 0).any())  # some shifted, some centred
    assert set(out.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------------------------- real data


def _real_mnist_root() -> str | None:
    root = os.environ.get("NORMREPRO_DATA")
    return root if root and (Path(root) / "MNIST" / "raw").is_dir() else None


@pytest.mark.skipif(_real_mnist_root() is None, reason="NORMREPRO_DATA does not point at a folder with MNIST")
def test_real_mnist(tmp_path):
    s = load_splits("mnist", _real_mnist_root(), str(tmp_path), val_size=5000, standardize=False)
    assert (len(s.train), len(s.val), len(s.test)) == (55000, 5000, 10000)
    assert abs(s.mean[0] - 0.1307) < 0.002
    assert abs(float(s.train.x.mean()) - 0.1307) < 0.002
