"""Train / validation / test splits as in-memory float tensors.

The validation split is carved from the official training split by a seeded permutation, so it
never touches the test set. Pixels are scaled to [0, 1] and, by default, standardized per channel
with the mean and std of the training split actually used (after `train_limit`), so a subset
run is normalized by its own statistics, as the model would see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cache import load_raw
from .sources import NAMES

# scikit-learn's digits have no official test split: carve a fixed one, independent of
# split_seed, so every run is evaluated on the same images.
DIGITS_TEST_SIZE = 300
DIGITS_TEST_SEED = 0
# eval_limit takes a fixed random subset of the test set, not its first N: the CIFAR-10 PNG tree
# is stored class by class, so its first N test images would all be airplanes.
TEST_SUBSET_SEED = 0

NUM_CLASSES = {"mnist": 10, "cifar10": 10, "digits": 10, "mnist1d": 10}


@dataclass
class Split:
    """One split: x float32 [N, C, H, W] (standardized unless asked not to), y int64 [N]."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    """The three splits of a dataset plus what a model needs to know about them.

    mean / std are per channel, in [0, 1] pixel units, of the train split actually used; they
    are reported whether or not `standardize` applied them.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]


def load_splits(
    name: str,
    root: str,
    cache_dir: str,
    val_size: int,
    split_seed: int = 0,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    standardize: bool = True,
    device: str = "cpu",
) -> Splits:
    """Load `name` (one of mnist, cifar10, digits, mnist1d) from `root` and split it.

    val: the first `val_size` examples of a permutation of the official train split drawn from
    torch.Generator().manual_seed(split_seed); train: the rest, in permutation order, cut to the
    first `train_limit` (a random, roughly class-balanced subset, the same for every run).
    `eval_limit` caps val (its first N) and test (a fixed random subset of N).
    """
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    x_pool, y_pool, x_test, y_test = _official_split(load_raw(name, root, cache_dir))

    if not 0 <= val_size < len(y_pool):
        raise ValueError(f"val_size={val_size} must be in [0, {len(y_pool)}) for {name}")
    for label, limit in (("train_limit", train_limit), ("eval_limit", eval_limit)):
        if limit is not None and limit < 1:
            raise ValueError(f"{label}={limit} must be positive (or None for no limit)")

    perm = torch.randperm(len(y_pool), generator=torch.Generator().manual_seed(split_seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    train_idx = train_idx[:train_limit]
    val_idx = val_idx[:eval_limit]
    if eval_limit is not None and eval_limit < len(y_test):
        subset = torch.randperm(len(y_test), generator=torch.Generator().manual_seed(TEST_SUBSET_SEED))
        test_idx = subset[:eval_limit].sort().values  # keep the source order within the subset
    else:
        test_idx = torch.arange(len(y_test))

    x_train = x_pool[train_idx]
    mean, std = _channel_stats(x_train)
    if not standardize:
        mean_applied, std_applied = [0.0] * len(mean), [1.0] * len(std)
    else:
        # A constant channel (possible in tiny subsets) has std 0: leave its scale alone.
        mean_applied, std_applied = mean, [s if s > 0 else 1.0 for s in std]

    def make(x_u8: torch.Tensor, y: torch.Tensor) -> Split:
        return Split(_to_float(x_u8, mean_applied, std_applied).to(device), y.to(device))

    return Splits(
        name=name,
        train=make(x_train, y_pool[train_idx]),
        val=make(x_pool[val_idx], y_pool[val_idx]),
        test=make(x_test[test_idx], y_test[test_idx]),
        num_classes=NUM_CLASSES[name],
        input_shape=tuple(x_pool.shape[1:]),
        mean=tuple(mean),
        std=tuple(std),
    )


def _official_split(raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_test, y_test) as uint8 / int64, carving the digits' fixed test set."""
    if "x_test" in raw:
        return raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]
    x, y = raw["x"], raw["y"]
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_TEST_SEED))
    test, pool = perm[:DIGITS_TEST_SIZE], perm[DIGITS_TEST_SIZE:]
    return x[pool], y[pool], x[test], y[test]


def _channel_stats(x_u8: torch.Tensor) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and (population) std in [0, 1] units, from uint8 pixel histograms.

    Counting the 256 values per channel is exact and needs no float copy of the data
    (a float64 copy of the CIFAR train split would be ~1 GB). A real-valued source (MNIST-1D's
    float signals, small) is averaged directly, in its own units.
    """
    if x_u8.is_floating_point():
        x64 = x_u8.to(torch.float64).transpose(0, 1).reshape(x_u8.shape[1], -1)
        return x64.mean(1).tolist(), x64.std(1, correction=0).tolist()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x_u8.shape[1]):
        counts = torch.bincount(x_u8[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = counts.sum()
        mean = (counts * values).sum() / n
        var = (counts * (values - mean) ** 2).sum() / n
        means.append(mean.item())
        stds.append(var.sqrt().item())
    return means, stds


def _to_float(x_u8: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 -> float32 in [0, 1] (a float source keeps its units), then (x - mean) / std per channel, in
    place to save memory."""
    shape = (1, -1, 1, 1)
    x = x_u8.to(torch.float32, copy=True) if x_u8.is_floating_point() else x_u8.to(torch.float32).div_(255.0)
    return x.sub_(torch.tensor(mean, dtype=torch.float32).view(shape)).div_(
        torch.tensor(std, dtype=torch.float32).view(shape)
    )
