"""Decoders for the raw on-disk datasets, each returning plain uint8 image arrays.

- MNIST: the IDX files of LeCun et al. (`<root>/MNIST/raw/*-ubyte`, or their `.gz`), parsed here
  from the IDX header (magic 0x00 0x00 <type> <ndim>, then ndim big-endian uint32 sizes).
- CIFAR-10: either torchvision's python batches (`<root>/cifar-10-batches-py`) or the PNG class-folder
  tree (`<root>/cifar10/{train,test}/<class>/*.png`); the class folders sort into the label order.
- digits: scikit-learn's bundled 8x8 digits (no download), returned as one pool.
- MNIST-1D (Greydanus 2020): generated here, offline, by the `mnist1d` package's own procedure
  (`mnist1d.data.make_dataset`) from its default arguments and seed; its templates are built in code,
  so nothing is downloaded.

Images come back as uint8 [N, C, H, W] and labels as int64 [N]; MNIST-1D, a real-valued signal, comes
back as float32 [N, 1, 1, 40]. Decoding is slow only for the CIFAR PNGs; `cache.py` runs these once
and keeps the result.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import CorruptDataset, DatasetNotFound, UnsafePickle
from .mnist1d import mnist1d_version, read_mnist1d  # noqa: F401  (mnist1d_version: cache.py)
from .safe_pickle import load_restricted

NAMES = ("mnist", "cifar10", "digits", "mnist1d")

_MNIST_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08  # IDX type code for unsigned bytes, the only type MNIST uses
_CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
_CIFAR_TEST = "test_batch"
_CIFAR_CLASSES = 10

Arrays = dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------- MNIST


def _mnist_file(root: Path, stem: str) -> Path:
    """The plain IDX file if present, else its .gz (torchvision keeps both; a fresh copy may have one)."""
    plain = root / "MNIST" / "raw" / stem
    if plain.is_file():
        return plain
    packed = plain.with_name(stem + ".gz")
    if packed.is_file():
        return packed
    raise DatasetNotFound("MNIST", f"{plain} (or {packed.name})")


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file of unsigned bytes into an array shaped as its header says."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise CorruptDataset(path, f"cannot read/decompress ({err})") from err
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != _IDX_UBYTE:
        raise CorruptDataset(path, f"bad IDX magic {data[:4].hex()} (want 000008xx)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptDataset(path, f"truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise CorruptDataset(path, f"{len(data)} bytes, but its header {dims} implies {expected}")
    # Copy so the array is writable (frombuffer over bytes is read-only; torch warns about that).
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def mnist_files(root: str | Path) -> list[str]:
    """The four IDX files read_mnist would read, relative to root, in a fixed order."""
    root = Path(root)
    return [_mnist_file(root, stem).relative_to(root).as_posix() for stem in _MNIST_STEMS.values()]


def read_mnist(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [N,1,28,28] uint8, y_train [N] int64, x_test, y_test) from `<root>/MNIST/raw`."""
    root = Path(root)
    paths = {key: root / rel for key, rel in zip(_MNIST_STEMS, mnist_files(root))}
    out = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        x, y = out[f"x_{split}"], out[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise CorruptDataset(paths[f"x_{split}"], f"images shaped {x.shape}, want [N,28,28]")
        if y.ndim != 1 or len(y) != len(x):
            raise CorruptDataset(paths[f"y_{split}"], f"{y.shape} labels for {len(x)} images")
        if y.size and y.max() > 9:
            raise CorruptDataset(paths[f"y_{split}"], f"label {y.max()} outside 0..9")
    return (
        out["x_train"][:, None],
        out["y_train"].astype(np.int64),
        out["x_test"][:, None],
        out["y_test"].astype(np.int64),
    )


# -------------------------------------------------------------------------------------- CIFAR-10


def _png_tree(root: Path) -> dict[str, list[tuple[str, int]]]:
    """{split: [(png path relative to root, label)]}, classes and files sorted by name.

    os.scandir rather than Path.glob: listing the 60k CIFAR files is 6x faster, and it runs on
    every load to fingerprint the cache.
    """
    listing: dict[str, list[tuple[str, int]]] = {}
    classes_seen: list[str] | None = None
    for split in ("train", "test"):
        split_dir = root / "cifar10" / split
        if not split_dir.is_dir():
            raise DatasetNotFound("CIFAR-10", split_dir)
        classes = sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())
        if classes_seen is not None and classes != classes_seen:
            raise CorruptDataset(split_dir, f"class folders {classes} differ from train's {classes_seen}")
        if len(classes) > _CIFAR_CLASSES:
            raise CorruptDataset(split_dir, f"{len(classes)} class folders, CIFAR-10 has 10")
        classes_seen = classes
        listing[split] = [
            (f"cifar10/{split}/{name}/{file}", label)
            for label, name in enumerate(classes)
            for file in sorted(e.name for e in os.scandir(split_dir / name) if e.name.endswith(".png"))
        ]
        if not listing[split]:
            raise DatasetNotFound("CIFAR-10 PNG images", split_dir / "<class>" / "*.png")
    return listing


