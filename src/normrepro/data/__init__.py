"""Data layer: dataset decoding with an on-disk cache, splits, batch schedules, augmentation.

Typical use::

    splits = load_splits("cifar10", root, cache_dir, val_size=5000)
    schedule = BatchSchedule(splits.train.y, batch_size=128, order="reshuffle", seed=0)
    idx = schedule.batch(step)
    x = random_crop_flip(splits.train.x[idx], generator)
"""

from .augment import random_crop_flip
from .batches import ORDERS, BatchSchedule, TrainingBatches
from .cache import load_raw
from .errors import CorruptDataset, DatasetNotFound
from .sources import NAMES as IMAGE_NAMES
from .sources import read_cifar10, read_digits, read_mnist
from .splits import Split, Splits, load_splits
from .text import load_char_splits

NAMES = (*IMAGE_NAMES, "ptb_char")  # every value of data.name

__all__ = [
    "NAMES",
    "ORDERS",
    "BatchSchedule",
    "TrainingBatches",
    "CorruptDataset",
    "DatasetNotFound",
    "Split",
    "Splits",
    "load_raw",
    "load_char_splits",
    "load_splits",
    "random_crop_flip",
    "read_cifar10",
    "read_digits",
    "read_mnist",
]
