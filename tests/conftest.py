"""Fixtures of the offline CPU suite: tiny fake datasets in the real on-disk formats, written once per
session, and an environment that points the engine at them and at temporary run/result folders.

Nothing here needs the real datasets, a network or a GPU. ``NORMREPRO_DATA`` etc. are always overridden
(CI may point them at the shared copies), so the tests see only the fakes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import SMOKE, compose_cfg, data_overrides, write_fake_cifar_png, write_fake_mnist, write_fake_ptb

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def fake_data_root(tmp_path_factory) -> Path:
    """``<root>/MNIST/raw/*-ubyte`` (900 train / 300 test) and ``<root>/cifar10/{train,test}/<class>/*.png``
    (500 train / 300 test), ``<root>/PTB/ptb.char.*.txt``; scikit-learn's digits need no files."""
    root = tmp_path_factory.mktemp("data")
    write_fake_mnist(root)
    write_fake_cifar_png(root)
    write_fake_ptb(root)
    return root


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One decode cache for the session (fingerprinted by the engine, so sharing it is safe)."""
    return tmp_path_factory.mktemp("cache")


@dataclass
class Env:
    data: Path
    cache: Path
    runs: Path
    results: Path
    tmp: Path

    def cfg(self, *overrides: str, data: str | None = None):
        """A smoke-scale config on the fakes, one thread; ``data`` picks the data group (mnist default)."""
        group = [f"data={data}"] if data else []
        name = data or _data_name(overrides)
        return compose_cfg([*SMOKE, *group, *data_overrides(name), *overrides])


def _data_name(overrides) -> str:
    for o in overrides:
        if o.startswith("data="):
            return o.split("=", 1)[1]
    return "mnist"


def set_engine_env(mp: pytest.MonkeyPatch, data: Path, cache: Path, tmp: Path) -> Env:
    env = Env(data, cache, tmp / "runs", tmp / "results", tmp)
    mp.setenv("NORMREPRO_DATA", str(data))
    mp.setenv("NORMREPRO_CACHE", str(cache))
    mp.setenv("NORMREPRO_RUNS", str(env.runs))
    mp.setenv("NORMREPRO_RESULTS", str(env.results))
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    mp.setenv("MPLBACKEND", "Agg")
    return env


@pytest.fixture
def engine_env(monkeypatch, fake_data_root, data_cache, tmp_path) -> Env:
    """Per test: the fakes, the shared cache, and fresh run/result folders."""
    return set_engine_env(monkeypatch, fake_data_root, data_cache, tmp_path)


# ------------------------------------------------------------------------------------------- tiers
# ``unit``: pure functions and single modules, seconds in all (``make test-unit``); ``integration``: the
# engine end to end (runs on the fakes, resume, command line, DDP, notebook, wandb). A test that takes one of
# the engine's fixtures, or lives in one of these modules, is integration; every other test is unit.
INTEGRATION_FIXTURES = {"engine_env", "fake_data_root", "data_cache"}
INTEGRATION_MODULES = {"test_config", "test_experiments", "test_notebook", "test_wandb", "test_sync_bn", "test_layers",
                       "test_golden", "test_faults_run"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(m) for m in ("integration", "unit", "browser")):
            continue
        module = item.module.__name__.rsplit(".", 1)[-1]
        engine = INTEGRATION_FIXTURES & set(item.fixturenames) or module in INTEGRATION_MODULES
        item.add_marker(pytest.mark.integration if engine else pytest.mark.unit)
