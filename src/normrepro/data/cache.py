"""Decode a dataset once and keep it as `<cache_dir>/<name>.pt` (a torch.save'd dict of tensors).

The file stores a fingerprint of its source (dataset name, decoder format version, and the sorted
relative file names and sizes of the source files), so a changed source is decoded afresh and
the file overwritten. Writes are atomic (temporary file + os.replace): a job killed mid-write, or
two jobs of a sweep writing at once, never leave a half-written cache behind. A cache file that
cannot be read is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from . import sources

log = logging.getLogger(__name__)

# Bump when a decoder's output changes (e.g. a different digits scaling) to invalidate old caches.
FORMAT_VERSION = 1

Tensors = dict[str, torch.Tensor]


def fingerprint(name: str, root: str | Path) -> str:
    """A short hash of what `name` would be decoded from under `root`.

    Paths are taken relative to `root`, so moving the data folder does not force a re-decode.
    Raises DatasetNotFound when the source is missing.
    """
    root = Path(root)
    lines = [f"{name} v{FORMAT_VERSION}"]
    if name == "digits":
        import sklearn  # the digits come from inside scikit-learn, so its version is the source

        lines.append(f"sklearn {sklearn.__version__}")
    for rel in sources.source_files(name, root):
        lines.append(f"{rel}\t{os.stat(os.path.join(root, rel)).st_size}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def load_raw(name: str, root: str | Path, cache_dir: str | Path) -> Tensors:
    """The decoded uint8 images / int64 labels of `name`, from the cache when it is current."""
    key = fingerprint(name, root)
    path = Path(cache_dir) / f"{name}.pt"
    cached = _read(path, key)
    if cached is not None:
        return cached
    log.info("decoding %s from %s (one-time; cached at %s)", name, root, path)
    arrays = sources.read_source(name, root)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    _write_atomic(path, {"fingerprint": key, "tensors": tensors})
    return tensors


def _read(path: Path, key: str) -> Tensors | None:
    """The cached tensors if `path` holds a readable cache for `key`; None means decode again."""
    if not path.is_file():
        return None
    try:
        # weights_only: a dict of tensors and a string needs no arbitrary unpickling.
        payload = torch.load(path, map_location="cpu", weights_only=True)
        stored_key, tensors = payload["fingerprint"], payload["tensors"]
        if not all(isinstance(t, torch.Tensor) for t in tensors.values()):
            raise TypeError("non-tensor entry")
    except Exception as err:  # truncated / garbage files fail in many different ways
        log.warning(
            "cache %s is unreadable (%s: %s); deleting it and decoding again", path, type(err).__name__, err
        )
        path.unlink(missing_ok=True)
        return None
    if stored_key != key:
        log.info("cache %s was made from a different source; decoding again", path)
        return None
    return tensors


def _write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per-process name: parallel jobs don't clash
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