def _cifar_layout(root: Path) -> str:
    """'batches' (torchvision's official pickles, preferred when both exist) or 'png'."""
    if (root / "cifar-10-batches-py").is_dir():
        return "batches"
    if (root / "cifar10").is_dir():
        return "png"
    raise DatasetNotFound("CIFAR-10", f"{root / 'cifar-10-batches-py'} (or {root / 'cifar10'})")


def cifar10_files(root: str | Path) -> list[str]:
    """Every file read_cifar10 would read, relative to root, in a fixed order."""
    root = Path(root)
    if _cifar_layout(root) == "png":
        listing = _png_tree(root)
        return [rel for split in ("train", "test") for rel, _ in listing[split]]
    names = [f"cifar-10-batches-py/{name}" for name in (*_CIFAR_BATCHES, _CIFAR_TEST)]
    for name in names:
        if not (root / name).is_file():
            raise DatasetNotFound("CIFAR-10 batch", root / name)
    return names


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: dict with b'data' [N,3072] uint8 (R, G, B planes of 32x32) and b'labels'."""
    try:
        batch = load_restricted(path)  # admits only what the format needs: a file cannot run code
        data, labels = batch[b"data"], batch[b"labels"]
    except UnsafePickle:
        raise
    except Exception as err:  # unpickling garbage can raise almost anything
        raise CorruptDataset(path, f"not a CIFAR-10 batch ({type(err).__name__}: {err})") from err
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise CorruptDataset(path, f"data {data.shape} / labels {labels.shape}, want [N,3072] / [N]")
    if labels.size and (labels.min() < 0 or labels.max() >= _CIFAR_CLASSES):
        raise CorruptDataset(path, "labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _read_png(path: Path) -> np.ndarray:
    """One 32x32 image as uint8 [32,32,3]."""
    try:
        with Image.open(path) as image:
            if image.mode != "RGB":
                image = image.convert("RGB")
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError) as err:
        raise CorruptDataset(path, f"cannot decode PNG ({err})") from err
    if pixels.shape != (32, 32, 3):
        raise CorruptDataset(path, f"image is {pixels.shape[1]}x{pixels.shape[0]}, want 32x32")
    return pixels


def _read_png_split(root: Path, items: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    # A plain loop: ~0.13 ms per image here, and a thread pool measured slower (PIL's per-file
    # Python overhead holds the GIL), so 60k images take ~8-20 s, once, before caching.
    images = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    for i, (rel, _) in enumerate(items):
        images[i] = _read_png(root / rel)
    labels = np.array([label for _, label in items], dtype=np.int64)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels


def read_cifar10(root: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [N,3,32,32] uint8, y_train [N] int64, x_test, y_test) from either CIFAR-10 layout.

    The PNG tree holds no original example order, so its arrays are in (class, file name) order;
    the same split seed therefore picks different validation images than with the pickles.
    """
    root = Path(root)
    if _cifar_layout(root) == "png":
        listing = _png_tree(root)
        return (*_read_png_split(root, listing["train"]), *_read_png_split(root, listing["test"]))
    paths = [root / rel for rel in cifar10_files(root)]
    train = [_read_cifar_batch(p) for p in paths[:-1]]
    x_test, y_test = _read_cifar_batch(paths[-1])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------------------------------- digits


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits as (x [N,1,8,8] uint8, y [N] int64), one unsplit pool.

    The source values are integers 0..16; they are mapped linearly to 0..255 with
    round(v * 255 / 16), so 0 -> 0 and 16 -> 255 and pixel/255 equals v/16 to within rounding.
    """
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    bunch = load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return x, bunch.target.astype(np.int64)


# ------------------------------------------------------------------------------------- dispatch


def source_files(name: str, root: str | Path) -> list[str]:
    """The files a dataset is decoded from, as posix paths relative to root (for cache fingerprints).

    Empty for digits (ships inside scikit-learn) and MNIST-1D (generated in code). Raises DatasetNotFound if any is missing.
    """
    _check_name(name)
    if name == "mnist":
        return mnist_files(root)
    if name == "cifar10":
        return cifar10_files(root)
    return []


def read_source(name: str, root: str | Path) -> Arrays:
    """Decode a dataset: keys x_train/y_train/x_test/y_test, or x/y for the unsplit digits pool."""
    _check_name(name)
    if name == "digits":
        x, y = read_digits()
        return {"x": x, "y": y}
    reader = {"mnist": read_mnist, "cifar10": read_cifar10, "mnist1d": lambda _root: read_mnist1d()}[name]
    return dict(zip(("x_train", "y_train", "x_test", "y_test"), reader(root)))


def _check_name(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
