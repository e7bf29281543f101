"""What a run's numbers depend on besides its config: recorded with each checkpoint, compared on resume.

The run directory's ``run_config.yaml`` pins the config; these are the other inputs that change the numbers
of a run bit for bit: the code (git HEAD plus a hash of uncommitted changes under src/ and configs/), the
library versions, the device, the number of intra-op threads (CPU reductions split their sums by thread),
and the data itself (a hash of the tensors the run trains and evaluates on, after limits and
standardization). A run resumed under other conditions would not equal an uninterrupted run, so resuming
refuses unless ``train.allow_changed_conditions=true`` says to go on (the summary then lists what changed).
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess

import numpy as np
import torch

from normrepro.provenance import REPO_ROOT


@functools.cache
def code_version() -> str:
    """HEAD's SHA, plus ``+dirty.<hash>`` of the uncommitted changes (and untracked files) under src/ and
    configs/: two different edits give two different versions; ``unknown`` outside a git checkout."""
    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, check=True, timeout=20).stdout

    try:
        sha = git("rev-parse", "HEAD").decode().strip()
        diff = git("diff", "HEAD", "--binary", "--", "src", "configs")
        untracked = git("ls-files", "--others", "--exclude-standard", "-z", "--", "src", "configs").split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    digest = hashlib.sha256(diff)
    for rel in sorted(filter(None, untracked)):
        path = REPO_ROOT / rel.decode()
        if path.is_file():
            digest.update(rel + b"\0" + path.read_bytes())
    changed = diff or any(untracked)
    return sha + (f"+dirty.{digest.hexdigest()[:12]}" if changed else "")


def data_fingerprint(splits) -> str:
    """A hash of every split's tensors (values, shapes, dtypes): the exact inputs of the run."""
    digest = hashlib.blake2b(digest_size=12)
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        for t in (split.x, split.y):
            t = t.detach().contiguous().cpu()
            digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _accelerator_libs(device: torch.device) -> str:
    if device.type != "cuda":
        return "none"
    return f"cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}"


# name -> what reads it; one place, so a test can substitute any one value.
READERS = {
    "code": lambda device, threads, splits: code_version(),
    "torch": lambda device, threads, splits: str(torch.__version__),  # a str subclass weights_only refuses
    "numpy": lambda device, threads, splits: np.__version__,
    "python": lambda device, threads, splits: platform.python_version(),
    "machine": lambda device, threads, splits: platform.machine(),
    "device_type": lambda device, threads, splits: device.type,
    "device_name": lambda device, threads, splits: _device_name(device),
    "accelerator_libs": lambda device, threads, splits: _accelerator_libs(device),
    "threads": lambda device, threads, splits: int(threads),
    "data": lambda device, threads, splits: data_fingerprint(splits),
}


def current(device: torch.device, threads: int, splits) -> dict:
    """The conditions of this process for a run on ``device`` with ``threads`` threads and these splits."""
    return {name: read(device, threads, splits) for name, read in READERS.items()}  # plain str / int values


def differences(recorded: dict | None, now: dict) -> list[str]:
    """``name: old -> new`` for every condition that differs (all of them when none were recorded)."""
    recorded = recorded or {}
    return [f"{name}: {recorded.get(name, 'not recorded')} -> {value}" for name, value in now.items()
            if recorded.get(name) != value]
