"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"), generated here, offline, by the ``mnist1d``
package's own procedure from its default arguments and seed (never downloaded)."""

from __future__ import annotations

import numpy as np

from .errors import DatasetNotFound


def mnist1d_version() -> str:
    """The installed mnist1d package's version (its generator is the source: it goes into the cache key)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError as err:
        raise DatasetNotFound("MNIST-1D generator (the mnist1d package)", "this Python environment",
                              fix="pip install mnist1d (pinned in pyproject.toml)") from err


def read_mnist1d(num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train [N,1,1,40] float32, y_train [N] int64, x_test, y_test) of MNIST-1D, generated here.

    The package's defaults: 5000 examples (500 per class), 80% train (4000 / 1000), sequences of length
    40, seed 42. `num_samples` overrides only the example count (tests make a tiny set). The package seeds
    numpy's and random's global generators; their states are restored afterwards so generating the data
    does not change any other stream of the run.
    """
    import random

    mnist1d_version()  # one line naming the fix if the package is missing
    from mnist1d.data import get_dataset_args, make_dataset  # here: it imports matplotlib (slow)

    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = num_samples
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)  # never get_dataset: that one downloads the authors' pickle
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    length = args.final_seq_length

    def signals(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 1, 1, length)

    return (signals(data["x"]), np.asarray(data["y"], dtype=np.int64),
            signals(data["x_test"]), np.asarray(data["y_test"], dtype=np.int64))
